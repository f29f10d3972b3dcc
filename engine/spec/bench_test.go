package spec

import (
	"path/filepath"
	"sync"
	"testing"
)

// BenchmarkLoadRepoSpecs loads and checks the repository's own specs/ (the
// work of `pipectl validate`, B3 in docs/BENCHMARKS.md).
func BenchmarkLoadRepoSpecs(b *testing.B) {
	root, err := filepath.Abs("../..")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		proj, ds := Load(nil, Options{Root: root})
		if ds.HasErrors() || proj == nil || len(proj.Pipelines) == 0 {
			b.Fatalf("%v", ds)
		}
	}
}

// BenchmarkLoadRepoSpecsCold is the same with the embedded schema compiled
// again each time, as every pipectl process does once.
func BenchmarkLoadRepoSpecsCold(b *testing.B) {
	root, err := filepath.Abs("../..")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		schemaOnce = sync.Once{}
		proj, ds := Load(nil, Options{Root: root})
		if ds.HasErrors() || proj == nil || len(proj.Pipelines) == 0 {
			b.Fatalf("%v", ds)
		}
	}
}
