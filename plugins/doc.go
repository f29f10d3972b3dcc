// Package plugins holds the executors built into pipectl: local (notebooks
// on this machine), databricks (Databricks Jobs runs) and noop (dispatch
// only, for tests and benchmarks). Each implements executor.Executor and
// none imports another.
package plugins
