package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/proc"
	"github.com/pipectl/pipectl/internal/pyenv"
)

// Name is the executor's name in specs.
const Name = "local"

// PythonDir is the directory, relative to the project root, that holds the
// runner package (pipectl_runner) and requirements.txt, the notebooks'
// dependencies the venv is built from.
const PythonDir = "notebooks"

// MinPython is the oldest Python the notebooks support (pyproject.toml).
var MinPython = [2]int{3, 10}

// Defaults of Options.
const (
	DefaultGrace         = 10 * time.Second
	DefaultServerTimeout = 5 * time.Minute
	DefaultUIPort        = 5000
)

// Options configures the executor. Everything it reads from the environment
// comes through here.
type Options struct {
	// Python is the interpreter venvs are built from ($PIPECTL_PYTHON);
	// empty means python3 on PATH.
	Python string
	// Environ is the environment notebooks and the MLflow server start from
	// (before scrubEnv); nil means an empty one.
	Environ []string
	// Version is reported by Describe.
	Version string
	// Grace is the time a stopped notebook gets between SIGTERM and SIGKILL.
	Grace time.Duration
	// ServerTimeout bounds the MLflow server's start-up.
	ServerTimeout time.Duration
	// UIPort is the port `pipectl ui` serves on by default; links to MLflow
	// runs point there, since the run's own server stops with the run.
	UIPort int
	// NoWorker starts every stage as a plain `python -m pipectl_runner`
	// process instead of forking it from the run's warm stage worker
	// (worker.go; $PIPECTL_LOCAL_WORKER=0).
	NoWorker bool
}

// Executor runs notebooks on this machine. One Executor serves one pipectl
// run: it keeps a venv and an MLflow server per state directory until Close.
type Executor struct {
	opts Options

	mu      sync.Mutex
	ctx     context.Context // ends on Close: venv builds and servers belong to the executor, not a stage
	cancel  context.CancelFunc
	venvs   map[string]*venvBuild
	servers map[string]*server
	workers map[string]*worker
	closed  bool
	// inFlight and served are the stages running here and the pipectl runs
	// this executor serves (see sweepRuns).
	inFlight map[stageKey]int
	served   map[string]bool
	runs     sync.WaitGroup // Runs in progress; Close waits for them
}

var _ executor.Executor = (*Executor)(nil)

// New returns a local executor.
func New(opts Options) *Executor {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.ServerTimeout <= 0 {
		opts.ServerTimeout = DefaultServerTimeout
	}
	if opts.UIPort == 0 {
		opts.UIPort = DefaultUIPort
	}
	if opts.Version == "" {
		opts.Version = "builtin"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Executor{opts: opts, ctx: ctx, cancel: cancel, venvs: map[string]*venvBuild{}, servers: map[string]*server{},
		workers: map[string]*worker{}, inFlight: map[stageKey]int{}, served: map[string]bool{}}
}

// Describe implements executor.Executor.
func (e *Executor) Describe(ctx context.Context) (executor.Info, error) {
	return executor.Info{Name: Name, Version: e.opts.Version, Protocol: executor.ProtocolVersion,
		Description: "runs notebooks on this machine in a managed virtualenv, with a local MLflow tracking store and registry"}, nil
}

// Close stops the stages still running (as if cancelled), any venv build in
// progress, then the stage workers and MLflow servers.
func (e *Executor) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.runs.Wait()
	e.mu.Lock()
	servers, workers := e.servers, e.workers
	e.servers, e.workers = map[string]*server{}, map[string]*worker{}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
	}
	for _, w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.Close() }()
	}
	wg.Wait()
	return nil
}

// Config is the local target's configuration block (schemas/targets.cue
// #LocalTarget). Relative paths are relative to the project root.
type Config struct {
	DataRoot   string `json:"data_root"`
	OutputRoot string `json:"output_root"`
}

func parseConfig(raw json.RawMessage, root string) (Config, error) {
	c := Config{DataRoot: ".pipectl/data", OutputRoot: ".pipectl/predictions"}
	if len(raw) > 0 && string(raw) != "null" {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("local target configuration: %v (known fields: data_root, output_root)", err)
		}
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(root, p)
	}
	c.DataRoot, c.OutputRoot = abs(c.DataRoot), abs(c.OutputRoot)
	return c, nil
}

func stateDir(t executor.Task) string {
	if t.StateDir != "" {
		return t.StateDir
	}
	return filepath.Join(t.ProjectRoot, ".pipectl")
}

// layout is where a task's files are.
type layout struct {
	root, state  string
	notebook     string // as given, relative to root
	pythonDir    string
	requirements string
	cfg          Config
}

func newLayout(t executor.Task) (layout, error) {
	if !filepath.IsAbs(t.ProjectRoot) {
		return layout{}, fmt.Errorf("project root %q is not an absolute path", t.ProjectRoot)
	}
	cfg, err := parseConfig(t.Config, t.ProjectRoot)
	if err != nil {
		return layout{}, err
	}
	l := layout{root: t.ProjectRoot, state: stateDir(t), notebook: t.Notebook, cfg: cfg,
		pythonDir: filepath.Join(t.ProjectRoot, PythonDir)}
	l.requirements = filepath.Join(l.pythonDir, requirementsFile(t.Params))
	if err := checkPythonDir(l.pythonDir); err != nil {
		return layout{}, err
	}
	if _, err := os.Stat(l.requirements); err != nil {
		return layout{}, fmt.Errorf("%s not found: a stage with engine \"spark\" runs in a venv built from it (the runtime requirements plus pyspark and delta-spark: copy it from pipectl's template with pipectl init, or set engine: pandas)", l.requirements)
	}
	if _, err := os.Stat(filepath.Join(l.root, l.notebook)); err != nil {
		return layout{}, fmt.Errorf("notebook %s: not found under %s", l.notebook, l.root)
	}
	return l, nil
}

// SparkRequirements is the requirements file of the venv that stages with
// the parameter engine "spark" run in: requirements.txt plus a local Spark
// (docs/STAGES.md, "Engines"). A separate venv keeps the pandas one small.
const SparkRequirements = "requirements-spark.txt"

// requirementsFile names the requirements file (in PythonDir) of a stage's
// venv: SparkRequirements for a stage with engine "spark", else
// requirements.txt.
func requirementsFile(params map[string]string) string {
	if params["engine"] == "spark" {
		return SparkRequirements
	}
	return "requirements.txt"
}

// checkPythonDir checks that dir holds the runner and the requirements.
func checkPythonDir(dir string) error {
	for _, f := range []string{filepath.Join("pipectl_runner", "__main__.py"), "requirements.txt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("%s not found: the local executor runs notebooks with the runner in %s/pipectl_runner and builds its virtualenv from %s/requirements.txt", filepath.Join(dir, f), PythonDir, PythonDir)
		}
	}
	return nil
}

// Validate implements executor.Executor: the target's configuration, the
// runner and requirements, and every stage's notebook.
func (e *Executor) Validate(ctx context.Context, req executor.ValidateRequest) (diag.Diagnostics, error) {
	var ds diag.Diagnostics
	targetPath := fmt.Sprintf("pipelines.%s.targets.%s", req.Pipeline, req.Target)
	if _, err := parseConfig(req.Config, req.ProjectRoot); err != nil {
		ds = append(ds, diag.Errorf(diag.Pos{}, targetPath+".local", "%v", err))
	}
	if err := checkPythonDir(filepath.Join(req.ProjectRoot, PythonDir)); err != nil {
		ds = append(ds, diag.Errorf(diag.Pos{}, targetPath, "%v", err))
	}
	for _, s := range req.Stages {
		if _, err := os.Stat(filepath.Join(req.ProjectRoot, s.Notebook)); err != nil {
			ds = append(ds, diag.Errorf(diag.Pos{}, fmt.Sprintf("pipelines.%s.stages.%s.notebook", req.Pipeline, s.Name),
				"notebook %s not found under %s", s.Notebook, req.ProjectRoot))
		}
	}
	return ds, nil
}

// venvBuild is one Ensure shared by every stage that needs the venv;
// stages waiting on it all see its progress.
type venvBuild struct {
	done  chan struct{}
	env   *pyenv.Env
	err   error
	mu    sync.Mutex
	sinks map[int]executor.EventSink
	next  int
}

func (b *venvBuild) subscribe(sink executor.EventSink) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	b.sinks[id] = sink
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.sinks, id)
	}
}

func (b *venvBuild) progress(line string) {
	b.mu.Lock()
	sinks := make([]executor.EventSink, 0, len(b.sinks))
	for _, s := range b.sinks {
		sinks = append(sinks, s)
	}
	b.mu.Unlock()
	ev := executor.Event{Time: time.Now(), Kind: executor.EventProgress, Text: line, Fraction: -1}
	for _, s := range sinks {
		s(ev)
	}
}

// venv returns the venv for l, building it once per executor.
func (e *Executor) venv(ctx context.Context, l layout, sink executor.EventSink) (*pyenv.Env, error) {
	key := l.state + "\x00" + l.requirements
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errors.New("the local executor is closed")
	}
	b, ok := e.venvs[key]
	if !ok {
		b = &venvBuild{done: make(chan struct{}), sinks: map[int]executor.EventSink{}}
		e.venvs[key] = b
	}
	e.mu.Unlock()
	unsubscribe := b.subscribe(sink)
	defer unsubscribe()
	if !ok {
		go func() {
			defer close(b.done)
			b.env, b.err = pyenv.Ensure(e.ctx, pyenv.Options{
				Python: e.opts.Python, Requirements: l.requirements, Dir: l.state,
				MinVersion: MinPython, Progress: b.progress, Env: scrubEnv(e.opts.Environ),
			})
		}()
	}
	select {
	case <-b.done:
		return b.env, b.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// server returns the MLflow server of a state directory, starting it (in
// the background) when there is none or the last one died.
func (e *Executor) server(state string, env *pyenv.Env) (*server, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("the local executor is closed")
	}
	if s, ok := e.servers[state]; ok && s.Alive() {
		return s, nil
	} else if ok {
		go s.Close()
	}
	s := startServer(NewStore(state), env.Python, e.opts.Environ, e.opts.ServerTimeout, 0)
	e.servers[state] = s
	return s, nil
}

// needsMLflow says whether a stage type talks to MLflow, so its Run waits
// for the server. Data stages do not; custom stages might.
func needsMLflow(stageType string) bool { return stageType != "data" }

// Run implements executor.Executor.
func (e *Executor) Run(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return executor.Result{}, errors.New("the local executor is closed")
	}
	e.runs.Add(1)
	e.mu.Unlock()
	defer e.runs.Done()
	defer e.begin(task)()

	parent := ctx
	// Close stops the stage too.
	ctx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	defer context.AfterFunc(e.ctx, cancelRun)()
	if task.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, task.Timeout)
		defer cancel()
	}
	stopped := func() executor.Result {
		msg := "cancelled"
		switch {
		case parent.Err() != nil:
		case e.ctx.Err() != nil:
			msg = "cancelled: the local executor was closed"
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			msg = fmt.Sprintf("timed out after %s", task.Timeout)
		}
		return executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: msg}}
	}
	l, err := newLayout(task)
	if err != nil {
		return failed(err.Error(), "", false), nil
	}
	env, err := e.venv(ctx, l, sink)
	if err != nil {
		if ctx.Err() != nil {
			return stopped(), nil
		}
		return failed("prepare the Python environment: "+firstLine(err.Error()), err.Error(), false), nil
	}
	srv, err := e.server(l.state, env)
	if err != nil {
		return failed(err.Error(), "", false), nil
	}
	trackingURI := srv.URL()
	if needsMLflow(task.Type) {
		if trackingURI, err = srv.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return stopped(), nil
			}
			return failed("the local MLflow server did not start", err.Error(), true), nil
		}
		e.sweepRuns(ctx, task, srv, sink)
	}

	// The runner's result files; removed with the attempt.
	// Owner-only: result files carry the stage's outputs.
	if err := os.MkdirAll(filepath.Join(l.state, "tmp"), 0o700); err != nil {
		return executor.Result{}, err
	}
	tmp, release, err := attemptDir(filepath.Join(l.state, "tmp"), safeName(task.Stage)+"-")
	if err != nil {
		return executor.Result{}, err
	}
	defer release()
	outFile, errFile := filepath.Join(tmp, "result.json"), filepath.Join(tmp, "error.json")

	stderrTail := newRing(maxDetailLines)
	emit := func(stream string) func(string) {
		return func(line string) {
			if stream == "stderr" {
				stderrTail.add(line)
			}
			sink(executor.Event{Time: time.Now(), Kind: executor.EventLog, Stream: stream, Text: line})
		}
	}
	cmd := e.runnerCmd(task, l, env, trackingURI, outFile, errFile)
	cmd.Stdout, cmd.Stderr = emit("stdout"), emit("stderr")
	note := func(format string, args ...any) {
		sink(executor.Event{Time: time.Now(), Kind: executor.EventLog, Stream: "stderr", Text: "pipectl: " + fmt.Sprintf(format, args...)})
	}
	st, err := e.runProcess(ctx, cmd, l, needsMLflow(task.Type), note)
	if err != nil {
		return failed(fmt.Sprintf("start the notebook runner: %v", err), "", false), nil
	}
	if st.Stopped {
		e.killRuns(task, srv, sink)
		return stopped(), nil
	}
	if st.Success() {
		return e.succeeded(ctx, task, outFile, srv, sink), nil
	}
	res := e.notebookFailure(task, st, errFile, stderrTail)
	if needsMLflow(task.Type) && !srv.Alive() {
		res.Error.Retryable = true
		res.Error.Message = "the local MLflow server stopped while the stage ran (" + res.Error.Message + ")"
		res.Error.Detail = srv.logs.tail(maxDetailLines)
		// The stage's runs could not be ended: start the next server now
		// (the retry needs it anyway) and mark them.
		if next, err := e.server(l.state, env); err == nil {
			wctx, cancel := context.WithTimeout(context.Background(), e.opts.ServerTimeout)
			if _, err := next.Wait(wctx); err == nil {
				srv = next
			}
			cancel()
		}
	}
	e.killRuns(task, srv, sink)
	return res, nil
}

// runnerCmd is `python -m pipectl_runner NOTEBOOK --param ...` in the
// project root, under the guard, in the venv.
func (e *Executor) runnerCmd(task executor.Task, l layout, env *pyenv.Env, trackingURI, outFile, errFile string) proc.Cmd {
	args := []string{"-m", "pipectl_runner", l.notebook}
	for _, p := range stageParams(task, l, trackingURI) {
		args = append(args, "--param", p)
	}
	args = append(args, "--output", outFile, "--error-output", errFile)
	environ := stageEnv(e.opts.Environ, l, trackingURI)
	return proc.Cmd{Path: env.Python, Args: args, Dir: l.root, Env: environ, Guard: env.Python, Grace: e.opts.Grace}
}

// safeName keeps letters, digits, '-' and '_' of a stage name, for a file
// name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// stageParams returns NAME=VALUE for the context parameters, in the
// contract's order, then the stage's own (sorted). Context parameters are
// the executor's: a stage parameter of the same name is ignored.
func stageParams(task executor.Task, l layout, trackingURI string) []string {
	all := executor.NotebookParams(task, executor.Place{DataRoot: l.cfg.DataRoot, OutputRoot: l.cfg.OutputRoot,
		ProjectRoot: l.root, TrackingURI: trackingURI, RegistryURI: trackingURI})
	out := make([]string, 0, len(all))
	for _, name := range executor.ContextParamNames {
		out = append(out, name+"="+all[name])
		delete(all, name)
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		out = append(out, name+"="+all[name])
	}
	return out
}

func (e *Executor) succeeded(ctx context.Context, task executor.Task, outFile string, srv *server, sink executor.EventSink) executor.Result {
	b, err := os.ReadFile(outFile)
	if errors.Is(err, os.ErrNotExist) {
		if len(task.Outputs) > 0 {
			return failed(fmt.Sprintf("%s finished without dbutils.notebook.exit: a %s stage must exit with %s (docs/STAGES.md)", task.Notebook, task.Type, executor.ExitValueShape), "", false)
		}
		return executor.Result{Status: executor.Succeeded}
	}
	if err != nil {
		return failed(fmt.Sprintf("read the exit value: %v", err), "", false)
	}
	ev, err := executor.ParseExitValue(b, task.Outputs)
	if err != nil {
		return failed(fmt.Sprintf("%s: %v", task.Notebook, err), tailText(string(b)), false)
	}
	outputs, metrics := ev.Outputs, ev.Metrics
	for _, w := range ev.Warnings {
		sink(executor.Event{Time: time.Now(), Kind: executor.EventLog, Stream: "stderr", Text: "pipectl: " + w})
	}
	res := executor.Result{Status: executor.Succeeded, Outputs: outputs, Metrics: metrics}
	res.Links = e.links(ctx, outputs, srv)
	for _, l := range res.Links {
		sink(executor.Event{Time: time.Now(), Kind: executor.EventLink, Link: &l})
	}
	return res
}

// links points at the MLflow UI of `pipectl ui` (the run's own server
// stops with the run) for the run and the model version a stage reports.
func (e *Executor) links(ctx context.Context, outputs map[string]string, srv *server) []executor.Link {
	ui := fmt.Sprintf("http://127.0.0.1:%d", e.opts.UIPort)
	var links []executor.Link
	if runID := outputs["run_id"]; runID != "" && srv.Alive() {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		exp, err := newMLflowAPI(srv.URL()).runExperiment(lctx, runID)
		cancel()
		if err == nil && exp != "" {
			links = append(links, executor.Link{Label: "MLflow run (pipectl ui)",
				URL: fmt.Sprintf("%s/#/experiments/%s/runs/%s", ui, exp, runID)})
		}
	}
	if name, v := outputs["model_name"], outputs["model_version"]; name != "" && v != "" {
		links = append(links, executor.Link{Label: "MLflow model version (pipectl ui)",
			URL: fmt.Sprintf("%s/#/models/%s/versions/%s", ui, name, v)})
	}
	return links
}

// notebookFailure explains a runner that exited with an error.
func (e *Executor) notebookFailure(task executor.Task, st proc.Status, errFile string, stderrTail *ring) executor.Result {
	if b, err := os.ReadFile(errFile); err == nil {
		var re runnerError
		if json.Unmarshal(b, &re) == nil && re.UserError && re.Message != "" {
			res := failed(oneLine(re.Message), tailText(re.ErrorTrace), false)
			res.Error.UserError = true
			return res
		}
		if json.Unmarshal(b, &re) == nil && re.Error != "" {
			return failed(fmt.Sprintf("%s failed in cell %d: %s", task.Notebook, re.Cell, oneLine(re.Error)), tailText(re.ErrorTrace), false)
		}
	}
	tail := stderrTail.text()
	switch {
	case st.ExitCode == 2:
		// Usage error of the runner: its last line says what.
		return failed(fmt.Sprintf("%s: %s", task.Notebook, oneLine(lastLine(tail))), tailText(tail), false)
	case st.ExitCode > 128 && st.ExitCode < 160:
		return failed(fmt.Sprintf("%s was killed by signal %d (not by pipectl; out of memory?)", task.Notebook, st.ExitCode-128), tailText(tail), false)
	default:
		return failed(fmt.Sprintf("%s failed (%s)", task.Notebook, st), tailText(tail), false)
	}
}

// killRuns marks the stage's MLflow runs that are still RUNNING as KILLED:
// a notebook killed with SIGKILL cannot end its run.
func (e *Executor) killRuns(task executor.Task, srv *server, sink executor.EventSink) {
	select {
	case <-srv.ready:
	default:
		return // no server yet: the notebook cannot have started a run
	}
	if !srv.Alive() {
		return
	}
	// Not e.ctx: Close waits for this before it stops the server.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	api := newMLflowAPI(srv.URL())
	ids, err := api.runningRuns(ctx, task.RunID, task.Stage)
	note := func(format string, args ...any) {
		sink(executor.Event{Time: time.Now(), Kind: executor.EventLog, Stream: "stderr", Text: "pipectl: " + fmt.Sprintf(format, args...)})
	}
	if err != nil {
		note("could not look for MLflow runs left RUNNING: %v", err)
		return
	}
	for _, id := range ids {
		if err := api.killRun(ctx, id); err != nil {
			note("could not mark MLflow run %s KILLED: %v", id, err)
			continue
		}
		note("marked MLflow run %s KILLED", id)
	}
}

func failed(msg, detail string, retryable bool) executor.Result {
	return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: msg, Detail: detail, Retryable: retryable}}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
