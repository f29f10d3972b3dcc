package run

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/executor"
)

// printingFake is the fake executor with inputs: files by content, the
// model alias "models:/m@champion" by the version in champion.
type printingFake struct {
	*fake
	root string

	mu       sync.Mutex
	champion string
	err      error
}

func (p *printingFake) Fingerprint(ctx context.Context, req executor.FingerprintRequest) (executor.FingerprintResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return executor.FingerprintResult{}, p.err
	}
	var out executor.FingerprintResult
	for _, in := range req.Inputs {
		f := executor.Fingerprint{Param: in.Param}
		switch in.Kind {
		case executor.InputFile:
			b, err := os.ReadFile(filepath.Join(p.root, in.Ref))
			if err == nil {
				f.Value = "content:" + string(b)
			}
		case executor.InputModel:
			f.Value, f.Resolved = "version "+p.champion, "models:/m/"+p.champion
		}
		out.Fingerprints = append(out.Fingerprints, f)
	}
	return out, nil
}

func (p *printingFake) setChampion(v string) {
	p.mu.Lock()
	p.champion = v
	p.mu.Unlock()
}

func TestInputsAreInTheKey(t *testing.T) {
	h := newHarness(t)
	pf := &printingFake{fake: h.fake, root: h.root, champion: "21"}
	pl := testPlan(t, stageDef{name: "score", params: map[string]any{"input_path": "in.csv", "model": "models:/m@champion"}})
	pl.Stages["score"].Inputs = map[string]string{"input_path": executor.InputFile, "model": executor.InputModel}
	write(t, filepath.Join(h.root, "in.csv"), "20 rows")
	run := func(opts Options) *Runner {
		r := h.runner(pl)
		r.Open = func(ctx context.Context, name string) (executor.Executor, error) { return pf, nil }
		p, err := r.Prepare(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Execute(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		return r
	}
	run(Options{})
	if got := h.fake.tasks["score"].Params["model"]; got != "models:/m/21" {
		t.Errorf("the notebook got model %q, want the version the alias resolved to", got)
	}
	run(Options{})
	if n := h.fake.callsOf("score"); n != 1 {
		t.Fatalf("unchanged inputs: %d runs, want a hit", n)
	}

	// The input file edited in place: a miss that says which input.
	write(t, filepath.Join(h.root, "in.csv"), "10 rows")
	r := h.runner(pl)
	r.Open = func(ctx context.Context, name string) (executor.Executor, error) { return pf, nil }
	p, _ := r.Prepare(context.Background(), Options{})
	d := p.Preview(context.Background())[0]
	if d.Action != ActRun || d.Why() != cache.ReasonInput || len(d.Changes) != 1 ||
		!strings.HasPrefix(d.Changes[0].Detail, "input_path in.csv: content changed since run ") {
		t.Errorf("edited input: %s %q %+v", d.Action, d.Why(), d.Changes)
	}
	run(Options{})
	if n := h.fake.callsOf("score"); n != 2 {
		t.Errorf("edited input: %d runs, want 2", n)
	}

	// The alias moved: a miss, and the notebook gets the new version.
	pf.setChampion("25")
	r = h.runner(pl)
	r.Open = func(ctx context.Context, name string) (executor.Executor, error) { return pf, nil }
	p, _ = r.Prepare(context.Background(), Options{})
	d = p.Preview(context.Background())[0]
	if len(d.Changes) != 1 || !strings.HasPrefix(d.Changes[0].Detail, "model models:/m@champion: models:/m/21 → models:/m/25 since run ") {
		t.Errorf("moved alias: %+v", d.Changes)
	}
	run(Options{})
	if n := h.fake.callsOf("score"); n != 3 || h.fake.tasks["score"].Params["model"] != "models:/m/25" {
		t.Errorf("moved alias: %d runs, model %q", n, h.fake.tasks["score"].Params["model"])
	}

	// An executor that cannot fingerprint: never a hit.
	pf.mu.Lock()
	pf.err = executor.ErrFingerprintUnsupported
	pf.mu.Unlock()
	run(Options{})
	run(Options{})
	if n := h.fake.callsOf("score"); n != 5 {
		t.Errorf("unsupported fingerprints: %d runs, want 5 (every run misses)", n)
	}
	if h.fake.tasks["score"].Params["model"] != "models:/m@champion" {
		t.Errorf("unresolved alias: the notebook got %q", h.fake.tasks["score"].Params["model"])
	}
}

// A missing input file: no key, the stage runs (and its notebook says
// what is wrong).
func TestMissingInputMeansNoKey(t *testing.T) {
	h := newHarness(t)
	pf := &printingFake{fake: h.fake, root: h.root}
	pl := testPlan(t, stageDef{name: "data", params: map[string]any{"source": "gone.csv"}})
	pl.Stages["data"].Inputs = map[string]string{"source": executor.InputFile}
	r := h.runner(pl)
	r.Open = func(ctx context.Context, name string) (executor.Executor, error) { return pf, nil }
	p, err := r.Prepare(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Preview(context.Background())[0]
	// Never run: new, and --explain says why there is no key.
	if d.Action != ActRun || d.Key != "" || d.Why() != cache.ReasonNew || len(d.Changes) != 1 ||
		!strings.HasPrefix(d.Changes[0].Detail, "input source gone.csv: ") {
		t.Errorf("missing input: %s key %q why %q %+v", d.Action, d.Key, d.Why(), d.Changes)
	}
	var fe *FailedError
	if _, err := p.Execute(context.Background(), nil); err != nil && !errors.As(err, &fe) {
		t.Fatal(err)
	}
}
