// Package emulator is a Databricks REST API emulator that executes the
// notebooks it is given: the subset of the Workspace, Jobs 2.2, Files and
// Unity Catalog model-version APIs that pipectl uses, with the real API's
// validation, error shapes ({"error_code", "message"} with HTTP 400, 401,
// 403, 404, 409, 429) and bearer-token authentication.
//
// A notebook task of a submitted run (jobs/runs/submit) or of a job run
// (jobs/run-now) runs for real: the imported notebook source (or a git
// checkout of a local repository) is executed by pipectl's Python runner
// (python -m pipectl_runner) with the task's base_parameters, dynamic value
// references ({{tasks.<task>.values.<key>}}, {{job.run_id}},
// {{job.start_time.iso_date}}, ...) resolved, upstream task values passed
// in, and tasks ordered by depends_on; jobs/runs/repair re-runs tasks of an
// ended run in place. The emulator plays the runtime:
//
//   - /Volumes/... and /Workspace/... paths in parameters are rewritten to
//     directories the emulator owns, and rewritten back in outputs and task
//     values, like a FUSE mount;
//   - the "databricks" and "databricks-uc" MLflow URIs point at an MLflow
//     tracking server the emulator owns (or one it is given), which also
//     answers the Unity Catalog model-version calls.
//
// Tests inject faults ([Emulator.InjectHTTP], [Emulator.InjectTask]):
// 429/503 bursts with Retry-After, failing tasks, INTERNAL_ERROR, slow runs
// and runs stuck in PENDING. Every API call is counted per endpoint
// ([Emulator.Calls]), and every run records when it terminated and when a
// client first saw it terminated ([Emulator.RunStats]), so tests and
// benchmarks can report API cost and notice delay.
//
// pipectl dev databricks-emulator serves one for demos.
package emulator
