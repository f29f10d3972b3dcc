package executor

import (
	"context"
	"regexp"
)

// GroupRunner is implemented by executors that can run several stages of
// one pipectl run as one unit: a single remote run holding a task per stage
// (Databricks: one runs/submit with depends_on and task values), so that
// the stages share compute and pay one start-up instead of one each. The
// runner still records every stage on its own from the per-stage results.
type GroupRunner interface {
	// CanRunGroups reports whether RunGroup works: a plugin built before
	// the RunGroup RPC cannot, and the runner then runs stage by stage.
	CanRunGroups() bool
	// RunGroup runs the stages of g, streaming events per stage to sink
	// (safe from any goroutine) until it returns. A stage that fails is a
	// Result with Status Failed in GroupResult.Results; the error is for
	// failures of the executor itself. When ctx is cancelled the whole
	// unit is cancelled before RunGroup returns.
	RunGroup(ctx context.Context, g Group, sink GroupSink) (GroupResult, error)
}

// Group is the stages a GroupRunner runs as one unit.
type Group struct {
	// Stages are in an order where every stage comes after the group
	// members it needs.
	Stages []GroupStage `json:"stages"`
	// Repair, when set, is the Unit of an earlier group of the same
	// pipectl run (a resume) in which these stages failed, were cancelled
	// or skipped: the executor may re-run just them inside that unit
	// (Databricks: jobs/runs/repair), where the upstream outputs they read
	// still are. An executor that cannot repair runs a new unit.
	Repair string `json:"repair,omitempty"`
	// Interrupted is set on a resume when every stage's last attempt was
	// interrupted: pipectl died while they ran, so their unit (Repair, or,
	// when pipectl died before it learned the unit, the one the previous
	// attempts started) may still be running or have ended unseen. The
	// executor should follow that unit, or take the results of the stages
	// that succeeded in it, rather than run them again (Databricks: the
	// same idempotency token finds a run whose submit answer was lost).
	Interrupted bool `json:"interrupted,omitempty"`
}

// GroupStage is one stage of a group: its task and the members it needs.
type GroupStage struct {
	// Task is the stage's attempt. A parameter that waits for the output
	// of another member holds the reference as the spec wrote it
	// (OutputRef); the executor wires it (ExpandOutputRefs) to the
	// upstream output inside the unit (Databricks: a task value).
	Task Task `json:"task"`
	// Needs are the members of the group this stage runs after.
	Needs []string `json:"needs,omitempty"`
}

// GroupSink receives the events of a group's stages. Done, when not nil,
// is a stage's final result, sent as soon as that stage ends: the runner
// records it (and may start local stages downstream) before the group has
// ended. A stage's result in GroupResult wins over a Done event.
type GroupSink func(stage string, ev Event, done *Result)

// GroupResult is how a group ended.
type GroupResult struct {
	// Unit names the remote unit that ran the stages (e.g.
	// "databricks:run:1234"), so that a resume can repair it.
	Unit string `json:"unit,omitempty"`
	// Results holds a result for every stage of the group.
	Results map[string]Result `json:"results"`
}

// outputRefPattern matches the spec's reference to an upstream output,
// ${stages.NAME.outputs.OUTPUT}.
var outputRefPattern = regexp.MustCompile(`\$\{stages\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)\}`)

// OutputRef is the text a group member's parameter holds where it waits
// for the output of another member.
func OutputRef(stage, output string) string {
	return "${stages." + stage + ".outputs." + output + "}"
}

// ExpandOutputRefs replaces every OutputRef in s with what f returns for it.
func ExpandOutputRefs(s string, f func(stage, output string) string) string {
	return outputRefPattern.ReplaceAllStringFunc(s, func(m string) string {
		sm := outputRefPattern.FindStringSubmatch(m)
		return f(sm[1], sm[2])
	})
}
