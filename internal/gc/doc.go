// Package gc decides what `pipectl gc` may delete from a state directory
// and the local data and prediction roots, and deletes it.
//
// [Scan] reads the run records, the cache index, the lock owners, the
// venvs and the temporary directories, and returns a [Plan]: the items to
// delete, each with its size in bytes and why it goes. Its rules:
//
//   - Runs: a run record goes when it is beyond the newest [Policy.KeepRuns]
//     of its pipeline AND older than [Policy.OlderThan], unless it is the
//     last successful run of its pipeline on its target, a run in progress
//     (its lock owner is alive) or a run a [Pin] names (the run that trained
//     a champion). Its predictions go with it.
//   - Predictions: a run directory under a prediction root that no kept run
//     owns.
//   - Data versions: a complete version directory (with manifest.json) whose
//     (data_name, data_version) no kept run, kept cache entry or pin
//     references (a champion's training data), and that was not written
//     while a run is in progress (that run may not have recorded it yet).
//   - Cache entries: those that no last-index names, whose run is not kept
//     and that no kept run used.
//   - Temporary directories under tmp/: unlocked and older than a minute
//     (the local executor holds each attempt's directory locked).
//   - Venvs: venv-<key> directories other than those [Inputs.CurrentVenvs]
//     names, unless a run is in progress (it may use an older one) or the
//     venv is being built (its lock is held). When the current venvs are
//     unknown, none goes.
//
// [Apply] deletes a plan's items, cache entries first so that no new run
// is served a hit whose outputs are about to go. It first checks that no
// run started since the scan; each directory is renamed away before it is
// removed, so nothing is ever seen half-deleted under its own name; what an
// interrupted gc left (.gc-*) the next Scan lists as trash.
package gc
