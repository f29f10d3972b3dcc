package databricks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/files"
)

// Upload is a local file setup copies into the target's Volume.
type Upload struct {
	// Local is the file on this machine.
	Local string
	// Dest is where it goes: a path relative to the Volume's root, or an
	// absolute /Volumes path inside it; empty is raw/<file name>.
	Dest string
}

// SetupOptions select what Setup does.
type SetupOptions struct {
	// DryRun reads the workspace and reports, but creates nothing.
	DryRun bool
	// Overwrite replaces uploads that exist with another size.
	Overwrite bool
	Uploads   []Upload
}

// SetupStep is one thing setup checked: Kind is catalog, schema, volume or
// file; Action is exists, created, create (dry run), uploaded, upload
// (dry run) or present (a file of the same size is there).
type SetupStep struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"`
	Bytes  int64  `json:"bytes,omitempty"`
}

// SetupOutcome is what setup did (or, dry, would do).
type SetupOutcome struct {
	Host   string      `json:"host"`
	DryRun bool        `json:"dry_run"`
	Steps  []SetupStep `json:"steps"`
}

// Setup makes a target's Unity Catalog objects exist: the schema and the
// Volume under the (existing) catalog, then uploads the given files into
// the Volume. It is idempotent: what exists is reported, not written
// again, so a second setup makes no write call. Creating a catalog needs
// a metastore admin and a storage location, so a missing catalog is an
// error that says so.
func (d *Deployer) Setup(ctx context.Context, cfg *Config, opts SetupOptions) (*SetupOutcome, error) {
	c, err := NewClient(cfg, d.Env, newRetryTransport(d.Transport))
	if err != nil {
		return nil, err
	}
	if cfg, err = Personalize(ctx, c, cfg); err != nil {
		return nil, err
	}
	out := &SetupOutcome{Host: c.Host, DryRun: opts.DryRun}
	step := func(kind, name, action string, bytes int64) {
		out.Steps = append(out.Steps, SetupStep{Kind: kind, Name: name, Action: action, Bytes: bytes})
	}
	created := func(kind, name string) {
		if opts.DryRun {
			step(kind, name, "create", 0)
		} else {
			step(kind, name, "created", 0)
		}
	}
	// Resolve the uploads first: a bad destination fails before any write.
	type upload struct {
		local, dest string
		size        int64
	}
	var ups []upload
	for _, u := range opts.Uploads {
		fi, err := os.Stat(u.Local)
		if err != nil {
			return nil, fmt.Errorf("upload %s: %v", u.Local, err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("upload %s: a directory; name a file", u.Local)
		}
		dest, err := volumeDest(cfg, u)
		if err != nil {
			return nil, err
		}
		ups = append(ups, upload{local: u.Local, dest: dest, size: fi.Size()})
	}

	if _, err := c.W.Catalogs.Get(ctx, catalog.GetCatalogRequest{Name: cfg.Catalog}); err != nil {
		if errors.Is(err, apierr.ErrNotFound) {
			return nil, fmt.Errorf("catalog %s does not exist, and pipectl does not create catalogs (that needs a metastore admin and a storage location): ask an admin to run CREATE CATALOG %s, or set databricks.catalog to an existing catalog", cfg.Catalog, cfg.Catalog)
		}
		return nil, c.fail("read catalog "+cfg.Catalog, err)
	}
	step("catalog", cfg.Catalog, "exists", 0)

	schema := cfg.Catalog + "." + cfg.Schema
	schemaExists := true
	if _, err := c.W.Schemas.Get(ctx, catalog.GetSchemaRequest{FullName: schema}); err != nil {
		if !errors.Is(err, apierr.ErrNotFound) {
			return nil, c.fail("read schema "+schema, err)
		}
		schemaExists = false
		if !opts.DryRun {
			_, err := c.W.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: cfg.Catalog, Name: cfg.Schema, Comment: "Created by pipectl setup."})
			if err != nil && !alreadyExists(err) {
				return nil, c.fail("create schema "+schema, err)
			}
		}
		created("schema", schema)
	} else {
		step("schema", schema, "exists", 0)
	}

	volume := schema + "." + cfg.Volume
	volumeExists := false
	if schemaExists || !opts.DryRun {
		_, err := c.W.Volumes.Read(ctx, catalog.ReadVolumeRequest{Name: volume})
		if err != nil && !errors.Is(err, apierr.ErrNotFound) {
			return nil, c.fail("read volume "+volume, err)
		}
		volumeExists = err == nil
	}
	if volumeExists {
		step("volume", volume, "exists", 0)
	} else {
		if !opts.DryRun {
			_, err := c.W.Volumes.Create(ctx, catalog.CreateVolumeRequestContent{CatalogName: cfg.Catalog, SchemaName: cfg.Schema,
				Name: cfg.Volume, VolumeType: catalog.VolumeTypeManaged, Comment: "Created by pipectl setup: data versions and predictions."})
			if err != nil && !alreadyExists(err) {
				return nil, c.fail("create volume "+volume, err)
			}
		}
		created("volume", volume)
	}

	for _, u := range ups {
		var have int64 = -1
		if volumeExists {
			m, err := c.W.Files.GetMetadata(ctx, files.GetMetadataRequest{FilePath: u.dest})
			switch {
			case err == nil:
				have = m.ContentLength
			case !errors.Is(err, apierr.ErrNotFound):
				return nil, c.fail("read "+u.dest, err)
			}
		}
		switch {
		case have == u.size && !opts.Overwrite:
			step("file", u.dest, "present", have)
			continue
		case have >= 0 && !opts.Overwrite:
			return nil, fmt.Errorf("%s exists with %d bytes, %s has %d: pass --overwrite to replace it", u.dest, have, u.local, u.size)
		case opts.DryRun:
			step("file", u.dest, "upload", u.size)
			continue
		}
		f, err := os.Open(u.local)
		if err != nil {
			return nil, err
		}
		err = c.W.Files.Upload(ctx, files.UploadRequest{FilePath: u.dest, Contents: f, Overwrite: opts.Overwrite})
		f.Close()
		if err != nil {
			return nil, c.fail("upload "+u.local+" to "+u.dest, err)
		}
		step("file", u.dest, "uploaded", u.size)
	}
	return out, nil
}

// volumeDest is an upload's destination: inside the target's Volume.
func volumeDest(cfg *Config, u Upload) (string, error) {
	root := cfg.VolumeRoot()
	dest := u.Dest
	switch {
	case dest == "":
		dest = "raw/" + path.Base(strings.ReplaceAll(u.Local, "\\", "/"))
	case strings.HasPrefix(dest, "/"):
		if !below(root, dest) || strings.HasSuffix(dest, "/") {
			return "", fmt.Errorf("upload destination %s is not a file inside the target's Volume %s", dest, root)
		}
		return path.Clean(dest), nil
	}
	if strings.HasSuffix(dest, "/") {
		dest += path.Base(strings.ReplaceAll(u.Local, "\\", "/"))
	}
	p, err := inside(root, dest)
	if err != nil {
		return "", fmt.Errorf("upload destination: %v", err)
	}
	return p, nil
}

// alreadyExists recognises a create that lost a race: 409 ALREADY_EXISTS
// (SCHEMA_ALREADY_EXISTS, VOLUME_ALREADY_EXISTS, ...).
func alreadyExists(err error) bool {
	return errors.Is(err, apierr.ErrResourceAlreadyExists) || errors.Is(err, apierr.ErrAlreadyExists) || errors.Is(err, apierr.ErrResourceConflict)
}
