package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/record"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
)

// TestMeasureSentimentOnEmulator measures `pipectl run sentiment -t dev
// --no-cache` against the emulator: wall time and API calls by endpoint,
// with instant compute and with PIPECTL_MEASURE_STARTUP (default 5s) of
// compute start-up per compute (docs/BENCHMARKS.md). It runs only with
// PIPECTL_MEASURE=1.
func TestMeasureSentimentOnEmulator(t *testing.T) {
	if os.Getenv("PIPECTL_MEASURE") != "1" {
		t.Skip("a measurement: set PIPECTL_MEASURE=1")
	}
	startup := 5 * time.Second
	if s := os.Getenv("PIPECTL_MEASURE_STARTUP"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		startup = d
	}
	for _, s := range []time.Duration{0, startup} {
		project, e := sentimentEmulator(t, emulator.Options{ComputeStartup: s})
		// Cold: the code is imported and the emulator starts its MLflow
		// server; warm: the same run again, every stage uncached.
		for _, what := range []string{"cold", "warm"} {
			e.ResetCalls()
			start := time.Now()
			r := runPipectl(t, project, "run", "sentiment", "--target", "dev", "--no-cache")
			elapsed := time.Since(start)
			if r.code != 0 {
				t.Fatalf("run: %s", r.stderr)
			}
			calls := e.Calls()
			total := 0
			var lines []string
			for _, ep := range slices.Sorted(maps.Keys(calls)) {
				total += calls[ep]
				lines = append(lines, fmt.Sprintf("  %-45s %4d", ep, calls[ep]))
			}
			rec := lastRun(t, &record.Store{Dir: filepath.Join(project, ".pipectl", "runs")})
			var stages []string
			for _, name := range rec.Order {
				stages = append(stages, fmt.Sprintf("%s %.1f s", name, float64(rec.Stages[name].DurationMS)/1000))
			}
			t.Logf("%s, compute start-up %s: 6 stages in %.1f s (%s), %d API calls:\n%s", what, s, elapsed.Seconds(),
				strings.Join(stages, ", "), total, strings.Join(lines, "\n"))
		}
	}
}
