package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pipectl/pipectl/internal/databricks/emulator"
	"github.com/pipectl/pipectl/plugins/local"
)

// DevCmd groups tools for developing and demonstrating pipectl.
type DevCmd struct {
	Python             DevPythonCmd   `cmd:"" help:"Build (if needed) the virtualenv the local executor runs notebooks in, and print its interpreter."`
	DatabricksEmulator DevEmulatorCmd `cmd:"" name:"databricks-emulator" help:"Serve a Databricks REST API emulator that runs the notebooks it is sent (for demos and tests; see docs/DATABRICKS.md)."`
}

// DevEmulatorCmd serves the emulator until interrupted.
type DevEmulatorCmd struct {
	Port   int      `default:"0" help:"Port on 127.0.0.1 (0: a free one)."`
	State  string   `name:"emulator-dir" placeholder:"DIR" help:"The emulator's directory: workspace, Volumes, run logs, MLflow store (default: a new temporary directory, kept)."`
	Token  string   `placeholder:"TOKEN" help:"Bearer token clients must send (default: a random one, printed)."`
	Python string   `default:"python3" help:"Python with the notebooks' requirements (notebooks/requirements.txt), to run notebooks and MLflow."`
	Path   []string `name:"python-path" sep:"none" placeholder:"DIR" help:"Extra PYTHONPATH entry for notebooks, e.g. a notebooks/ directory with pipectl_runner (repeatable)."`
	MLflow string   `name:"mlflow-tracking-uri" placeholder:"URI" help:"MLflow server behind the databricks URIs (default: the emulator starts one)."`
	// Catalogs exist from the start: pipectl setup creates schemas and
	// Volumes, never catalogs.
	Catalogs []string `name:"catalog" default:"dev,staging,prod" placeholder:"NAME" help:"Unity Catalog catalogs the emulator's metastore has (repeatable)."`
	User     string   `name:"user" placeholder:"USER" help:"The token's identity (SCIM /Me; per-user targets name things after it; default pipectl-emulator@example.com)."`
}

// Run starts the emulator, prints the export lines a client shell needs to
// stdout and serves until Ctrl-C, which cancels its runs.
func (c *DevEmulatorCmd) Run(app *App) error {
	dir := c.State
	if dir == "" {
		d, err := os.MkdirTemp("", "pipectl-databricks-emulator-")
		if err != nil {
			return err
		}
		dir = d
	}
	token := c.Token
	if token == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		token = "dapi-emulator-" + hex.EncodeToString(b)
	}
	var paths []string
	for _, p := range c.Path {
		abs, err := filepath.Abs(p)
		if err != nil {
			return invalidf("--python-path %s: %v", p, err)
		}
		paths = append(paths, abs)
	}
	e, err := emulator.Start(emulator.Options{
		Dir: dir, Token: token, Addr: "127.0.0.1:" + strconv.Itoa(c.Port), Python: c.Python, PythonPath: paths,
		MLflowTrackingURI: c.MLflow, Env: []string{"PATH=" + app.Getenv("PATH")}, Catalogs: c.Catalogs, UserName: c.User,
		Logf: func(format string, args ...any) { fmt.Fprintf(app.Stderr, "emulator: "+format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(app.Stdout, "export DATABRICKS_HOST=%s\nexport DATABRICKS_TOKEN=%s\n", e.URL, token)
	fmt.Fprintf(app.Stderr, "pipectl: Databricks emulator serving %s, state in %s; Ctrl-C stops it\n", e.URL, dir)
	<-app.Ctx.Done()
	fmt.Fprintln(app.Stderr, "pipectl: stopping the emulator (cancelling its runs)")
	return e.Close()
}

// DevPythonCmd prints the managed venv's interpreter, e.g. to run the
// notebooks' tests or a notebook by hand in the environment runs use.
type DevPythonCmd struct {
	Spark bool `help:"The Spark engine's virtualenv (notebooks/requirements-spark.txt: the runtime pins plus pyspark and delta-spark) instead of the pandas one."`
}

// Run builds the venv when it is missing (progress on stderr) and prints
// the interpreter's path on stdout.
func (c *DevPythonCmd) Run(app *App) error {
	env, err := local.EnsureVenv(app.Ctx, local.VenvOptions{
		ProjectRoot: app.Root, StateDir: app.stateDir(), Python: app.Getenv("PIPECTL_PYTHON"),
		Environ: os.Environ(), Progress: func(line string) { fmt.Fprintln(app.Stderr, line) }, Spark: c.Spark,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(app.Stdout, env.Python)
	return nil
}
