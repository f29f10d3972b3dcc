//go:build unix

package proc

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// execLauncher starts commands with fork+exec in a new group, as a fork
// server would: the process is not Start's own exec.Cmd, so Start must
// deliver output, stop the group and kill leftovers through the Launcher
// path alone.
type execLauncher struct{ launched int }

type execLeader struct{ cmd *exec.Cmd }

func (l *execLauncher) Launch(c Cmd, stdout, stderr *os.File) (Leader, error) {
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	l.launched++
	return execLeader{cmd}, nil
}

func (l execLeader) Pid() int { return l.cmd.Process.Pid }

func (l execLeader) Wait() (Status, error) {
	err := l.cmd.Wait()
	st := Status{ExitCode: l.cmd.ProcessState.ExitCode()}
	if ws, ok := l.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Signal = ws.Signal()
	}
	if _, ok := err.(*exec.ExitError); ok {
		err = nil
	}
	return st, err
}

func TestLauncherDeliversLinesAndStatus(t *testing.T) {
	var l execLauncher
	var out, errs lines
	st, err := Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", "echo one; echo two >&2; sleep 300 & exit 4"},
		Launcher: &l, Guard: "/nonexistent/python", Stdout: out.add(""), Stderr: errs.add("")})
	if err != nil {
		t.Fatal(err)
	}
	if l.launched != 1 {
		t.Fatalf("the launcher started %d processes, want 1", l.launched)
	}
	if st.ExitCode != 4 || st.Stopped {
		t.Errorf("status %+v, want exit code 4", st)
	}
	if !slices.Equal(out.list(), []string{"one"}) || !slices.Equal(errs.list(), []string{"two"}) {
		t.Errorf("stdout %q, stderr %q", out.list(), errs.list())
	}
}

func TestLauncherStopAndLeftovers(t *testing.T) {
	started := make(chan struct{})
	var once sync.Once
	p, err := Start(Cmd{Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; sleep 300 & echo started; wait"},
		Launcher: &execLauncher{}, Grace: 200 * time.Millisecond,
		Stdout: func(s string) { once.Do(func() { close(started) }) }})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the script did not start")
	}
	p.Stop()
	st, err := p.Wait()
	if err != nil || !st.Stopped || st.Success() {
		t.Errorf("status %+v, %v; want stopped", st, err)
	}
	groupGone(t, p.Pid(), 5*time.Second)
}

type failingLauncher struct{}

func (failingLauncher) Launch(Cmd, *os.File, *os.File) (Leader, error) {
	return nil, os.ErrDeadlineExceeded
}

func TestLauncherError(t *testing.T) {
	_, err := Start(Cmd{Path: "/bin/true", Launcher: failingLauncher{}, Stdout: func(string) {}, Stderr: func(string) {}})
	if err != os.ErrDeadlineExceeded {
		t.Errorf("error %v, want the launcher's", err)
	}
}
