package gc

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/go-cmp/cmp"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/lock"
	"github.com/pipectl/pipectl/engine/record"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// fixture is a state directory with data and prediction roots beside it.
type fixture struct {
	t                       *testing.T
	state, data, prediction string
}

func newFixture(t *testing.T) *fixture {
	root := t.TempDir()
	return &fixture{t: t, state: filepath.Join(root, ".pipectl"), data: filepath.Join(root, "data"), prediction: filepath.Join(root, "predictions")}
}

func (f *fixture) write(path string, n int) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, n), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// dataVersion writes a complete data version.
func (f *fixture) dataVersion(name, version string) string {
	dir := filepath.Join(f.data, name, version)
	f.write(filepath.Join(dir, "manifest.json"), 10)
	f.write(filepath.Join(dir, "train.parquet"), 100)
	return dir
}

// run writes a run record of pipeline "p" started daysAgo days before now:
// a local data stage and an inference stage with predictions.
func (f *fixture) run(id string, daysAgo int, status record.Status, dataVersion string) *record.Run {
	f.t.Helper()
	dataPath := f.dataVersion("news", dataVersion)
	preds := filepath.Join(f.prediction, "predictions", id, "predictions.parquet")
	f.write(preds, 50)
	r := &record.Run{ID: id, Pipeline: "p", Target: "local", Executor: "local", Status: status,
		StartedAt: now.Add(-time.Duration(daysAgo) * 24 * time.Hour), Order: []string{"data", "infer"},
		Stages: map[string]*record.Stage{
			"data": {Type: "data", Executor: "local", Status: status,
				Outputs: map[string]string{"data_name": "news", "data_version": dataVersion, "data_path": dataPath},
				Cache:   &record.CacheInfo{Key: key(id, "data"), Status: "miss"}},
			"infer": {Type: "inference", Executor: "local", Status: status,
				Params:  map[string]string{"data_name": "news", "data_version": dataVersion},
				Outputs: map[string]string{"predictions_path": preds}},
		}}
	b, _ := json.Marshal(r)
	f.write(filepath.Join(record.DirIn(f.state), id, "run.json"), 0)
	if err := os.WriteFile(filepath.Join(record.DirIn(f.state), id, "run.json"), b, 0o600); err != nil {
		f.t.Fatal(err)
	}
	c := &cache.Store{Dir: filepath.Join(f.state, "cache")}
	if err := c.Put(&cache.Entry{Key: key(id, "data"), Outputs: r.Stages["data"].Outputs, Pipeline: "p", Target: "local", Stage: "data", RunID: id}); err != nil {
		f.t.Fatal(err)
	}
	return r
}

// key is a cache key made from a run and a stage.
func key(id, stage string) string {
	h := []byte(id + stage)
	out := make([]byte, 64)
	for i := range out {
		out[i] = "0123456789abcdef"[int(h[i%len(h)])%16]
	}
	return string(out)
}

func runID(n int) string { return "20261101-00000" + string(rune('0'+n)) + "-000-abcd" }

func (f *fixture) scan(t *testing.T, pins []Pin, venvs []string, keep int) *Plan {
	t.Helper()
	p, err := Scan(Inputs{StateDir: f.state, CurrentVenvs: venvs, Pins: pins,
		Policy: Policy{KeepRuns: keep, OlderThan: 7 * 24 * time.Hour, Now: now}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) paths(p *Plan) []string {
	var out []string
	for _, it := range p.Items {
		rel, _ := filepath.Rel(filepath.Dir(f.state), it.Path)
		out = append(out, string(it.Kind)+" "+filepath.ToSlash(rel))
	}
	slices.Sort(out)
	return out
}

func TestRetentionKeepsTheLastSuccessfulRun(t *testing.T) {
	f := newFixture(t)
	f.run(runID(1), 30, record.Succeeded, "v1") // the last successful one
	f.run(runID(2), 20, record.Failed, "v2")
	f.run(runID(3), 10, record.Failed, "v3")
	f.run(runID(4), 1, record.Failed, "v4") // young
	got := f.paths(f.scan(t, nil, nil, 1))
	want := []string{
		"cache .pipectl/cache/entries/" + key(runID(2), "data") + ".json",
		"cache .pipectl/cache/entries/" + key(runID(3), "data") + ".json",
		"data data/news/v2",
		"data data/news/v3",
		"predictions predictions/predictions/" + runID(2),
		"predictions predictions/predictions/" + runID(3),
		"run .pipectl/runs/" + runID(2),
		"run .pipectl/runs/" + runID(3),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wrong items (-want +got)\n%s", diff)
	}
}

func TestChampionsDataVersionAndRunAreKept(t *testing.T) {
	f := newFixture(t)
	f.run(runID(1), 30, record.Succeeded, "v1") // trained the champion
	f.run(runID(2), 20, record.Succeeded, "v2")
	f.run(runID(3), 10, record.Succeeded, "v3") // the last successful one
	f.dataVersion("news", "v0")                 // no run left, but the challenger's data
	pins := []Pin{
		{Why: "m@champion", RunID: runID(1)},
		{Why: "m@challenger", DataName: "news", DataVersion: "v0"},
	}
	got := f.paths(f.scan(t, pins, nil, 0))
	want := []string{
		"cache .pipectl/cache/entries/" + key(runID(2), "data") + ".json",
		"data data/news/v2",
		"predictions predictions/predictions/" + runID(2),
		"run .pipectl/runs/" + runID(2),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wrong items (-want +got)\n%s", diff)
	}
}

func TestALockedRunsThingsAreKept(t *testing.T) {
	f := newFixture(t)
	f.run(runID(1), 30, record.Succeeded, "v1")
	r := f.run(runID(2), 20, record.Running, "v2") // old, but in progress
	f.run(runID(3), 10, record.Succeeded, "v3")
	// Files of the past, then one the running run wrote but has not
	// recorded yet.
	past := time.Now().Add(-time.Hour)
	for _, v := range []string{"v1", "v2", "v3"} {
		if err := os.Chtimes(filepath.Join(f.data, "news", v), past, past); err != nil {
			t.Fatal(err)
		}
	}
	f.dataVersion("news", "v9")
	owner := lock.Self(r.ID, time.Now().Add(-time.Minute))
	b, _ := json.Marshal(owner)
	f.write(filepath.Join(f.state, "locks", "p@local.owner"), 0)
	if err := os.WriteFile(filepath.Join(f.state, "locks", "p@local.owner"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	f.write(filepath.Join(f.state, "venv-0000000000000000", "bin", "python"), 10)
	p := f.scan(t, nil, []string{"venv-1111111111111111"}, 0)
	want := []string{
		"cache .pipectl/cache/entries/" + key(runID(1), "data") + ".json",
		"data data/news/v1",
		"predictions predictions/predictions/" + runID(1),
		"run .pipectl/runs/" + runID(1),
	}
	if diff := cmp.Diff(want, f.paths(p)); diff != "" {
		t.Errorf("wrong items (-want +got)\n%s", diff)
	}
	if !slices.Contains(p.Notes, "kept venv-0000000000000000: a run is in progress and may use it") ||
		!slices.Contains(p.Notes, "kept data version news/v9: written while a run is in progress") {
		t.Errorf("notes = %q", p.Notes)
	}

	// A run that starts between the scan and Apply stops Apply.
	p = f.scan(t, nil, nil, 0)
	b, _ = json.Marshal(lock.Self("20261201-000000-000-ffff", now))
	if err := os.WriteFile(filepath.Join(f.state, "locks", "q@local.owner"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(); !errors.Is(err, ErrRunStarted) {
		t.Fatalf("Apply = %v, want ErrRunStarted", err)
	}
	if _, err := os.Stat(filepath.Join(record.DirIn(f.state), runID(1))); err != nil {
		t.Errorf("Apply deleted after all: %v", err)
	}
}

func TestOrphanVenvIsRemoved(t *testing.T) {
	f := newFixture(t)
	current, orphan, building := "venv-1111111111111111", "venv-0000000000000000", "venv-2222222222222222"
	for _, v := range []string{current, orphan, building} {
		f.write(filepath.Join(f.state, v, "bin", "python"), 100)
		f.write(filepath.Join(f.state, v+".lock"), 0)
	}
	held := flock.New(filepath.Join(f.state, building+".lock"))
	if err := held.Lock(); err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()

	if p := f.scan(t, nil, nil, 0); len(p.Items) != 0 {
		t.Errorf("with the current venv unknown, items = %v", f.paths(p))
	}
	p := f.scan(t, nil, []string{current}, 0)
	if diff := cmp.Diff([]string{"venv .pipectl/" + orphan}, f.paths(p)); diff != "" {
		t.Errorf("wrong items (-want +got)\n%s", diff)
	}
	if p.Bytes != 100 {
		t.Errorf("bytes = %d, want 100", p.Bytes)
	}
	freed, err := p.Apply()
	if err != nil || freed != 100 {
		t.Fatalf("Apply = %d, %v", freed, err)
	}
	for _, gone := range []string{orphan, orphan + ".lock"} {
		if _, err := os.Stat(filepath.Join(f.state, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", gone, err)
		}
	}
	for _, stays := range []string{current, building} {
		if _, err := os.Stat(filepath.Join(f.state, stays, "bin", "python")); err != nil {
			t.Errorf("%s was removed: %v", stays, err)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(f.state, ".gc-*"))
	if len(leftovers) != 0 {
		t.Errorf("left behind: %v", leftovers)
	}

	// What a gc killed mid-delete left is deleted by the next.
	f.write(filepath.Join(f.state, ".gc-123-venv-3333333333333333", "bin", "python"), 7)
	p = f.scan(t, nil, []string{current}, 0)
	if diff := cmp.Diff([]string{"trash .pipectl/.gc-123-venv-3333333333333333"}, f.paths(p)); diff != "" {
		t.Errorf("wrong items (-want +got)\n%s", diff)
	}
	if freed, err := p.Apply(); err != nil || freed != 7 {
		t.Fatalf("Apply = %d, %v", freed, err)
	}
	if _, err := os.Stat(filepath.Join(f.state, ".gc-123-venv-3333333333333333")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("trash still there: %v", err)
	}
}

func TestTmpDirsInUseAreKept(t *testing.T) {
	f := newFixture(t)
	old := now.Add(-time.Hour)
	for _, d := range []string{"stale", "locked", "new"} {
		f.write(filepath.Join(f.state, "tmp", d, ".lock"), 0)
	}
	for _, d := range []string{"stale", "locked"} {
		if err := os.Chtimes(filepath.Join(f.state, "tmp", d), old, old); err != nil {
			t.Fatal(err)
		}
	}
	held := flock.New(filepath.Join(f.state, "tmp", "locked", ".lock"))
	if err := held.Lock(); err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	p, err := Scan(Inputs{StateDir: f.state, Policy: Policy{KeepRuns: 1, OlderThan: time.Hour, Now: now}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"tmp .pipectl/tmp/stale"}, f.paths(p)); diff != "" {
		t.Errorf("wrong items (-want +got)\n%s", diff)
	}
}

func TestParseAge(t *testing.T) {
	tests := map[string]struct {
		in   string
		want time.Duration
		err  bool
	}{
		"days":     {in: "30d", want: 30 * 24 * time.Hour},
		"duration": {in: "36h", want: 36 * time.Hour},
		"zero":     {in: "0s"},
		"bad days": {in: "xd", err: true},
		"negative": {in: "-1h", err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseAge(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("ParseAge(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}
