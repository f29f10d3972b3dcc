package cache

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchInput is the input the digest benchmarks hash: $PIPECTL_BENCH_INPUT
// (e.g. the 1M-row CSV of bench/scale/generate.py), else a 1M-row CSV
// written once per benchmark.
func benchInput(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("PIPECTL_BENCH_INPUT"); p != "" {
		return p
	}
	p := filepath.Join(b.TempDir(), "rows.csv")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "Sentence,Sentiment")
	for i := range 1_000_000 {
		fmt.Fprintf(w, "row %d of a benchmark input: the markets moved on the news,positive\n", i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	old := time.Now().Add(-time.Hour) // not racily recent: memoisable
	os.Chtimes(p, old, old)
	return p
}

// BenchmarkInputDigestCold hashes the input with an empty memo: a read of
// every byte (the OS page cache is warm after the first iteration).
func BenchmarkInputDigestCold(b *testing.B) {
	p := benchInput(b)
	fi, _ := os.Stat(p)
	b.SetBytes(fi.Size())
	for i := 0; b.Loop(); i++ {
		d := &Digests{Dir: filepath.Join(b.TempDir(), fmt.Sprint(i))}
		if _, _, err := d.Sum(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInputDigestMemoised hashes the unchanged input with the memo
// of an earlier run: a stat and a small JSON file.
func BenchmarkInputDigestMemoised(b *testing.B) {
	p := benchInput(b)
	d := &Digests{Dir: b.TempDir()}
	if _, _, err := d.Sum(p); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := d.Sum(p); err != nil {
			b.Fatal(err)
		}
	}
	if d.Hashed() != 1 {
		b.Fatalf("the memo was not used: %d reads", d.Hashed())
	}
}
