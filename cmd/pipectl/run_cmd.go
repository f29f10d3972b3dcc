package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/lock"
	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/record"
	runner "github.com/pipectl/pipectl/engine/run"
)

// RunFlags choose which stages a run runs. plan takes them too, so that
// any `pipectl run` command line is a valid `pipectl plan` command line.
type RunFlags struct {
	Only        []string `name:"only" sep:"none" placeholder:"STAGE" help:"Run only STAGE (repeatable); its upstream outputs come from the cache or an earlier run."`
	From        string   `name:"from" placeholder:"STAGE" help:"Run STAGE and every stage downstream of it; upstream outputs come from the cache or an earlier run."`
	NoCache     bool     `name:"no-cache" help:"Run every selected stage even when the cache has its outputs (results are still cached)."`
	Resume      string   `name:"resume" placeholder:"RUN_ID" help:"Continue run RUN_ID ('latest' for the newest): rerun its failed, cancelled and never-started stages, reuse what succeeded."`
	Parallelism int      `name:"parallelism" short:"j" placeholder:"N" help:"Run at most N stages at once (default: number of CPUs)."`
	Wait        bool     `name:"wait" help:"When the pipeline is already running on the target, wait for that run to end instead of stopping."`
}

// RunCmd runs a pipeline.
type RunCmd struct {
	SpecFlags
	Pipeline string   `arg:"" help:"Pipeline name."`
	Target   string   `short:"t" help:"Target (default: the pipeline's default_target)."`
	Set      []string `name:"set" sep:"none" placeholder:"STAGE.PARAM=VALUE" help:"Override a stage parameter for this run (repeatable)."`
	RunFlags
	JSON    bool `name:"json" help:"Print events as JSON lines on stdout (see docs/RUNS.md) instead of a summary."`
	Verbose bool `short:"v" name:"verbose" help:"Let notebooks print their libraries' own messages too (MLflow's warnings and links), in the stage logs and on stderr."`
}

// testNowEnv freezes pipectl's clock at an RFC 3339 instant and makes run
// ids sequential. For golden tests only: durations read 0s.
const testNowEnv = "PIPECTL_TEST_NOW"

// clock returns pipectl's clock: the real one, or the frozen one of
// PIPECTL_TEST_NOW.
func (a *App) clock() (now func() time.Time, frozen bool, err error) {
	v := a.Getenv(testNowEnv)
	if v == "" {
		return time.Now, false, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, false, invalidf("%s=%q: want an RFC 3339 time such as 2026-01-02T03:04:05Z", testNowEnv, v)
	}
	return func() time.Time { return t }, true, nil
}

// stateDir is where pipectl keeps its state: --state-dir, or the
// project's .pipectl directory.
func (a *App) stateDir() string {
	if a.State != "" {
		return a.State
	}
	return filepath.Join(a.Root, ".pipectl")
}

// records returns the run store.
func (a *App) records() (*record.Store, error) {
	_, frozen, err := a.clock()
	if err != nil {
		return nil, err
	}
	return &record.Store{Dir: record.DirIn(a.stateDir()), Sequential: frozen}, nil
}

// newRunner returns a runner for pl with the project's stores.
func (a *App) newRunner(pl *plan.Plan) (*runner.Runner, error) {
	now, _, err := a.clock()
	if err != nil {
		return nil, err
	}
	recs, err := a.records()
	if err != nil {
		return nil, err
	}
	reg := a.registry()
	return &runner.Runner{
		Plan: pl, Open: reg.Open, ProjectRoot: a.Root, StateDir: a.stateDir(),
		Records: recs, Cache: &cache.Store{Dir: filepath.Join(a.stateDir(), "cache")},
		Hasher: cache.NewHasher(a.Root), Now: now, Version: version, GitCommit: gitCommit(a.Ctx, a.Root),
	}, nil
}

// gitCommit returns the project's HEAD commit, or "" when it is not a git
// checkout (best effort: records and executors only show it).
func gitCommit(ctx context.Context, root string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--verify", "-q", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// runOptions turns flags into runner options.
func (f RunFlags) runOptions(sets []string) runner.Options {
	return runner.Options{Parallelism: f.Parallelism, Only: f.Only, From: f.From, NoCache: f.NoCache, Sets: sets, Resume: f.Resume}
}

// resumeTarget reads the target and --set values of a run to resume: a
// resumed run keeps them.
func (a *App) resumeTarget(f RunFlags, pipeline, target string, sets []string) (string, []string, error) {
	if f.Resume == "" {
		return target, sets, nil
	}
	recs, err := a.records()
	if err != nil {
		return "", nil, err
	}
	id, err := recs.Resolve(f.Resume, pipeline)
	if err != nil {
		return "", nil, invalidf("--resume: %v", err)
	}
	rec, err := recs.Load(id)
	if err != nil {
		return "", nil, invalidf("--resume: %v", err)
	}
	if rec.Pipeline != pipeline {
		return "", nil, invalidf("--resume %s: that run is of pipeline %s, not %s", id, rec.Pipeline, pipeline)
	}
	if target != "" && target != rec.Target {
		return "", nil, invalidf("--resume %s: that run is on target %s; drop --target or pass --target %s", id, rec.Target, rec.Target)
	}
	if len(sets) > 0 {
		return "", nil, invalidf("--resume keeps the run's --set values (%s); start a new run to change them", strings.Join(rec.Options.Sets, " "))
	}
	return rec.Target, rec.Options.Sets, nil
}

// Run runs the pipeline.
func (c *RunCmd) Run(app *App) error {
	app.Verbose = c.Verbose
	target, sets, err := app.resumeTarget(c.RunFlags, c.Pipeline, c.Target, c.Set)
	if err != nil {
		return err
	}
	pl, err := app.buildPlan(c.Specs, c.Pipeline, target, sets)
	if err != nil {
		return err
	}
	r, err := app.newRunner(pl)
	if err != nil {
		return err
	}
	ctx := app.Ctx
	ds, err := r.Validate(ctx)
	if err != nil {
		return err
	}
	for i := range ds {
		if !ds[i].Pos.IsValid() {
			ds[i].Pos = pl.Target.Pos // executors know fields, not positions
		}
	}
	app.printDiagnostics(ds)
	if ds.HasErrors() {
		fmt.Fprintf(app.Stderr, "pipectl: target %s cannot run %s: %s\n", pl.Target.Name, pl.Pipeline.Name, ds.Summary())
		return alreadyPrinted(exitInvalid)
	}

	lk, err := app.lockRun(ctx, pl, c.Wait)
	if err != nil {
		return err
	}
	defer lk.Release()

	var out runOutput
	force, stopSignals := app.forceOnSecondSignal(func(msg string) {
		if out != nil {
			out.Notice(msg)
		} else {
			fmt.Fprintln(app.Stderr, "pipectl: "+msg)
		}
	})
	defer stopSignals()
	opts := c.runOptions(c.Set)
	opts.Force = force
	p, err := r.Prepare(ctx, opts)
	var ue *runner.UsageError
	switch {
	case errors.As(err, &ue):
		return invalidf("%v", ue.Err)
	case errors.Is(err, runner.ErrNothingToResume):
		fmt.Fprintf(app.Stderr, "pipectl: %v\n", err)
		return nil
	case err != nil:
		return err
	}

	out = app.newRunOutput(c.JSON, pl)
	r.Sink = out.Event
	rec, err := p.Execute(ctx, lk.SetRunID)
	if rec != nil {
		out.Close(rec)
		app.writeGitHub(rec, pl)
	}
	var fe *runner.FailedError
	if errors.As(err, &fe) {
		if e := fe.Run.Error; e != nil && e.UserError && !c.JSON {
			// The message was shown with the stage and in the summary.
			err = fmt.Errorf("run %s failed: stage %s: its input or parameters need fixing (see above)", fe.Run.ID, e.Stage)
		}
		return &exitError{code: exitRunFailed, err: err}
	}
	return err
}

// lockRun takes the pipeline/target lock. A stale lock's run is marked
// interrupted.
func (a *App) lockRun(ctx context.Context, pl *plan.Plan, wait bool) (*lock.Lock, error) {
	now, _, _ := a.clock()
	name := lock.Name(pl.Pipeline.Name, pl.Target.Name)
	lk, stale, err := lock.Acquire(ctx, filepath.Join(a.stateDir(), "locks"), name, lock.Self("", now()), lock.Options{
		Wait: wait,
		OnWait: func(o lock.Owner) {
			fmt.Fprintf(a.Stderr, "pipectl: waiting: %s\n", (&lock.BusyError{Name: pl.Pipeline.Name + " on " + pl.Target.Name, Owner: o}).Error())
		},
	})
	var busy *lock.BusyError
	if errors.As(err, &busy) {
		busy.Name = pl.Pipeline.Name + " on target " + pl.Target.Name
		return nil, &exitError{code: exitRunFailed, err: fmt.Errorf("%v; wait for it with --wait, or see pipectl runs", busy)}
	}
	if err != nil {
		return nil, err
	}
	if stale != nil && stale.RunID != "" {
		a.markInterrupted(stale, now())
	}
	return lk, nil
}

// markInterrupted records that a stale lock's run died.
func (a *App) markInterrupted(o *lock.Owner, now time.Time) {
	recs, err := a.records()
	if err != nil {
		return
	}
	rec, err := recs.Load(o.RunID)
	if err != nil || !rec.MarkInterrupted(now) {
		return
	}
	if err := recs.Save(rec); err != nil {
		fmt.Fprintf(a.Stderr, "pipectl: warning: cannot mark run %s interrupted: %v\n", o.RunID, err)
		return
	}
	fmt.Fprintf(a.Stderr, "pipectl: run %s was interrupted (its process %d is gone); resume it with: pipectl run %s --resume %s\n",
		rec.ID, o.PID, rec.Pipeline, rec.ID)
}

// forceOnSecondSignal returns a channel closed at the second SIGINT or
// SIGTERM: the first cancels the run through app.Ctx, the second stops
// waiting for stages that do not stop.
func (a *App) forceOnSecondSignal(notice func(string)) (<-chan struct{}, func()) {
	force := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	done := make(chan struct{})
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		n := 0
		for {
			select {
			case <-sigs:
				n++
				if n == 1 {
					notice("cancelling running stages (interrupt again to stop without waiting)")
				} else {
					close(force)
					return
				}
			case <-done:
				return
			}
		}
	}()
	return force, func() { signal.Stop(sigs); close(done) }
}
