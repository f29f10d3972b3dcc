// Package databricks is the databricks executor: it runs each stage as a
// one-time Databricks Jobs run (jobs/runs/submit with one notebook task),
// and it turns a whole pipeline into a persistent, scheduled multi-task job
// for pipectl deploy.
//
// Authentication is the Databricks SDK's unified auth (a PAT, OAuth M2M,
// github-oidc, Azure, config profiles), read from the environment values
// the executor is given (never os.Getenv) and from ~/.databrickscfg; the
// target's databricks block names the workspace (host or profile), never a
// credential. Secrets never reach events, results or errors: every message
// passes through a redactor of the resolved credentials.
//
// Notebooks reach the workspace in one of two ways (source.kind):
// "workspace" imports the notebook's directory tree (its Python package
// included, tests and caches excluded) into a content-addressed folder
// <workspace_root>/.pipectl/code/<hash>, uploaded once; "git" runs them
// from a commit of the repository (git_source), by default
// $GITHUB_SERVER_URL/$GITHUB_REPOSITORY at $GITHUB_SHA.
//
// A stage's run is submitted with an idempotency token derived from the
// pipectl run, the stage and the attempt, so a retried submit call never
// starts a second run. The run page is reported at once; runs/get is
// polled with backoff (about every 3 s in steady state, so termination is
// noticed within seconds) while 429/503 answers are waited out per their
// Retry-After; the exit JSON comes from runs/get-output of the task run.
// Only a terminal SUCCESS succeeds; INTERNAL_ERROR and CLOUD_FAILURE
// terminations are retryable, client errors are not. Cancelling the
// context cancels the remote run and waits until it has terminated.
//
// Package emulator beside this one is a Databricks REST API emulator that
// executes the notebooks, used by the tests and by pipectl dev
// databricks-emulator.
package databricks
