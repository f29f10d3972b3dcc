// Package local is the executor that runs each stage's notebook on this
// machine: `python -m pipectl_runner NOTEBOOK --param ...` (docs/STAGES.md,
// "The local runner") in a managed virtualenv built from
// notebooks/requirements.txt (package pyenv), against a local MLflow
// tracking store and model registry under <state>/mlflow/.
//
// # MLflow
//
// The store is one SQLite database (tracking and registry) plus an artifact
// directory. Notebooks never open the database themselves: one MLflow
// server per executor (that is, per pipectl run) serves it on 127.0.0.1 and
// a free port, so parallel stages write through a single process instead of
// racing for SQLite's file lock ("database is locked"), and artifacts are
// proxied into <state>/mlflow/artifacts whatever the notebook's working
// directory. The server starts in the background on the first Run, after
// the venv is ready; data stages do not wait for it, every other stage does.
// Close stops it; a guard process (package proc) stops it too when the
// executor's process dies.
//
// # Processes
//
// Each notebook runs in its own process group under the guard, with the
// context parameters of docs/STAGES.md added to the stage's parameters.
// Cancellation or the stage timeout sends SIGTERM to the group (the runner
// ends the notebook's MLflow run as FAILED), then SIGKILL after a grace
// period; afterwards any MLflow run the stage left RUNNING is marked KILLED
// through the server's REST API, found by the tags the notebooks set
// (pipectl.run_id and pipectl.stage, see sentiment/context.py).
//
// # Cached outputs
//
// CheckOutputs answers without starting Python: a data version is a
// directory with manifest.json, a model version is a row of the registry's
// SQLite table (read directly, read-only) whose artifacts exist, a
// prediction is a file.
package local
