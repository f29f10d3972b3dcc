package databricks

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/databricks/databricks-sdk-go/service/iam"
)

// Per-user development mode (databricks.per_user), like the Asset
// Bundles' mode: development: everything a developer's runs and deploys
// create is named after the identity of their credentials, so that two
// developers on one dev target never share a job, a workspace folder or an
// experiment (and, with per_user_schema, a schema and Volume).

// identity caches the short user name of a client's credentials.
type identity struct {
	mu   sync.Mutex
	name string
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ShortUserName is the name per-user mode puts in names and paths: the
// part of the user name before '@' (a service principal's display name),
// lower-cased, anything but letters and digits replaced by '_', as the
// Asset Bundles' short_name: jane.doe@example.com is jane_doe.
func ShortUserName(userName, displayName string) string {
	name := userName
	if uuidRE.MatchString(userName) && displayName != "" {
		name = displayName
	}
	local, _, _ := strings.Cut(name, "@")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '_'
	}, local)
}

// user returns the short name of the credentials' identity (SCIM /Me),
// asked once per client.
func (c *Client) user(ctx context.Context) (string, error) {
	c.id.mu.Lock()
	defer c.id.mu.Unlock()
	if c.id.name != "" {
		return c.id.name, nil
	}
	me, err := c.W.CurrentUser.Me(ctx, iam.MeRequest{})
	if err != nil {
		return "", c.fail("read the identity of the credentials (per_user mode names things after it)", err)
	}
	name := ShortUserName(me.UserName, me.DisplayName)
	if strings.Trim(name, "_") == "" {
		return "", fmt.Errorf("per_user mode: the credentials' identity %q gives no usable user name", me.UserName)
	}
	c.id.name = name
	return name, nil
}

// Personalize applies per-user mode to a target's config: it returns cfg
// itself when per_user is off, else a copy whose User is set and whose
// workspace_root and experiment_root end in a folder of the user's (and,
// with per_user_schema, whose schema ends in _<user>). Every use of a
// target's config (runs, deploys, cache checks, fingerprints, setup) goes
// through it, so that they all agree on the names.
func Personalize(ctx context.Context, c *Client, cfg *Config) (*Config, error) {
	if !cfg.PerUser || cfg.User != "" {
		return cfg, nil
	}
	u, err := c.user(ctx)
	if err != nil {
		return nil, err
	}
	out := *cfg
	out.User = u
	out.WorkspaceRoot = path.Join(cfg.WorkspaceRoot, u)
	out.ExperimentRoot = path.Join(cfg.ExperimentRoot, u)
	if cfg.PerUserSchema {
		out.Schema = cfg.Schema + "_" + u
	}
	return &out, nil
}

// NamePrefix prefixes the names of jobs and runs in per-user mode, as the
// Asset Bundles do: "[dev jane_doe] ".
func (c *Config) NamePrefix() string {
	if c.User == "" {
		return ""
	}
	return "[dev " + c.User + "] "
}

// JobName is the name of the job of a pipeline on the target: JobName,
// prefixed in per-user mode.
func (c *Config) JobName(pipeline, target string) string {
	return c.NamePrefix() + JobName(pipeline, target)
}
