package databricks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/pipectl/pipectl/engine/executor"
)

var (
	modelAliasURI  = regexp.MustCompile(`^models:/([^/@]+)@([A-Za-z0-9_-]+)$`)
	modelLatestURI = regexp.MustCompile(`^models:/([^/@]+)/latest$`)
)

// maxDirEntries bounds the listing of a Volume directory input.
const maxDirEntries = 100000

// Fingerprint implements executor.Fingerprinter without reading any
// content: a Volume file by the Files API's metadata (HEAD: size and
// last-modified, the headers the API documents; it sends no ETag), a
// Volume directory by the listing of its files, a workspace file by its
// object id, size and modification time, a Unity Catalog model alias by
// the version it points at (and that version's creation time), which the
// notebook then receives. Relative paths and models:/NAME/latest are not
// fingerprinted (Unity Catalog has no "latest"): such stages always run.
func (e *Executor) Fingerprint(ctx context.Context, req executor.FingerprintRequest) (executor.FingerprintResult, error) {
	cfg, c, err := e.connect(ctx, req.Task.Config)
	if err != nil {
		return executor.FingerprintResult{}, err
	}
	var out executor.FingerprintResult
	for _, in := range req.Inputs {
		f := executor.Fingerprint{Param: in.Param}
		var err error
		switch in.Kind {
		case executor.InputFile:
			f.Value, f.Detail, err = fileFingerprint(ctx, c, in.Ref)
		case executor.InputModel:
			f.Value, f.Resolved, f.Detail, err = modelFingerprint(ctx, c, cfg, in.Ref)
		default:
			f.Detail = fmt.Sprintf("unknown input kind %q", in.Kind)
		}
		if err != nil {
			if !errors.Is(err, apierr.ErrNotFound) {
				return executor.FingerprintResult{}, c.fail("fingerprint "+in.Param+" "+in.Ref, err)
			}
			f.Value, f.Detail = "", in.Ref+" does not exist"
		}
		out.Fingerprints = append(out.Fingerprints, f)
	}
	return out, nil
}

func fileFingerprint(ctx context.Context, c *Client, p string) (value, detail string, err error) {
	switch {
	case strings.HasPrefix(p, "/Volumes/"):
		m, err := c.W.Files.GetMetadata(ctx, files.GetMetadataRequest{FilePath: p})
		if err == nil {
			return fmt.Sprintf("files-api:size=%d,last-modified=%s", m.ContentLength, m.LastModified), fmt.Sprintf("%d bytes, modified %s", m.ContentLength, m.LastModified), nil
		}
		if !errors.Is(err, apierr.ErrNotFound) {
			return "", "", err
		}
		return dirFingerprint(ctx, c, p)
	case strings.HasPrefix(p, "/Workspace/"):
		o, err := c.W.Workspace.GetStatus(ctx, workspace.GetStatusRequest{Path: p})
		if err != nil {
			return "", "", err
		}
		if o.ObjectType == workspace.ObjectTypeDirectory || o.ObjectType == workspace.ObjectTypeRepo {
			return "", "workspace folders are not fingerprinted; name a file or a /Volumes directory", nil
		}
		return fmt.Sprintf("workspace:id=%d,size=%d,modified=%d", o.ObjectId, o.Size, o.ModifiedAt), fmt.Sprintf("%d bytes", o.Size), nil
	}
	return "", "only /Volumes/... and /Workspace/... paths are fingerprinted on Databricks", nil
}

// dirFingerprint lists a Volume directory recursively: every file's path,
// size and modification time.
func dirFingerprint(ctx context.Context, c *Client, root string) (value, detail string, err error) {
	var lines []string
	var size int64
	var walk func(dir string) error
	walk = func(dir string) error {
		it := c.W.Files.ListDirectoryContents(ctx, files.ListDirectoryContentsRequest{DirectoryPath: dir})
		for it.HasNext(ctx) {
			de, err := it.Next(ctx)
			if err != nil {
				return err
			}
			if len(lines) >= maxDirEntries {
				return fmt.Errorf("more than %d files under %s", maxDirEntries, root)
			}
			if de.IsDirectory {
				if err := walk(path.Join(dir, de.Name)); err != nil {
					return err
				}
				continue
			}
			rel := strings.TrimPrefix(path.Join(dir, de.Name), strings.TrimSuffix(root, "/")+"/")
			lines = append(lines, fmt.Sprintf("%s\x00%d\x00%d", rel, de.FileSize, de.LastModified))
			size += de.FileSize
		}
		return nil
	}
	if err := walk(root); err != nil {
		return "", "", err
	}
	slices.Sort(lines)
	return "files-api-dir:" + sha256Hex(strings.Join(lines, "\n")), fmt.Sprintf("directory, %d files, %d bytes", len(lines), size), nil
}

// modelFingerprint resolves a model reference to a concrete Unity Catalog
// version. Bare names get the target's catalog and schema, as the
// notebooks qualify them.
func modelFingerprint(ctx context.Context, c *Client, cfg *Config, ref string) (value, resolved, detail string, err error) {
	qualify := func(name string) string {
		if strings.Contains(name, ".") || cfg.Catalog == "" {
			return name
		}
		return cfg.Catalog + "." + cfg.Schema + "." + name
	}
	version := func(name string, mv *catalog.ModelVersionInfo) (string, string, string, error) {
		return fmt.Sprintf("uc:%s/%d,created=%d", qualify(name), mv.Version, mv.CreatedAt),
			fmt.Sprintf("models:/%s/%d", name, mv.Version), fmt.Sprintf("version %d", mv.Version), nil
	}
	switch {
	case modelAliasURI.MatchString(ref):
		m := modelAliasURI.FindStringSubmatch(ref)
		mv, err := c.W.ModelVersions.GetByAlias(ctx, catalog.GetByAliasRequest{FullName: qualify(m[1]), Alias: m[2]})
		if err != nil {
			return "", "", "", err
		}
		return version(m[1], mv)
	case modelVersionURI.MatchString(ref):
		m := modelVersionURI.FindStringSubmatch(ref)
		var v int
		_, _ = fmt.Sscan(m[2], &v)
		mv, err := c.W.ModelVersions.Get(ctx, catalog.GetModelVersionRequest{FullName: qualify(m[1]), Version: v})
		if err != nil {
			return "", "", "", err
		}
		value, _, detail, err := version(m[1], mv)
		return value, "", detail, err
	case modelLatestURI.MatchString(ref):
		return "", "", "Unity Catalog has no latest version; use an alias (models:/NAME@champion) or a version", nil
	case strings.HasPrefix(ref, "runs:/"):
		return "run:" + ref, "", "a run's artifacts", nil
	}
	return "", "", "not a model URI pipectl can resolve", nil
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
