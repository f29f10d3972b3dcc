// Package record keeps what a run did under .pipectl/runs/<run-id>/:
// run.json (pipeline, target, spec hash, git commit, times, status and per
// stage status, attempts, outputs, metrics, cache key, links, errors) and
// one log per stage (logs/<stage>.log, every attempt, timestamped).
//
// run.json is replaced atomically (temp + fsync + rename) on every change,
// so a reader or a crash never sees half a record; directories are 0700
// and files 0600 because outputs and logs may name private paths. Run ids
// sort by start time. A record that says "running" while its owner process
// is gone reads as interrupted ([Run.Effective]).
package record
