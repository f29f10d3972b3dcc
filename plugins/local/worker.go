package local

import (
	"bufio"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pipectl/pipectl/internal/proc"
)

// workerSource is the stage worker (stage_worker.py): a Python process that
// imports the notebooks' heavy libraries once per run and forks a fresh
// process for each stage.
//
//go:embed stage_worker.py
var workerSource string

// workerScript is stage_worker.py without its docstring, for a readable `ps`.
var workerScript = "# pipectl: stage worker (plugins/local/stage_worker.py)\n" +
	workerSource[strings.Index(workerSource[3:], `"""`)+6:]

const (
	// workerStartTimeout bounds the wait for a new worker's socket: the
	// interpreter's start and the imports of numpy, pandas and pyarrow
	// (a second or two; more on a busy machine).
	workerStartTimeout = time.Minute
	// workerLaunchTimeout bounds the wait for the worker to fork a stage. It
	// serves requests between two imports, and waits for the last one for
	// stages that use MLflow: on a busy machine, that can take a while.
	workerLaunchTimeout = 2 * time.Minute
	// workerReady is the line the worker prints once it accepts requests.
	workerReady = "pipectl-worker: listening"
)

// perStageEnv are the variables a stage's environment has and the
// worker's does not: the worker's children set them (stage_worker.py).
var perStageEnv = []string{"MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"}

// worker is a running stage worker; it implements proc.Launcher.
type worker struct {
	python string
	env    []string // what it was started with: a stage's environment without perStageEnv
	dir    string   // private directory (0700) of the socket
	sock   string
	logs   *ring

	p       *proc.Process
	ready   chan struct{}
	err     error       // set before ready is closed
	broken  atomic.Bool // a launch failed: stages no longer use it
	noted   atomic.Bool // a stage has said that it did not use the worker
	stopped chan struct{}
}

// stageEnv is the environment of a stage's runner (and, without the
// per-stage variables, of the worker).
func stageEnv(environ []string, l layout, trackingURI string) []string {
	inherited := slices.DeleteFunc(scrubEnv(environ), func(kv string) bool { return strings.HasPrefix(kv, "PIPECTL_STATE_DIR=") })
	env := append(inherited,
		"PYTHONUNBUFFERED=1",
		"PYTHONPATH="+l.pythonDir, // the runner package
		// Where a local Spark session keeps its ivy cache and warehouse
		// (sentiment/spark.py).
		"PIPECTL_STATE_DIR="+l.state,
	)
	if trackingURI != "" {
		// For MLflow calls that do not go through the context parameters.
		env = append(env, "MLFLOW_TRACKING_URI="+trackingURI, "MLFLOW_REGISTRY_URI="+trackingURI)
	}
	return env
}

// withoutPerStage drops perStageEnv from env.
func withoutPerStage(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(perStageEnv, name)
	})
}

// startWorker starts a worker for python in root with env, in the
// background; Wait says when it accepts stages.
func startWorker(python, root string, env []string) *worker {
	w := &worker{python: python, env: env, logs: newRing(100), ready: make(chan struct{}), stopped: make(chan struct{})}
	fail := func(err error) *worker {
		w.err = err
		close(w.ready)
		close(w.stopped)
		return w
	}
	if !workerSupported {
		return fail(errors.New("stage workers need Unix"))
	}
	// A short path (socket paths are limited to about 100 bytes) that only
	// this user can enter: whoever connects can run code as this user.
	dir, err := os.MkdirTemp("", "pipectl-worker-")
	if err != nil {
		return fail(fmt.Errorf("stage worker: %w", err))
	}
	w.dir, w.sock = dir, filepath.Join(dir, "s")
	var once sync.Once
	listening := make(chan struct{})
	p, err := proc.Start(proc.Cmd{Path: python, Args: []string{"-c", workerScript, w.sock}, Dir: root, Env: env, Guard: python,
		Stdout: func(line string) {
			if line == workerReady {
				once.Do(func() { close(listening) })
			}
			w.logs.add(line)
		},
		Stderr: w.logs.add})
	if err != nil {
		os.RemoveAll(dir)
		return fail(fmt.Errorf("start the stage worker: %w", err))
	}
	w.p = p
	go func() {
		defer close(w.stopped)
		p.Wait()
		os.RemoveAll(dir)
	}()
	go func() {
		defer close(w.ready)
		t := time.NewTimer(workerStartTimeout)
		defer t.Stop()
		select {
		case <-listening:
		case <-p.Exited():
			st, _ := p.Wait()
			w.err = fmt.Errorf("the stage worker exited during start-up (%s): %s", st, w.logs.tail(10))
		case <-t.C:
			w.err = fmt.Errorf("the stage worker did not start within %s", workerStartTimeout)
			p.Stop()
		}
	}()
	return w
}

// Wait waits until the worker accepts stages or failed to start.
func (w *worker) Wait(ctx context.Context) error {
	select {
	case <-w.ready:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// usable reports whether stages should still be sent to the worker (or
// wait for it): it is starting or running, and no launch failed.
func (w *worker) usable() bool {
	if w.broken.Load() {
		return false
	}
	select {
	case <-w.ready:
		if w.err != nil {
			return false
		}
	default:
		return true
	}
	select {
	case <-w.stopped:
		return false
	default:
		return true
	}
}

// Close stops the worker; stages it started are not its children's
// business any more (each has its own group and leader) and keep running.
func (w *worker) Close() {
	if w.p != nil {
		w.p.Stop()
	}
	<-w.ready
	<-w.stopped
}

// workerRequest is what the worker needs to start a stage.
type workerRequest struct {
	Argv  []string `json:"argv"`
	Env   []string `json:"env"`
	Cwd   string   `json:"cwd"`
	Grace float64  `json:"grace"`
	// AfterPreload starts the stage only once the worker has imported
	// everything (MLflow included), rather than have the stage import
	// what is missing while the worker does too.
	AfterPreload bool `json:"after_preload"`
}

// workerLauncher starts one stage through a worker (proc.Launcher).
type workerLauncher struct {
	ctx          context.Context // the stage's: cancelling it abandons a launch
	w            *worker
	afterPreload bool // see workerRequest
}

// Launch implements proc.Launcher: the worker forks the stage's leader,
// which runs `c.Path c.Args...` as a child of its own.
func (l workerLauncher) Launch(c proc.Cmd, stdout, stderr *os.File) (proc.Leader, error) {
	return l.w.launch(l.ctx, c, stdout, stderr, l.afterPreload)
}

func (w *worker) launch(ctx context.Context, c proc.Cmd, stdout, stderr *os.File, afterPreload bool) (proc.Leader, error) {
	if c.Path != w.python || len(c.Args) < 2 || c.Args[0] != "-m" {
		return nil, fmt.Errorf("the stage worker runs `%s -m MODULE`, not %s %v", w.python, c.Path, c.Args)
	}
	if !slices.Equal(withoutPerStage(c.Env), w.env) {
		return nil, errors.New("the stage's environment differs from the stage worker's")
	}
	if stdout == nil || stderr == nil {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		defer null.Close()
		stdout, stderr = cmp.Or(stdout, null), cmp.Or(stderr, null)
	}
	grace := c.Grace
	if grace <= 0 {
		grace = proc.DefaultGrace
	}
	req, err := json.Marshal(workerRequest{Argv: c.Args, Env: c.Env, Cwd: c.Dir, Grace: grace.Seconds(), AfterPreload: afterPreload})
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("unix", w.sock, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("stage worker: %w", err)
	}
	uc := conn.(*net.UnixConn)
	fail := func(err error) (proc.Leader, error) {
		uc.Close()
		return nil, fmt.Errorf("stage worker: %w", err)
	}
	// Until the stage runs, cancelling gives up (the leader then runs
	// nothing); afterwards, proc stops the stage like any other.
	abandon := context.AfterFunc(ctx, func() { uc.Close() })
	if err := sendWithFiles(uc, append(req, '\n'), stdout, stderr); err != nil {
		return fail(err)
	}
	uc.SetReadDeadline(time.Now().Add(workerLaunchTimeout))
	r := bufio.NewReader(uc)
	var started struct {
		Pid int `json:"pid"`
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fail(fmt.Errorf("no answer: %w", err))
	}
	if err := json.Unmarshal(line, &started); err != nil || started.Pid <= 0 {
		return fail(fmt.Errorf("unexpected answer %q", line))
	}
	uc.SetReadDeadline(time.Time{})
	// From here on, closing the connection stops the stage (the leader takes
	// it for this process's death): it stays open until the stage ends.
	if _, err := uc.Write([]byte("go\n")); err != nil {
		killGroup(started.Pid)
		return fail(err)
	}
	if !abandon() {
		killGroup(started.Pid) // cancelled just now: the stage barely started
		return fail(ctx.Err())
	}
	return &workerLeader{pid: started.Pid, conn: uc, r: r}, nil
}

// workerLeader is a stage's leader, forked by the worker.
type workerLeader struct {
	pid  int
	conn *net.UnixConn
	r    *bufio.Reader
}

func (l *workerLeader) Pid() int { return l.pid }

// Wait reads the stage's exit code. A leader that ends without one was
// killed (by Stop's SIGKILL, or from outside), as the guard would be.
func (l *workerLeader) Wait() (proc.Status, error) {
	defer l.conn.Close()
	var ended struct {
		Exit *int `json:"exit"`
	}
	line, err := l.r.ReadBytes('\n')
	if err == nil && json.Unmarshal(line, &ended) == nil && ended.Exit != nil {
		return proc.Status{ExitCode: *ended.Exit}, nil
	}
	return proc.Status{ExitCode: -1, Signal: syscall.SIGKILL}, nil
}

// worker returns the executor's stage worker for l and env, starting it
// when there is none (or it stopped), and waits until it accepts stages.
// Nil means: start the stage as a plain process.
func (e *Executor) worker(ctx context.Context, l layout, python string, sink noteFunc) *worker {
	if e.opts.NoWorker || !workerSupported {
		return nil
	}
	key := python + "\x00" + l.root + "\x00" + l.pythonDir
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	w, ok := e.workers[key]
	switch {
	case !ok:
	case w.err != nil && isClosed(w.ready), w.broken.Load():
		// It could not start, or failed a stage: it will not do better.
		e.mu.Unlock()
		return nil
	case !w.usable():
		ok = false // it stopped after starting: a new one
	}
	if !ok {
		w = startWorker(python, l.root, withoutPerStage(stageEnv(e.opts.Environ, l, "")))
		e.workers[key] = w
	}
	e.mu.Unlock()
	if err := w.Wait(ctx); err != nil {
		if ctx.Err() == nil && !w.noted.Swap(true) {
			sink("stage worker unavailable, starting stages as plain processes: %v", err)
		}
		return nil
	}
	return w
}

// noteFunc writes a "pipectl: ..." line to a stage's log.
type noteFunc func(format string, args ...any)

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// runProcess runs the runner command: forked by the stage worker when
// there is one, else (or when the worker cannot start it) as a plain
// process. Either way the stage has its own process group, output,
// cancellation and timeout (package proc). Stages that use MLflow start
// once the worker has imported it.
func (e *Executor) runProcess(ctx context.Context, cmd proc.Cmd, l layout, usesMLflow bool, note noteFunc) (proc.Status, error) {
	if w := e.worker(ctx, l, cmd.Path, note); w != nil {
		wcmd := cmd
		wcmd.Launcher = workerLauncher{ctx: ctx, w: w, afterPreload: usesMLflow}
		st, err := proc.Run(ctx, wcmd)
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return proc.Status{ExitCode: -1, Stopped: true}, nil // cancelled before the stage ran
		}
		// Nothing ran. The worker is not used again in this run.
		w.broken.Store(true)
		if !w.noted.Swap(true) {
			note("the stage worker could not start the stage, starting it as a plain process: %v", err)
		}
		go w.Close()
	}
	return proc.Run(ctx, cmd)
}
