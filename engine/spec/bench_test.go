package spec

import (
	"path/filepath"
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
