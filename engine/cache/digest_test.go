package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeAt writes a file and sets its modification time, so that the
// memo's identity is what the test says.
func writeAt(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func TestDigestsRememberUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "data.csv")
	old := time.Now().Add(-time.Hour)
	writeAt(t, f, "a,b\n1,2\n", old)

	d := &Digests{Dir: filepath.Join(dir, "memo")}
	first, _, err := d.Sum(f)
	if err != nil || !strings.HasPrefix(first, "sha256:") {
		t.Fatalf("sum %q, %v", first, err)
	}
	// Same identity: the memo answers, even from another Digests (a later
	// run), without reading the file.
	d2 := &Digests{Dir: d.Dir}
	again, _, err := d2.Sum(f)
	if err != nil || again != first || d2.Hashed() != 0 {
		t.Errorf("unchanged file: sum %q (want %q), %d reads, %v", again, first, d2.Hashed(), err)
	}

	// Same size, other content, other mtime: read again.
	writeAt(t, f, "a,b\n3,4\n", old.Add(time.Second))
	changed, _, err := d2.Sum(f)
	if err != nil || changed == first || d2.Hashed() != 1 {
		t.Errorf("modified file: sum %q (was %q), %d reads, %v", changed, first, d2.Hashed(), err)
	}

	// Same size and mtime restored (touch -r, cp -p): the change time
	// differs, so it is read again.
	writeAt(t, f, "a,b\n5,6\n", old.Add(time.Second))
	restored, _, err := d2.Sum(f)
	if err != nil || restored == changed || d2.Hashed() != 2 {
		t.Errorf("content changed under a restored mtime: sum %q (was %q), %d reads, %v", restored, changed, d2.Hashed(), err)
	}

	// Replaced by another file at the same path (a new inode).
	tmp := filepath.Join(dir, "new.csv")
	writeAt(t, tmp, "a,b\n7,8\n", old.Add(time.Second))
	if err := os.Rename(tmp, f); err != nil {
		t.Fatal(err)
	}
	replaced, _, _ := d2.Sum(f)
	if replaced == restored || d2.Hashed() != 3 {
		t.Errorf("replaced file: sum %q (was %q), %d reads", replaced, restored, d2.Hashed())
	}
}

// A file modified just now is not remembered: a second write within the
// same timestamp tick would keep its identity.
func TestDigestsDoNotRememberRacyFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "data.csv")
	now := time.Now()
	writeAt(t, f, "x\n", now)
	d := &Digests{Dir: filepath.Join(dir, "memo"), Now: func() time.Time { return now }}
	if _, _, err := d.Sum(f); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Sum(f); err != nil {
		t.Fatal(err)
	}
	if d.Hashed() != 2 {
		t.Errorf("%d reads of a racily recent file, want 2 (not remembered)", d.Hashed())
	}
	d.Now = func() time.Time { return now.Add(racyWindow) }
	d.Sum(f)
	d.Sum(f)
	if d.Hashed() != 3 {
		t.Errorf("%d reads, want 3: remembered once it is old enough", d.Hashed())
	}
}

func TestDigestsOfDirectories(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	writeAt(t, filepath.Join(dir, "in", "a.csv"), "1\n", old)
	writeAt(t, filepath.Join(dir, "in", "sub", "b.csv"), "2\n", old)
	d := &Digests{Dir: filepath.Join(dir, "memo")}
	first, detail, err := d.Sum(filepath.Join(dir, "in"))
	if err != nil || detail != "directory, 2 files, 4 bytes" {
		t.Fatalf("sum %q %q, %v", first, detail, err)
	}
	// A rename changes the directory's sum, though no content changed.
	if err := os.Rename(filepath.Join(dir, "in", "sub", "b.csv"), filepath.Join(dir, "in", "sub", "c.csv")); err != nil {
		t.Fatal(err)
	}
	renamed, _, _ := d.Sum(filepath.Join(dir, "in"))
	if renamed == first {
		t.Error("renaming a file kept the directory's sum")
	}
	writeAt(t, filepath.Join(dir, "in", "d.csv"), "3\n", old)
	added, _, _ := d.Sum(filepath.Join(dir, "in"))
	if added == renamed {
		t.Error("adding a file kept the directory's sum")
	}
	if _, _, err := d.Sum(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing path: %v", err)
	}
}
