// Package run walks a plan's DAG and runs its stages through executors.
//
// A [Runner] runs ready stages with bounded parallelism, substitutes
// upstream outputs (and ${run.date}, ${run.id}) into downstream
// parameters, retries attempts that failed for a retryable reason with
// exponential backoff, bounds each attempt by the stage's timeout, skips
// the dependents of a failed stage while independent branches finish, and
// reports one root cause. Cancelling the context cancels every running
// stage, which is recorded as cancelled; closing Options.Force stops
// waiting for them.
//
// Before a stage runs, its cache key (package cache) is computed from its
// rendered inputs; a key with an entry whose outputs the executor confirms
// still exist is a hit and the stage does not run. [Prepare] also selects
// stages (--only, --from, --resume) and [Prepared.Preview] says, without
// running anything, what a run would do and why — `pipectl plan` prints it.
//
// Everything is written to a run record (package record) as it happens,
// and reported as [Event]s, whose JSON form is the stable `--json` output
// of `pipectl run`.
package run
