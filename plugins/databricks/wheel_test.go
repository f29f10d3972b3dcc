package databricks

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The project's package builds as a PEP 427 wheel: the package's files
// under their import path, a dist-info with METADATA, WHEEL and a RECORD
// whose hashes match; the same sources give the same bytes, a changed
// source gives another wheel (and another upload path).
func TestBuildWheel(t *testing.T) {
	root := filepath.Join("..", "..")
	start := time.Now()
	w, err := buildWheel(context.Background(), root)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if w == nil {
		t.Fatal("no wheel for the project's notebooks/sentiment package")
	}
	t.Logf("%s: %d bytes, %d-char hash, built in %s", w.File, len(w.Bytes), len(w.Hash), took.Round(time.Millisecond))
	if w.File != "sentiment-0.1.0-py3-none-any.whl" || w.Package != "sentiment" {
		t.Errorf("wheel %s of package %s", w.File, w.Package)
	}
	again, err := buildWheel(context.Background(), root)
	if err != nil || !bytes.Equal(again.Bytes, w.Bytes) {
		t.Fatalf("a second build differs (err %v)", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(w.Bytes), int64(len(w.Bytes)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		r, _ := f.Open()
		b, _ := io.ReadAll(r)
		files[f.Name] = b
		if strings.Contains(f.Name, "tests/") || strings.HasSuffix(f.Name, ".pyc") {
			t.Errorf("wheel carries %s", f.Name)
		}
	}
	for _, want := range []string{"sentiment/__init__.py", "sentiment/stages/train.py", "sentiment-0.1.0.dist-info/METADATA",
		"sentiment-0.1.0.dist-info/WHEEL", "sentiment-0.1.0.dist-info/RECORD"} {
		if _, ok := files[want]; !ok {
			t.Errorf("wheel has no %s", want)
		}
	}
	record := string(files["sentiment-0.1.0.dist-info/RECORD"])
	lines := strings.Split(strings.TrimSpace(record), "\n")
	if len(lines) != len(files) {
		t.Errorf("RECORD lists %d files, the wheel holds %d", len(lines), len(files))
	}
	for _, line := range lines {
		parts := strings.Split(line, ",")
		if parts[0] == "sentiment-0.1.0.dist-info/RECORD" {
			continue
		}
		sum := sha256.Sum256(files[parts[0]])
		want := fmt.Sprintf("%s,sha256=%s,%d", parts[0], base64.RawURLEncoding.EncodeToString(sum[:]), len(files[parts[0]]))
		if line != want {
			t.Errorf("RECORD line %q, want %q", line, want)
		}
	}

	// A changed source is another wheel at another path.
	tmp := t.TempDir()
	copyTree(t, filepath.Join(root, "notebooks"), filepath.Join(tmp, "notebooks"))
	before, err := buildWheel(context.Background(), tmp)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(tmp, "notebooks", "sentiment", "cleaning.py")
	b, _ := os.ReadFile(f)
	if err := os.WriteFile(f, append(b, []byte("\n# changed\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := buildWheel(context.Background(), tmp)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Catalog: "c", Schema: "s", Volume: "v"}
	if before.Hash == after.Hash || wheelPath(cfg, before) == wheelPath(cfg, after) {
		t.Error("a changed source left the wheel's hash and path unchanged")
	}
	if !strings.HasPrefix(wheelPath(cfg, after), "/Volumes/c/s/v/.pipectl/wheels/") {
		t.Errorf("wheel path %s", wheelPath(cfg, after))
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			if skipDir(info.Name()) && p != from {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
