package lock

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as a helper process that takes a lock and holds it
// until killed, so tests can kill -9 a real owner.
func TestMain(m *testing.M) {
	if dir := os.Getenv("LOCK_TEST_HOLD"); dir != "" {
		l, _, err := Acquire(context.Background(), dir, "p@t", Self("run-held", time.Now()), Options{})
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		_ = l
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

func TestSecondAcquireIsBusyAndNamesTheOwner(t *testing.T) {
	dir := t.TempDir()
	first, stale, err := Acquire(context.Background(), dir, "sentiment@local", Self("run-1", time.Now()), Options{})
	if err != nil || stale != nil {
		t.Fatalf("first acquire: %v, stale %v", err, stale)
	}
	_, _, err = Acquire(context.Background(), dir, "sentiment@local", Self("run-2", time.Now()), Options{})
	var busy *BusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrBusy) {
		t.Fatalf("second acquire: got %v, want a *BusyError", err)
	}
	if busy.Owner.RunID != "run-1" || busy.Owner.PID != os.Getpid() {
		t.Errorf("busy owner %+v, want run-1 of this process", busy.Owner)
	}
	if !strings.Contains(err.Error(), "sentiment@local is already running as run run-1 (PID ") {
		t.Errorf("message %q does not name the run and PID", err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, stale, err := Acquire(context.Background(), dir, "sentiment@local", Self("run-3", time.Now()), Options{})
	if err != nil || stale != nil {
		t.Fatalf("acquire after release: %v, stale %+v", err, stale)
	}
	again.Release()
}

func TestWaitTakesTheLockOnRelease(t *testing.T) {
	dir := t.TempDir()
	first, _, err := Acquire(context.Background(), dir, "p@t", Self("run-1", time.Now()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var waitedFor Owner
	second, _, err := Acquire(context.Background(), dir, "p@t", Self("run-2", time.Now()), Options{
		Wait: true, Poll: time.Millisecond,
		OnWait: func(o Owner) {
			waitedFor = o
			if err := first.Release(); err != nil {
				t.Error(err)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Release()
	if waitedFor.RunID != "run-1" {
		t.Errorf("waited for %+v, want run-1", waitedFor)
	}
	o, err := ReadOwner(dir, "p@t")
	if err != nil || o == nil || o.RunID != "run-2" {
		t.Errorf("owner after wait: %+v, %v", o, err)
	}
}

func TestWaitStopsWithTheContext(t *testing.T) {
	dir := t.TempDir()
	first, _, err := Acquire(context.Background(), dir, "p@t", Self("run-1", time.Now()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	ctx, cancel := context.WithCancel(context.Background())
	_, _, err = Acquire(ctx, dir, "p@t", Self("run-2", time.Now()), Options{Wait: true, Poll: time.Millisecond, OnWait: func(Owner) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestOwnerFileOfADeadProcessIsStale(t *testing.T) {
	dir := t.TempDir()
	dead := Self("run-dead", time.Now())
	dead.PID = deadPID(t)
	dead.ProcessStart = ""
	writeOwnerFile(t, dir, "p@t", dead)
	if dead.Alive() {
		t.Fatalf("owner with exited PID %d counts as alive", dead.PID)
	}
	l, stale, err := Acquire(context.Background(), dir, "p@t", Self("run-new", time.Now()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if stale == nil || stale.RunID != "run-dead" {
		t.Fatalf("stale owner %+v, want run-dead", stale)
	}
}

func TestReusedPIDIsNotTheOwner(t *testing.T) {
	o := Self("run", time.Now())
	if o.ProcessStart == "" {
		t.Skip("no process start time on this platform")
	}
	if !o.Alive() {
		t.Fatal("this process counts as dead")
	}
	o.ProcessStart += "0"
	if o.Alive() {
		t.Error("an owner with our PID but another start time counts as alive")
	}
}

// A live owner on this host keeps the lock even when flock says it is free
// (file systems where flock does nothing).
func TestLiveOwnerWithoutFlockIsBusy(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	live := Owner{PID: cmd.Process.Pid, ProcessStart: processStart(cmd.Process.Pid), RunID: "run-live"}
	live.Host, _ = os.Hostname()
	writeOwnerFile(t, dir, "p@t", live)
	_, _, err := Acquire(context.Background(), dir, "p@t", Self("run-new", time.Now()), Options{})
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Owner.RunID != "run-live" {
		t.Fatalf("got %v, want busy with run-live", err)
	}
}

// The real fault: the owner process is killed with SIGKILL while it holds
// the lock. The kernel drops the flock; the owner file names the dead run.
func TestKilledOwnerLeavesAStaleLock(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCK_TEST_HOLD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper said %q", line)
	}
	_, _, err = Acquire(context.Background(), dir, "p@t", Self("run-2", time.Now()), Options{})
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Owner.PID != cmd.Process.Pid || busy.Owner.RunID != "run-held" {
		t.Fatalf("while the helper runs: got %v, want busy naming PID %d", err, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	o, err := ReadOwner(dir, "p@t")
	if err != nil || o == nil || o.Alive() {
		t.Fatalf("owner after kill -9: %+v alive=%v, %v", o, o != nil && o.Alive(), err)
	}
	l, stale, err := Acquire(context.Background(), dir, "p@t", Self("run-2", time.Now()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if stale == nil || stale.PID != cmd.Process.Pid || stale.RunID != "run-held" {
		t.Errorf("stale %+v, want the killed helper's run", stale)
	}
}

func TestUnsafeNames(t *testing.T) {
	for _, name := range []string{"", "../x", "a/b", ".hidden", strings.Repeat("x", 201)} {
		if _, _, err := Acquire(context.Background(), t.TempDir(), name, Self("r", time.Now()), Options{}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}

func TestSetRunID(t *testing.T) {
	dir := t.TempDir()
	l, _, err := Acquire(context.Background(), dir, "p@t", Self("", time.Now()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := l.SetRunID("run-9"); err != nil {
		t.Fatal(err)
	}
	o, _ := ReadOwner(dir, "p@t")
	if o.RunID != "run-9" {
		t.Errorf("run id %q", o.RunID)
	}
	fi, err := os.Stat(filepath.Join(dir, "p@t.owner"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("owner file mode %v, %v", fi.Mode().Perm(), err)
	}
}

func writeOwnerFile(t *testing.T, dir, name string, o Owner) {
	t.Helper()
	l := &Lock{name: name, ownerPath: filepath.Join(dir, name+".owner")}
	if err := l.writeOwner(o); err != nil {
		t.Fatal(err)
	}
}
