package plugin

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// DefaultPipeDelay is how long, after a plugin process exits, pipectl keeps
// reading its stdout and stderr for the last lines before it stops
// waiting for them to close.
const DefaultPipeDelay = 500 * time.Millisecond

// processRunner is go-plugin's runner for a plugin process, in place of its
// own (internal/cmdrunner), which reads stdout and stderr until every
// process holding them closes them and only then waits for the plugin. A
// child the plugin leaves behind with its stdout (a `sleep 300 &` of a
// shell executor) kept go-plugin's client, and so pipectl, waiting forever.
//
// Here the plugin runs as the leader of a process group of its own; when it
// exits, the rest of the group is killed, and stdout and stderr are read
// for at most the pipe delay more, then closed (a child that left the group
// may still hold them; it no longer holds pipectl up).
type processRunner struct {
	log       hclog.Logger
	cmd       *exec.Cmd
	pipeDelay time.Duration

	stdout, stderr *exitPipe

	pid    int
	done   chan struct{} // closed when the process has exited
	waited error         // cmd.Wait's result, set before done closes
}

var _ runner.Runner = (*processRunner)(nil)

func newProcessRunner(log hclog.Logger, cmd *exec.Cmd, pipeDelay time.Duration) *processRunner {
	return &processRunner{log: log, cmd: cmd, pipeDelay: pipeDelay, done: make(chan struct{})}
}

// Start implements runner.Runner.
func (r *processRunner) Start(context.Context) error {
	stdout, err := newExitPipe()
	if err != nil {
		return err
	}
	stderr, err := newExitPipe()
	if err != nil {
		stdout.closeBoth()
		return err
	}
	// *os.File, not an io.Writer: the child gets the pipes' write ends
	// directly and Wait does not wait for anyone to close them.
	r.cmd.Stdout, r.cmd.Stderr = stdout.w, stderr.w
	newGroup(r.cmd)
	r.log.Debug("starting plugin", "path", r.cmd.Path, "args", r.cmd.Args)
	if err := r.cmd.Start(); err != nil {
		stdout.closeBoth()
		stderr.closeBoth()
		return err
	}
	// Only the child writes: our copies of the write ends must go, or no
	// read would ever see end of file.
	stdout.w.Close()
	stderr.w.Close()
	r.stdout, r.stderr, r.pid = stdout, stderr, r.cmd.Process.Pid
	r.log.Debug("plugin started", "path", r.cmd.Path, "pid", r.pid)
	go r.reap()
	return nil
}

// reap waits for the plugin to exit, kills what it left in its process
// group and lets go-plugin's readers finish: at end of file, or after the
// pipe delay when a process outside the group still holds a pipe.
func (r *processRunner) reap() {
	r.waited = r.cmd.Wait()
	close(r.done)
	killGroup(r.pid)
	delay, cancel := context.WithTimeout(context.Background(), r.pipeDelay)
	defer cancel()
	for _, p := range []*exitPipe{r.stdout, r.stderr} {
		select {
		case <-p.eof:
		case <-delay.Done():
		}
	}
	for _, p := range []*exitPipe{r.stdout, r.stderr} {
		if p.cut() {
			r.log.Debug("a process the plugin started still holds its output; no longer reading it", "pid", r.pid)
		}
	}
}

// exited reports whether the plugin process has exited.
func (r *processRunner) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Wait implements runner.Runner.
func (r *processRunner) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.waited
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill implements runner.Runner: the plugin and its process group.
func (r *processRunner) Kill(context.Context) error {
	if r.pid == 0 || r.exited() {
		return nil
	}
	killGroup(r.pid)
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Stdout implements runner.Runner.
func (r *processRunner) Stdout() io.ReadCloser { return r.stdout }

// Stderr implements runner.Runner.
func (r *processRunner) Stderr() io.ReadCloser { return r.stderr }

// Name implements runner.Runner.
func (r *processRunner) Name() string { return r.cmd.Path }

// ID implements runner.Runner.
func (r *processRunner) ID() string {
	if r.pid == 0 {
		return ""
	}
	return strconv.Itoa(r.pid)
}

// Diagnose implements runner.Runner.
func (r *processRunner) Diagnose(context.Context) string { return "" }

// PluginToHost implements runner.Runner: host and plugin share addresses.
func (r *processRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

// HostToPlugin implements runner.Runner.
func (r *processRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// exitPipe is the read end of a plugin's stdout or stderr. Cutting it ends
// a blocked Read with io.EOF, as if every writer had closed it.
type exitPipe struct {
	r, w *os.File
	eof  chan struct{} // closed at the first end of file or error
	once sync.Once
	mu   sync.Mutex
	cutr bool
}

func newExitPipe() (*exitPipe, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return &exitPipe{r: r, w: w, eof: make(chan struct{})}, nil
}

func (p *exitPipe) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil {
		p.once.Do(func() { close(p.eof) })
		p.mu.Lock()
		cut := p.cutr
		p.mu.Unlock()
		if cut && errors.Is(err, os.ErrClosed) {
			err = io.EOF
		}
	}
	return n, err
}

// cut closes the read end unless the reader already saw end of file, and
// says whether it had to.
func (p *exitPipe) cut() bool {
	select {
	case <-p.eof:
		return false
	default:
	}
	p.mu.Lock()
	p.cutr = true
	p.mu.Unlock()
	p.r.Close()
	return true
}

// Close implements io.Closer.
func (p *exitPipe) Close() error { return p.r.Close() }

func (p *exitPipe) closeBoth() {
	p.r.Close()
	p.w.Close()
}
