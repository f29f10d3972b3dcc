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
// a free port. Measured reasons: three notebooks opening a fresh SQLite
// store at once all fail in MLflow's schema migrations, and artifacts of a
// notebook that logs to SQLite directly land in ./mlruns of its working
// directory. Through the server, the first start creates the schema under a
// file lock, artifacts are proxied into <state>/mlflow/artifacts, and writes
// are handled one at a time (mlflow_server.py), which also closes MLflow's
// check-then-insert races (two trainings logging the same dataset).
//
// The server starts in the background on the first Run, once the venv is
// ready, in one process (mlflow_server.py: `mlflow server` would import
// MLflow twice); data stages do not wait for it, every other stage does.
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
// # Stage worker
//
// Python's start-up and the imports of pandas, scikit-learn and MLflow
// cost seconds per stage. One worker per executor (stage_worker.py, beside
// the server) imports them once and forks each stage: a leader that does
// the guard's job for the stage's new process group, and in it the runner,
// with the stage's own environment, directory and output (file descriptors
// passed over a Unix socket). It plugs into package proc as a Launcher, so
// output, cancellation, timeouts and leftovers work as for a plain process,
// which is what a stage falls back to when the worker cannot start it
// (worker.go; Options.NoWorker turns it off).
//
// # Cached outputs
//
// CheckOutputs answers without starting Python, by the outputs a stage
// promises or reports (not its type): a data_path is a directory with
// manifest.json, a model_name/model_version is a row of the registry's
// SQLite table (read directly, read-only) whose artifacts exist, a
// predictions_path is a file or, ending in ".delta", a Delta table
// directory with its _delta_log.
package local
