package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCLICachedRerun50 is the wall time of `pipectl run` on a
// 50-stage noop pipeline that is fully cached: process start, loading and
// checking the CUE spec, planning, the lock, 50 cache lookups and the run
// record, as a user waits for it.
func BenchmarkCLICachedRerun50(b *testing.B) {
	dir := b.TempDir()
	var stages strings.Builder
	for l := range 10 {
		for i := range 5 {
			fmt.Fprintf(&stages, "\t\ts%d_%d: {type: \"custom\", notebook: \"notebooks/c.py\", outputs: [\"out\"], params: {noop_output_out: \"%d\"", l, i, i)
			if l > 0 {
				fmt.Fprintf(&stages, ", in: \"${stages.s%d_%d.outputs.out}\"}, needs: [\"s%d_%d\"]}\n", l-1, i, l-1, (i+1)%5)
			} else {
				stages.WriteString("}}\n")
			}
		}
	}
	spec := "package pipelines\n\npipelines: bench: {\n\tdescription: \"50 noop stages\"\n\ttargets: local: executor: \"noop\"\n\tstages: {\n" + stages.String() + "\t}\n}\n"
	os.MkdirAll(filepath.Join(dir, "specs"), 0o755)
	os.MkdirAll(filepath.Join(dir, "notebooks"), 0o755)
	os.WriteFile(filepath.Join(dir, "specs", "bench.cue"), []byte(spec), 0o644)
	os.WriteFile(filepath.Join(dir, "notebooks", "c.py"), []byte("# Databricks notebook source\n"), 0o644)
	run := func() {
		cmd := pipectl(dir, "run", "bench", "-j", "4")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
	run()
	for b.Loop() {
		run()
	}
	b.StopTimer()
	res := runPipectl(&testing.T{}, dir, "runs", "show", "latest")
	if !strings.Contains(res.stdout, "s9_4   custom  cached") {
		b.Fatalf("the last run was not fully cached:\n%s", res.stdout)
	}
}

// BenchmarkCLIVersion is the baseline: starting pipectl and printing its
// version, in the same invocation.
func BenchmarkCLIVersion(b *testing.B) {
	for b.Loop() {
		if out, err := pipectl(b.TempDir(), "version").CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
}
