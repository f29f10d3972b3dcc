// Package workflows finds how GitHub Actions workflows and composite
// actions call pipectl. actionlint parses the files and their ${{ }}
// expressions, which are evaluated here; mvdan.cc/sh parses run: scripts.
//
// [File.Invocations] expands every pipectl command line for each way a
// workflow can run: every trigger, every choice of every workflow_dispatch
// input, every matrix combination, and both outcomes of every condition
// the file cannot decide (startsWith(github.ref, ...)). Shell variables
// resolve through the env: of the step, job and workflow, or through a
// comment that says what a loop's variables range over:
//
//	# pipectl-test: p=each-pipeline t=each-target
//
// Anything else that cannot be known (a secret, github.sha, a step output)
// is an error when it reaches a pipectl argument, never a silent skip.
package workflows
