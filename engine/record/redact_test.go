package record

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestLogRedacts: a stage log masks the secret values it was given and
// credential-shaped text (engine/secret) in every line.
func TestLogRedacts(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	id := "20261204-170000-000-abcd"
	l, err := s.OpenLog(id, "train")
	if err != nil {
		t.Fatal(err)
	}
	l.Redact([]string{"s3cr3t-value"})
	dapi := "dapi" + strings.Repeat("0123456789abcdef", 2)
	l.Line(time.Now(), 1, "stdout", "using s3cr3t-value\nand "+dapi+" too")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(s.LogPath(id, "train"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if strings.Contains(got, "s3cr3t-value") || strings.Contains(got, dapi) || strings.Count(got, "***") != 2 {
		t.Errorf("log not masked:\n%s", got)
	}
}
