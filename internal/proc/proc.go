package proc

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

//go:embed guard.py
var guardSource string

// guardScript is guard.py without its docstring, for a readable `ps`.
var guardScript = "# pipectl guard (internal/proc/guard.py)\n" + guardSource[strings.Index(guardSource[3:], `"""`)+6:]

// DefaultGrace is how long a stopped process group gets between SIGTERM and
// SIGKILL when Cmd.Grace is zero.
const DefaultGrace = 5 * time.Second

// drainTimeout bounds the wait for output after the group is gone: only a
// process that left the group (setsid) can still hold the pipes open.
const drainTimeout = 2 * time.Second

// maxLine is the longest line delivered in one piece; longer lines arrive
// split.
const maxLine = 64 << 10

// Cmd describes a process to run.
type Cmd struct {
	// Path is the program; Args its arguments (without the program).
	Path string
	Args []string
	// Dir is the working directory; empty means this process's.
	Dir string
	// Env is the environment; nil means this process's.
	Env []string
	// Guard is a Python interpreter (3.8 or later) that runs the command
	// under the parent-death guard (guard.py), so the group is stopped when
	// this process dies. Empty runs the command directly.
	Guard string
	// Stdout and Stderr receive output line by line (without the line
	// end, always valid UTF-8), from one goroutine per stream. Nil
	// discards the stream.
	Stdout, Stderr func(line string)
	// Grace is the time between SIGTERM and SIGKILL when the process is
	// stopped; zero means DefaultGrace.
	Grace time.Duration
	// Launcher, when set, starts the command instead of fork+exec from
	// this process (Guard is then the launcher's business); everything
	// else (output, Stop, leftovers) works the same.
	Launcher Launcher
}

// A Launcher starts a Cmd some other way than fork+exec from this process,
// e.g. by asking a warm fork server. What it starts must be the leader of
// a new process group, write to stdout and stderr (when not nil) and read
// nothing, and must not outlive this process.
type Launcher interface {
	// Launch returns once the leader runs. An error means nothing was
	// started.
	Launch(c Cmd, stdout, stderr *os.File) (Leader, error)
}

// Leader is the leader of the process group a Launcher started.
type Leader interface {
	// Pid is its process id, which is also the group id.
	Pid() int
	// Wait returns how it ended, once it has.
	Wait() (Status, error)
}

// Status is how a process ended.
type Status struct {
	// ExitCode is the exit code, or -1 when a signal ended the process.
	ExitCode int
	// Signal is the signal that ended the process, if one did.
	Signal syscall.Signal
	// Stopped says the process was stopped by Stop or a cancelled context.
	Stopped bool
}

// Success reports a zero exit code.
func (s Status) Success() bool { return s.ExitCode == 0 && s.Signal == 0 }

func (s Status) String() string {
	if s.Signal != 0 {
		return "killed by signal " + s.Signal.String()
	}
	return "exit code " + strconv.Itoa(s.ExitCode)
}

// Process is a started Cmd.
type Process struct {
	cmd     *exec.Cmd // nil when a Launcher started the process
	leader  Leader
	pgid    int
	grace   time.Duration
	guardW  *os.File
	readers sync.WaitGroup
	pipes   []*os.File
	exited  chan struct{} // the leader was reaped
	done    chan struct{} // ... and its output delivered
	stopped atomic.Bool
	status  Status
	err     error
}

// Start starts c in a new process group.
func Start(c Cmd) (*Process, error) {
	p := &Process{grace: c.Grace, exited: make(chan struct{}), done: make(chan struct{})}
	if p.grace <= 0 {
		p.grace = DefaultGrace
	}
	if c.Launcher != nil {
		return p.launch(c)
	}
	var cmd *exec.Cmd
	var guardR *os.File
	if c.Guard != "" && guardSupported {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		guardR, p.guardW = r, w
		args := append([]string{"-I", "-S", "-c", guardScript, "3", c.Path}, c.Args...)
		cmd = exec.Command(c.Guard, args...)
		cmd.ExtraFiles = []*os.File{guardR}
	} else {
		cmd = exec.Command(c.Path, c.Args...)
	}
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	if p.guardW != nil {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, "PIPECTL_GUARD_GRACE="+strconv.FormatFloat(p.grace.Seconds(), 'f', -1, 64))
	}
	newGroup(cmd)
	var childEnds []*os.File
	for _, s := range []struct {
		sink func(string)
		set  *io.Writer
	}{{c.Stdout, &cmd.Stdout}, {c.Stderr, &cmd.Stderr}} {
		if s.sink == nil {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			p.closeAll(append(childEnds, guardR))
			return nil, err
		}
		*s.set = w
		childEnds = append(childEnds, w)
		p.pipes = append(p.pipes, r)
		p.readers.Add(1)
		go p.readLines(r, s.sink)
	}
	err := cmd.Start()
	// The child has its copies (or failed to start); ours would keep the
	// pipes open forever.
	for _, f := range append(childEnds, guardR) {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		p.closeAll(p.pipes)
		p.readers.Wait()
		if p.guardW != nil {
			p.guardW.Close()
		}
		if c.Guard != "" && errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("start %s: Python interpreter %s not found", c.Path, c.Guard)
		}
		return nil, fmt.Errorf("start %s: %w", c.Path, err)
	}
	p.cmd = cmd
	p.pgid = cmd.Process.Pid
	go p.wait()
	return p, nil
}

// launch starts c through its Launcher, with pipes for the streams that
// have a sink.
func (p *Process) launch(c Cmd) (*Process, error) {
	var ends [2]*os.File
	for i, sink := range []func(string){c.Stdout, c.Stderr} {
		if sink == nil {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			p.closeAll(append(ends[:], p.pipes...))
			return nil, err
		}
		ends[i] = w
		p.pipes = append(p.pipes, r)
		p.readers.Add(1)
		go p.readLines(r, sink)
	}
	leader, err := c.Launcher.Launch(c, ends[0], ends[1])
	// The leader has its copies (or nothing started); ours would keep the
	// pipes open forever.
	p.closeAll(ends[:])
	if err != nil {
		p.closeAll(p.pipes)
		p.readers.Wait()
		return nil, err
	}
	p.leader = leader
	p.pgid = leader.Pid()
	go p.wait()
	return p, nil
}

func (p *Process) closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

func (p *Process) wait() {
	var st Status
	if p.leader != nil {
		st, p.err = p.leader.Wait()
	} else {
		err := p.cmd.Wait()
		st = Status{ExitCode: p.cmd.ProcessState.ExitCode()}
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			st.Signal = ws.Signal()
		}
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			p.err = err
		}
	}
	// The leader is gone; whatever it left in its group goes too.
	killGroup(p.pgid)
	close(p.exited)
	st.Stopped = p.stopped.Load()
	drained := make(chan struct{})
	go func() { p.readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		p.closeAll(p.pipes)
		<-drained
	}
	p.closeAll(p.pipes)
	if p.guardW != nil {
		p.guardW.Close()
	}
	p.status = st
	close(p.done)
}

func (p *Process) readLines(r *os.File, sink func(string)) {
	defer p.readers.Done()
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			s := strings.TrimRight(string(line), "\r\n")
			sink(strings.ToValidUTF8(s, "\uFFFD"))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// Pid is the process id of the leader (the guard, when there is one), which
// is also the process group id.
func (p *Process) Pid() int { return p.pgid }

// Exited is closed when the leader has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits until the process has exited and its output is delivered.
func (p *Process) Wait() (Status, error) {
	<-p.done
	return p.status, p.err
}

// Stop stops the process group: SIGTERM, then SIGKILL once the grace period
// is over or the leader has exited. It returns when the leader has exited.
// Stopping an exited process does nothing.
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.stopped.Store(true)
	var leader *os.Process
	if p.cmd != nil {
		leader = p.cmd.Process
	}
	terminateGroup(p.pgid, leader)
	t := time.NewTimer(p.grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		killGroup(p.pgid)
		if leader != nil {
			_ = leader.Kill()
		}
		<-p.exited
	}
}

// Run starts c, waits for it and its output, and stops it when ctx ends.
func Run(ctx context.Context, c Cmd) (Status, error) {
	p, err := Start(c)
	if err != nil {
		return Status{}, err
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		p.Stop()
	}
	return p.Wait()
}
