// Command pipectl validates, plans and runs ML pipelines described as CUE
// specs, locally or on Databricks. See README.md.
package main

import (
	"os"
	"runtime/debug"
)

func main() {
	// Most commands live a fraction of a second and allocate mostly while
	// evaluating CUE: collecting garbage at 5× the live heap instead of 2×
	// cuts their CPU time by about a third (B3 in docs/BENCHMARKS.md). GOGC,
	// when set, still decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:]))
}
