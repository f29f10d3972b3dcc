package databricks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pipectl/pipectl/engine/diag"
)

// Config is a target's databricks block (schemas/targets.cue,
// #DatabricksTarget) with schema defaults applied.
type Config struct {
	Host              string  `json:"host,omitempty"`
	Profile           string  `json:"profile,omitempty"`
	WorkspaceRoot     string  `json:"workspace_root"`
	Source            Source  `json:"source"`
	Compute           Compute `json:"compute"`
	Catalog           string  `json:"catalog"`
	Schema            string  `json:"schema"`
	Volume            string  `json:"volume"`
	ExperimentRoot    string  `json:"experiment_root"`
	MaxConcurrentRuns int     `json:"max_concurrent_runs,omitempty"`
	// ConnectTimeout bounds the wait for an unreachable workspace (a Go
	// duration, e.g. "30s"; default DefaultConnectTimeout).
	ConnectTimeout string `json:"connect_timeout,omitempty"`
	// PerUser turns on per-user development mode (personal.go);
	// PerUserSchema also gives each user a schema.
	PerUser       bool `json:"per_user,omitempty"`
	PerUserSchema bool `json:"per_user_schema,omitempty"`
	// Job holds the deployed job's operations settings (ops.go).
	Job *JobOps `json:"job,omitempty"`

	// User is the short user name once Personalize has applied per-user
	// mode; never read from a spec.
	User string `json:"-"`
}

// Source says where Databricks reads notebooks from.
type Source struct {
	// Kind is "workspace" (import) or "git" (git_source).
	Kind     string `json:"kind"`
	URL      string `json:"url,omitempty"`
	Provider string `json:"provider,omitempty"`
	Commit   string `json:"commit,omitempty"`
	Branch   string `json:"branch,omitempty"`
	Tag      string `json:"tag,omitempty"`
}

// Compute chooses where notebook tasks run (compute.go turns it into the
// API's structs).
type Compute struct {
	// Kind is "serverless", "existing_cluster" or "new_cluster".
	Kind               string `json:"kind"`
	EnvironmentVersion string `json:"environment_version,omitempty"`
	ExistingClusterID  string `json:"existing_cluster_id,omitempty"`
	SparkVersion       string `json:"spark_version,omitempty"`
	NodeTypeID         string `json:"node_type_id,omitempty"`
	DriverNodeTypeID   string `json:"driver_node_type_id,omitempty"`
	// NumWorkers is nil when unset: 1 without autoscale.
	NumWorkers           *int              `json:"num_workers,omitempty"`
	Autoscale            *Autoscale        `json:"autoscale,omitempty"`
	InstancePoolID       string            `json:"instance_pool_id,omitempty"`
	DriverInstancePoolID string            `json:"driver_instance_pool_id,omitempty"`
	PolicyID             string            `json:"policy_id,omitempty"`
	DataSecurityMode     string            `json:"data_security_mode,omitempty"`
	SingleUserName       string            `json:"single_user_name,omitempty"`
	SparkConf            map[string]string `json:"spark_conf,omitempty"`
	SparkEnvVars         map[string]string `json:"spark_env_vars,omitempty"`
	CustomTags           map[string]string `json:"custom_tags,omitempty"`
}

// Autoscale bounds the workers of an autoscaling cluster.
type Autoscale struct {
	MinWorkers int `json:"min_workers"`
	MaxWorkers int `json:"max_workers"`
}

// workers is the fixed size of a new cluster.
func (c Compute) workers() int {
	if c.NumWorkers == nil {
		return 1
	}
	return *c.NumWorkers
}

// Source and compute kinds.
const (
	SourceWorkspace = "workspace"
	SourceGit       = "git"

	ComputeServerless      = "serverless"
	ComputeExistingCluster = "existing_cluster"
	ComputeNewCluster      = "new_cluster"
)

// ParseConfig decodes a target's databricks block and fills the defaults
// the schema would (so that a block built by hand, e.g. in a test, works).
func ParseConfig(raw json.RawMessage) (*Config, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, fmt.Errorf("the target has no databricks block: add databricks: {workspace_root, catalog, schema, volume, experiment_root}")
	}
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("the databricks block is not valid: %v", err)
	}
	if c.Source.Kind == "" {
		c.Source.Kind = SourceWorkspace
	}
	if c.Source.Kind == SourceGit && c.Source.Provider == "" {
		c.Source.Provider = "gitHub"
	}
	if c.Compute.Kind == "" {
		c.Compute.Kind = ComputeServerless
	}
	switch c.Compute.Kind {
	case ComputeServerless:
		if c.Compute.EnvironmentVersion == "" {
			c.Compute.EnvironmentVersion = DefaultEnvironmentVersion
		}
	case ComputeNewCluster:
		if c.Compute.SparkVersion == "" {
			c.Compute.SparkVersion = DefaultSparkVersion
		}
		if c.Compute.DataSecurityMode == "" {
			c.Compute.DataSecurityMode = DefaultDataSecurityMode
		}
	}
	if c.MaxConcurrentRuns == 0 {
		c.MaxConcurrentRuns = 1
	}
	return &c, nil
}

// Env reads an environment variable; executors get it from their host so
// that tests can inject values.
type Env func(string) string

func (e Env) get(name string) string {
	if e == nil {
		return ""
	}
	return e(name)
}

// GitSource is a resolved git source: URL, provider and one reference.
type GitSource struct {
	URL, Provider, Commit, Branch, Tag string
}

// Ref is the reference the source pins.
func (g GitSource) Ref() string {
	switch {
	case g.Commit != "":
		return g.Commit
	case g.Tag != "":
		return "tag " + g.Tag
	}
	return "branch " + g.Branch
}

// GitSource resolves a git source from the config and, for what it leaves
// out, GitHub Actions' environment: the URL from
// $GITHUB_SERVER_URL/$GITHUB_REPOSITORY and the commit from $GITHUB_SHA.
func (c *Config) GitSource(env Env) (GitSource, error) {
	g := GitSource{URL: c.Source.URL, Provider: c.Source.Provider, Commit: c.Source.Commit, Branch: c.Source.Branch, Tag: c.Source.Tag}
	if g.URL == "" {
		server, repo := env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY")
		if server == "" || repo == "" {
			return g, fmt.Errorf("source.kind is git but no repository URL is known: set databricks.source.url, or run in GitHub Actions (GITHUB_SERVER_URL and GITHUB_REPOSITORY)")
		}
		g.URL = strings.TrimSuffix(server, "/") + "/" + repo
	}
	refs := 0
	for _, r := range []string{g.Commit, g.Branch, g.Tag} {
		if r != "" {
			refs++
		}
	}
	if refs > 1 {
		return g, fmt.Errorf("databricks.source sets more than one of commit, branch and tag; keep one")
	}
	if refs == 0 {
		g.Commit = env.get("GITHUB_SHA")
		if g.Commit == "" {
			return g, fmt.Errorf("source.kind is git but no commit is known: set databricks.source.commit (or branch or tag), or run in GitHub Actions (GITHUB_SHA)")
		}
	}
	return g, nil
}

// VolumeRoot is /Volumes/<catalog>/<schema>/<volume>.
func (c *Config) VolumeRoot() string {
	return "/Volumes/" + c.Catalog + "/" + c.Schema + "/" + c.Volume
}

// apiPath is a workspace path as the REST API takes it (without the
// /Workspace prefix of the FUSE view).
func apiPath(p string) string {
	if p == "/Workspace" {
		return "/"
	}
	if rest, ok := strings.CutPrefix(p, "/Workspace/"); ok {
		return "/" + rest
	}
	return p
}

// fusePath is a workspace path as code running on Databricks sees it.
func fusePath(p string) string {
	return "/Workspace" + apiPath(p)
}

var ucIdent = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,254}$`)

// Validate checks the config, the environment it needs and the stages'
// notebooks without calling Databricks. field is the path of the target's
// databricks block, e.g. pipelines.sentiment.targets.dev.databricks.
func (c *Config) Validate(env Env, field, projectRoot string, notebooks []string) diag.Diagnostics {
	var ds diag.Diagnostics
	errf := func(sub, format string, args ...any) *diag.Diagnostic {
		ds = append(ds, diag.Errorf(diag.Pos{}, field+"."+sub, format, args...))
		return &ds[len(ds)-1]
	}
	if c.Host == "" && c.Profile == "" && env.get("DATABRICKS_HOST") == "" && env.get("DATABRICKS_CONFIG_PROFILE") == "" && !hasConfigFile(env) {
		d := errf("host", "no Databricks workspace is configured")
		d.Fix = "set DATABRICKS_HOST (e.g. https://adb-123.4.azuredatabricks.net), or databricks.host or databricks.profile in the target"
	} else if host, missing := credentialsMissing(c, env); missing {
		d := errf("host", "no Databricks credentials for %s", host)
		d.Fix = "set DATABRICKS_TOKEN (a personal access token), or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (a service principal), or DATABRICKS_AUTH_TYPE=github-oidc in GitHub Actions; or run databricks auth login and name the profile in databricks.profile"
	}
	if d, err := time.ParseDuration(c.ConnectTimeout); c.ConnectTimeout != "" && (err != nil || d <= 0) {
		errf("connect_timeout", "connect_timeout %q is not a positive duration", c.ConnectTimeout).Fix = `use a Go duration such as "30s" or "2m"`
	}
	root := c.WorkspaceRoot
	switch {
	case !strings.HasPrefix(root, "/"):
		errf("workspace_root", "workspace_root %q must be an absolute workspace path", root)
	case slices.Contains(strings.Split(root, "/"), ".."):
		errf("workspace_root", "workspace_root %q must not contain '..'", root)
	case apiPath(path.Clean(root)) == "/":
		errf("workspace_root", "workspace_root must be a folder below the workspace root, e.g. /Workspace/Shared/pipectl")
	}
	if !strings.HasPrefix(c.ExperimentRoot, "/") || slices.Contains(strings.Split(c.ExperimentRoot, "/"), "..") {
		errf("experiment_root", "experiment_root %q must be an absolute workspace folder without '..'", c.ExperimentRoot)
	}
	if c.PerUserSchema && !c.PerUser {
		d := errf("per_user_schema", "per_user_schema is set but per_user is not")
		d.Fix = "set per_user: true as well, or remove per_user_schema"
	}
	c.Job.validate(errf)
	for name, v := range map[string]string{"catalog": c.Catalog, "schema": c.Schema, "volume": c.Volume} {
		if !ucIdent.MatchString(v) {
			d := errf(name, "%s %q is not a Unity Catalog name pipectl can use", name, v)
			d.Fix = "use letters, digits, '_' and '-'"
		}
	}
	switch c.Source.Kind {
	case SourceWorkspace:
	case SourceGit:
		if _, err := c.GitSource(env); err != nil {
			errf("source", "%v", err)
		}
	default:
		errf("source.kind", "source.kind %q is not workspace or git", c.Source.Kind)
	}
	switch c.Compute.Kind {
	case ComputeServerless:
	case ComputeExistingCluster:
		if c.Compute.ExistingClusterID == "" {
			errf("compute.existing_cluster_id", "compute.kind is existing_cluster but existing_cluster_id is empty")
		}
	case ComputeNewCluster:
		ds = append(ds, c.Compute.validateCluster(field+".compute")...)
	default:
		errf("compute.kind", "compute.kind %q is not serverless, existing_cluster or new_cluster", c.Compute.Kind)
	}
	for _, nb := range notebooks {
		if err := checkNotebook(projectRoot, nb); err != nil {
			errf("", "%v", err).Path = field
		}
	}
	if _, err := readRequirements(projectRoot); err != nil {
		errf("compute", "%v", err)
	}
	return ds
}

func hasConfigFile(env Env) bool {
	name := env.get("DATABRICKS_CONFIG_FILE")
	if name == "" && env.get("HOME") != "" {
		name = filepath.Join(env.get("HOME"), ".databrickscfg")
	}
	if name == "" {
		return false
	}
	_, err := os.Stat(name)
	return err == nil
}

// checkNotebook checks that a stage's notebook exists under the project
// root and is a Databricks source-format notebook.
func checkNotebook(projectRoot, rel string) error {
	if filepath.IsAbs(rel) || slices.Contains(strings.Split(filepath.ToSlash(rel), "/"), "..") {
		return fmt.Errorf("notebook %s must be a path inside the project", rel)
	}
	b, err := os.ReadFile(filepath.Join(projectRoot, rel))
	if err != nil {
		return fmt.Errorf("notebook %s: %v", rel, err)
	}
	if !bytes.HasPrefix(b, []byte(notebookHeader)) {
		return fmt.Errorf("notebook %s does not start with %q: Databricks would not run it as a notebook", rel, notebookHeader)
	}
	return nil
}
