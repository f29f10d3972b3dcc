package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
)

// Files are fingerprinted by content, relative to the project root, with
// the memo under the state directory; a model reference without a
// registry has no value (the stage runs). Aliases against a real registry:
// testdata/script/local/stale_inputs.txtar in cmd/pipectl.
func TestFingerprintFilesAndMissingRegistry(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, ".pipectl")
	old := time.Now().Add(-time.Hour)
	for name, content := range map[string]string{"in/new.csv": "Sentence\na\n", "raw/dir/x.csv": "1\n"} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
		os.Chtimes(p, old, old)
	}
	x := New(Options{})
	defer x.Close()
	req := executor.FingerprintRequest{Task: executor.Task{ProjectRoot: root, StateDir: state}, Inputs: []executor.Input{
		{Param: "input_path", Kind: executor.InputFile, Ref: "in/new.csv"},
		{Param: "source", Kind: executor.InputFile, Ref: filepath.Join(root, "raw", "dir")},
		{Param: "gone", Kind: executor.InputFile, Ref: "in/gone.csv"},
		{Param: "model", Kind: executor.InputModel, Ref: "models:/clf@champion"},
		{Param: "run", Kind: executor.InputModel, Ref: "runs:/abc/model"},
		{Param: "bad", Kind: executor.InputModel, Ref: "clf"},
	}}
	res, err := x.Fingerprint(context.Background(), req)
	if err != nil || len(res.Fingerprints) != 6 {
		t.Fatalf("%v %+v", err, res)
	}
	f := res.Fingerprints
	if want := sha256.Sum256([]byte("Sentence\na\n")); f[0].Value != "sha256:"+hex.EncodeToString(want[:]) {
		t.Errorf("file: %+v", f[0])
	}
	if !strings.HasPrefix(f[1].Value, "sha256:") || f[1].Detail != "directory, 1 files, 2 bytes" {
		t.Errorf("directory: %+v", f[1])
	}
	if f[2].Value != "" || !strings.Contains(f[2].Detail, "does not exist") {
		t.Errorf("missing file: %+v", f[2])
	}
	if f[3].Value != "" || !strings.Contains(f[3].Detail, "no local MLflow registry") {
		t.Errorf("alias without a registry: %+v", f[3])
	}
	if f[4].Value != "run:runs:/abc/model" || f[4].Resolved != "" {
		t.Errorf("runs:/ URI: %+v", f[4])
	}
	if f[5].Value != "" || !strings.Contains(f[5].Detail, "not a model URI") {
		t.Errorf("not a URI: %+v", f[5])
	}
	if entries, _ := os.ReadDir(filepath.Join(state, "cache", "inputs")); len(entries) != 2 {
		t.Errorf("memo: %d entries, want one per file hashed", len(entries))
	}
}
