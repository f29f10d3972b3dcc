// Package workflows reads GitHub Actions workflow files and composite
// action metadata far enough to check how they call pipectl.
//
// [Load] parses one file into a [File]: triggers, cron schedules, dispatch
// inputs, env, jobs with their environment, concurrency, permissions,
// matrix and steps, each with its line. [File.Invocations] finds every
// pipectl command line in the run: scripts and expands it for each way the
// workflow can run: every trigger, every choice of every workflow_dispatch
// input, every matrix combination, and both outcomes of every condition
// the file cannot decide (startsWith(github.ref, ...)). ${{ }} expressions
// are evaluated with actionlint's parser; shell variables resolve through
// the env: of the step, job and workflow.
//
// A run script whose pipectl arguments come from data at run time (a loop
// over `pipectl pipelines --json`) declares what its variables range over
// with a comment the expansion reads:
//
//	# pipectl-test: p=each-pipeline t=each-target
//
// Anything else that cannot be known (a secret, github.sha, a step output)
// is an error when it reaches a pipectl argument, never a silent skip.
package workflows
