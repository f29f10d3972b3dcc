// Package pipectl holds what `pipectl init` writes into a new project,
// embedded from this repository's own files so that there is one source of
// truth: the example specs, the notebooks and their package, and the
// sample data. (go:embed cannot reach parent directories, so the embedding
// package lives at the repository root.)
package pipectl
