package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/alecthomas/kong"
)

// CLI is the command line. Each command lives in its own xxx_cmd.go.
type CLI struct {
	Dir      string `short:"C" name:"dir" placeholder:"DIR" help:"Run in DIR, the project root (default: the working directory)."`
	StateDir string `name:"state-dir" env:"PIPECTL_STATE_DIR" placeholder:"DIR" help:"Keep runs, cache, venvs and the local MLflow store in DIR (default: .pipectl in the project root)."`

	Validate  ValidateCmd  `cmd:"" help:"Check specs against the schemas and pipectl's rules."`
	Init      InitCmd      `cmd:"" help:"Start a new project in DIR from the shipped template: specs, notebooks, workflows, README."`
	Data      DataCmd      `cmd:"" help:"Look at input data: pipectl data inspect FILE."`
	Pipelines PipelinesCmd `cmd:"" help:"List pipelines."`
	Plan      PlanCmd      `cmd:"" help:"Show what a run would do: stages in order with resolved parameters."`
	Graph     GraphCmd     `cmd:"" help:"Print a pipeline's stage graph as Mermaid or DOT."`
	Run       RunCmd       `cmd:"" help:"Run a pipeline: stages in DAG order, in parallel where they can, cached where nothing changed."`
	Runs      RunsCmd      `cmd:"" help:"List runs, or show one (runs show RUN_ID)."`
	Logs      LogsCmd      `cmd:"" help:"Print a stage's log of a run."`
	Schedule  ScheduleCmd  `cmd:"" help:"Print a pipeline's schedule as GitHub Actions or Databricks (Quartz) cron."`
	Deploy    DeployCmd    `cmd:"" help:"Deploy a pipeline as a scheduled multi-task Databricks job (or --destroy it)."`
	Setup     SetupCmd     `cmd:"" help:"Create a Databricks target's Unity Catalog schema and Volume when missing, and upload data files (--upload); idempotent."`
	Gc        GcCmd        `cmd:"" name:"gc" help:"Delete old runs and predictions, unused data versions, cache entries, temporary directories and venvs (--dry-run lists them)."`
	UI        UICmd        `cmd:"" name:"ui" help:"Serve the MLflow UI on the local store (<state dir>/mlflow)."`
	Version   VersionCmd   `cmd:"" help:"Print pipectl's version."`
	Executors ExecutorsCmd `cmd:"" help:"List executors: built-ins and plugins found, with version and protocol, or why one is ignored."`
	Executor  ExecutorCmd  `cmd:"" name:"__executor" hidden:"" help:"Serve a built-in executor to pipectl (internal)."`
	Dev       DevCmd       `cmd:"" help:"Developer tools: a Databricks API emulator."`
}

// SpecFlags selects the spec packages of commands that take a pipeline.
type SpecFlags struct {
	Specs []string `name:"specs" sep:"none" placeholder:"PATH" help:"Spec directories or .cue files (default: specs/)."`
}

// exitCode is how kong's Exit hook reports --help and parse errors back to
// run without calling os.Exit (which would skip deferred cleanup).
type exitCode int

func run(args []string) (code int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer stopExecutorPlugins() // after the registry below closed them gracefully
	app := &App{Ctx: ctx, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	defer func() {
		if app.Registry != nil {
			if err := app.Registry.Close(); err != nil {
				fmt.Fprintf(app.Stderr, "pipectl: %v\n", err)
			}
		}
	}()
	return runApp(app, args)
}

// runApp parses args and runs the command with app's streams.
func runApp(app *App, args []string) (code int) {
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("pipectl"),
		kong.Description("Run ML pipelines described as CUE specs, locally or on Databricks."),
		kong.Writers(app.Stdout, app.Stderr),
		kong.Exit(func(c int) { panic(exitCode(c)) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Bind(app),
	)
	if err != nil {
		fmt.Fprintf(app.Stderr, "pipectl: %v\n", err)
		return exitRunFailed
	}
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code = int(c)
			if code != 0 {
				code = exitInvalid
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		var pe *kong.ParseError
		if errors.As(err, &pe) {
			fmt.Fprintf(app.Stderr, "pipectl: %v\n", err)
			fmt.Fprintf(app.Stderr, "run 'pipectl %s--help' for usage\n", commandPrefix(pe.Context))
			return exitInvalid
		}
		fmt.Fprintf(app.Stderr, "pipectl: %v\n", err)
		return exitInvalid
	}
	if err := app.setRoot(cli.Dir); err != nil {
		return app.errorCode(err)
	}
	app.State = cli.StateDir
	if app.State != "" && !filepath.IsAbs(app.State) {
		app.State = filepath.Join(app.Root, app.State)
	}
	return app.errorCode(kctx.Run())
}

func commandPrefix(kctx *kong.Context) string {
	if kctx == nil {
		return ""
	}
	if cmd := kctx.Command(); cmd != "" {
		return cmd + " "
	}
	return ""
}

// setRoot resolves the project root from -C.
func (a *App) setRoot(dir string) error {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		a.Root = wd
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return invalidf("-C %s: %v", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return invalidf("-C %s: not a directory", dir)
	}
	a.Root = abs
	return nil
}

var _ io.Writer = (*os.File)(nil)
