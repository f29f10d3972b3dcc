package record

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/lock"
)

func TestIDsSortByStartTime(t *testing.T) {
	a := NewID(time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC), "ffff")
	b := NewID(time.Date(2026, 1, 2, 3, 4, 5, 7e6, time.UTC), "0000")
	c := NewID(time.Date(2026, 11, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), "0000")
	if a != "20260102-030405-006-ffff" || !(a < b && b < c) || !ValidID(a) {
		t.Errorf("ids %s %s %s", a, b, c)
	}
	for _, bad := range []string{"", "../x", "20260102-030405-006-FFFF", "20260102-030405-006-fff/"} {
		if ValidID(bad) {
			t.Errorf("%q is valid", bad)
		}
	}
}

func TestCreateLoadResolve(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "runs"), Sequential: true}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ids []string
	for _, p := range []string{"a", "b", "a"} {
		r := &Run{Pipeline: p, Status: Succeeded, Stages: map[string]*Stage{}}
		if err := s.Create(r, now); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if want := []string{"20260102-030405-000-0001", "20260102-030405-000-0002", "20260102-030405-000-0003"}; !slices.Equal(ids, want) {
		t.Errorf("sequential ids %v", ids)
	}
	entries, _ := os.ReadDir(s.Dir)
	if len(entries) != 3 {
		t.Errorf("runs dir holds %d entries (temporary directories left?)", len(entries))
	}
	fi, _ := os.Stat(filepath.Join(s.Dir, ids[0]))
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("run dir mode %v", fi.Mode().Perm())
	}
	fi, _ = os.Stat(filepath.Join(s.Dir, ids[0], "run.json"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("run.json mode %v", fi.Mode().Perm())
	}
	tests := map[string]struct{ ref, pipeline, want, err string }{
		"full id":        {ref: ids[1], want: ids[1]},
		"latest":         {ref: "latest", want: ids[2]},
		"latest of b":    {ref: "latest", pipeline: "b", want: ids[1]},
		"unique prefix":  {ref: "20260102-030405-000-0002", want: ids[1]},
		"ambiguous":      {ref: "20260102", err: "ambiguous"},
		"unknown":        {ref: "2099", err: "no such run"},
		"latest of none": {ref: "latest", pipeline: "zzz", err: "pipeline zzz has no runs yet"},
	}
	for name, tc := range tests {
		got, err := s.Resolve(tc.ref, tc.pipeline)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %q, %v; want error %q", name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %s", name, got, err, tc.want)
		}
	}
	if _, err := s.Load("../../etc"); !errors.Is(err, ErrNotFound) {
		t.Errorf("load of a path: %v", err)
	}
	runs, errs := s.List()
	if len(runs) != 3 || len(errs) != 0 {
		t.Errorf("list: %d runs, %v", len(runs), errs)
	}
}

func TestLogLinesAndAttempts(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	id := NewID(time.Now(), "abcd")
	l, err := s.OpenLog(id, "train")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123e6, time.UTC)
	l.Line(ts, 1, "stdout", "one\ntwo | with a bar")
	l.Line(ts, 2, "stderr", "three")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(s.LogPath(id, "train"))
	want := "2026-01-02T03:04:05.123Z #1 stdout | one\n2026-01-02T03:04:05.123Z #1 stdout | two | with a bar\n2026-01-02T03:04:05.123Z #2 stderr | three\n"
	if string(b) != want {
		t.Errorf("log file\n%s\nwant\n%s", b, want)
	}
	lines, err := s.ReadLog(id, "train", 1)
	if err != nil || len(lines) != 2 || lines[1].Text != "two | with a bar" || lines[1].Stream != "stdout" {
		t.Errorf("attempt 1: %+v %v", lines, err)
	}
	if _, err := s.OpenLog(id, "../evil"); err == nil {
		t.Error("a stage name with a path was accepted")
	}
}

func TestEffectiveAndMarkInterrupted(t *testing.T) {
	r := &Run{Status: Running, Owner: lock.Self("x", time.Now()), Order: []string{"a", "b", "c"}, Stages: map[string]*Stage{
		"a": {Status: Succeeded}, "b": {Status: Running, Attempts: []Attempt{{N: 1, Status: Running}}}, "c": {Status: Pending},
	}, Sessions: []Session{{Status: Running}}}
	if r.Effective() != Running {
		t.Errorf("a run of this live process reads %s", r.Effective())
	}
	r.Owner.PID = 1 << 30
	if r.Effective() != Interrupted {
		t.Errorf("a run of a dead process reads %s", r.Effective())
	}
	if !r.MarkInterrupted(time.Now()) {
		t.Fatal("nothing marked")
	}
	if r.Status != Interrupted || r.Stages["b"].Status != Interrupted || r.Stages["b"].Attempts[0].Status != Interrupted ||
		r.Stages["c"].Status != Pending || r.Stages["a"].Status != Succeeded || r.Sessions[0].Status != Interrupted || r.Error == nil {
		t.Errorf("after MarkInterrupted: %+v", r)
	}
	if r.MarkInterrupted(time.Now()) {
		t.Error("marked twice")
	}
}
