package local

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// An attempt's directory is removed when it ends; one left by an executor
// killed with SIGKILL (unlocked, older than staleAfter) goes with the next
// attempt; a live attempt's, and a fresh unlocked one, stay.
func TestAttemptDirectories(t *testing.T) {
	dir := t.TempDir()
	live, releaseLive, err := attemptDir(dir, "live-")
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * staleAfter)
	killed := filepath.Join(dir, "killed-123")
	fresh := filepath.Join(dir, "fresh-456")
	for _, d := range []string{killed, fresh} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "result.json"), []byte("{}"), 0o600)
	}
	for _, d := range []string{killed, live} {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}

	next, releaseNext, err := attemptDir(dir, "next-")
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{killed: false, fresh: true, live: true, next: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
	releaseLive()
	releaseNext()
	for _, d := range []string{live, next} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s outlived its attempt", filepath.Base(d))
		}
	}
}
