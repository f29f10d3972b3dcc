package run

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipectl/pipectl/engine/secret"
)

// TestRecordsMaskSecrets runs a stage whose parameters look like
// credentials (engine/secret): the executor gets the real values, the run
// records on disk (a run, then a cached run) only ***, and no file under
// runs/ (records, logs) holds them.
func TestRecordsMaskSecrets(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t, stageDef{name: "a", params: map[string]any{
		"api_token": "s3cr3t-value", "endpoint": "https://svc:pw-value@example.com/x", "n": 1,
	}})
	first := h.mustRun(pl, Options{})
	if got := h.fake.tasks["a"].Params; got["api_token"] != "s3cr3t-value" || got["endpoint"] != "https://svc:pw-value@example.com/x" {
		t.Fatalf("the executor got %v, want the real values", got)
	}
	second := h.mustRun(pl, Options{})
	store := h.runner(pl).Records
	for _, id := range []string{first.ID, second.ID} {
		rec, err := store.Load(id)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.Stages["a"].Params; got["api_token"] != secret.Mask || got["endpoint"] != "https://svc:"+secret.Mask+"@example.com/x" || got["n"] != "1" {
			t.Errorf("run %s recorded params %v", id, got)
		}
	}
	if st := second.Stages["a"]; st.Cache == nil || st.Cache.Status != "hit" {
		t.Errorf("second run: %+v, want a cache hit", st)
	}
	runs := filepath.Join(h.root, ".pipectl", "runs")
	err := filepath.WalkDir(runs, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range []string{"s3cr3t-value", "pw-value"} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds %q:\n%s", path, s, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
