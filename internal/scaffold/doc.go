// Package scaffold writes a new pipectl project (`pipectl init`): the
// repository's own specs, notebooks and sample data (embedded by the root
// package, one source of truth) plus a README and a .gitignore of its
// own, optionally with the data stage pointed at the team's CSV file.
package scaffold
