// Package plan turns a pipeline and a target into a Plan: the stage DAG in
// topological layers, each stage with its executor, notebook and resolved
// parameters (target overrides, --set values and schema defaults applied;
// references to upstream outputs still unresolved until the run provides
// them).
package plan
