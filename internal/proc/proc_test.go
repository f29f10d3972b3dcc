//go:build unix

package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMain lets the test binary play a parent process that is killed with
// SIGKILL while its guarded child runs (TestGuardStopsGroupWhenParentDies).
func TestMain(m *testing.M) {
	if os.Getenv("PROC_TEST_PARENT") == "1" {
		parentMain()
		return
	}
	os.Exit(m.Run())
}

// parentMain starts a guarded shell whose child ignores SIGTERM, prints the
// group id and waits to be killed.
func parentMain() {
	p, err := Start(Cmd{Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; sleep 300 & wait"},
		Guard: os.Getenv("PROC_TEST_PYTHON"), Grace: 300 * time.Millisecond})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(p.Pid())
	select {}
}

func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: the guard needs a Python interpreter")
	}
	return p
}

type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) add(prefix string) func(string) {
	return func(s string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.got = append(l.got, prefix+s)
	}
}

func (l *lines) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func TestRunDeliversLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	script := `printf 'one\ntwo\r\n'; printf 'bad \377 byte\n'; printf 'err\n' >&2; printf '%s\n' "$LONG"; printf 'no newline'; exit 3`
	for name, guard := range map[string]string{"direct": "", "guarded": python(t)} {
		t.Run(name, func(t *testing.T) {
			var out, errs lines
			st, err := Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", script},
				Env: append(os.Environ(), "LONG="+long), Guard: guard, Stdout: out.add(""), Stderr: errs.add("")})
			if err != nil {
				t.Fatal(err)
			}
			if st.ExitCode != 3 || st.Stopped || st.Success() {
				t.Errorf("status %+v, want exit code 3", st)
			}
			want := []string{"one", "two", "bad \uFFFD byte", long[:maxLine], long[maxLine:], "no newline"}
			if d := cmp.Diff(want, out.list()); d != "" {
				t.Errorf("stdout lines (-want +got):\n%s", d)
			}
			if d := cmp.Diff([]string{"err"}, errs.list()); d != "" {
				t.Errorf("stderr lines (-want +got):\n%s", d)
			}
		})
	}
}

// groupGone waits until no process is left in group pgid.
func groupGone(t *testing.T, pgid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has processes after %v:\n%s", pgid, within, groupProcs(pgid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupProcs lists the processes of group pgid, one "pid args" a line.
func groupProcs(pgid int) string {
	out, _ := exec.Command("ps", "-eo", "pid=,pgid=,args=").Output()
	var b strings.Builder
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[1] == strconv.Itoa(pgid) {
			fmt.Fprintln(&b, f[0], strings.Join(f[2:], " "))
		}
	}
	return b.String()
}

func TestCancelStopsWholeGroup(t *testing.T) {
	// The shell's child ignores SIGTERM: only SIGKILL after the grace period
	// stops it; the shell itself exits on SIGTERM.
	script := `trap '' TERM; sleep 300 & echo started; wait`
	for name, guard := range map[string]string{"direct": "", "guarded": python(t)} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := make(chan struct{})
			var once sync.Once
			p, err := Start(Cmd{Path: "/bin/sh", Args: []string{"-c", script}, Guard: guard, Grace: 200 * time.Millisecond,
				Stdout: func(s string) {
					if s == "started" {
						once.Do(func() { close(started) })
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Fatal("the script did not start")
			}
			go func() { <-ctx.Done(); p.Stop() }()
			cancel()
			st, err := p.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if !st.Stopped || st.Success() {
				t.Errorf("status %+v, want stopped", st)
			}
			groupGone(t, p.Pid(), 5*time.Second)
		})
	}
}

func TestLeftoversAreKilledWhenLeaderExits(t *testing.T) {
	// The leader exits at once, leaving a background sleep that holds
	// stdout open: Wait must neither hang nor leave it running.
	p, err := Start(Cmd{Path: "/bin/sh", Args: []string{"-c", "sleep 300 & echo bye"}, Stdout: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil || !st.Success() {
		t.Fatalf("status %+v, %v", st, err)
	}
	groupGone(t, p.Pid(), 5*time.Second)
}

func TestGuardStopsGroupWhenParentDies(t *testing.T) {
	py := python(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(exe, "-test.run=^$")
	parent.Env = append(os.Environ(), "PROC_TEST_PARENT=1", "PROC_TEST_PYTHON="+py)
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("parent: %v (%q)", err, line)
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("parent said %q", line)
	}
	// Give the guard time to start its child before the parent dies.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ps := groupProcs(pgid)
		if strings.Contains(ps, "sleep 300") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guarded group %d never started sleep:\n%s", pgid, ps)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	groupGone(t, pgid, 10*time.Second)
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(Cmd{Path: "/nonexistent/program"}); err == nil {
		t.Error("no error for a missing program")
	}
	_, err := Start(Cmd{Path: "/bin/true", Guard: "/nonexistent/python3"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/python3") {
		t.Errorf("error %v, want one naming the interpreter", err)
	}
}
