package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pipectl/pipectl/engine/plan"
	runner "github.com/pipectl/pipectl/engine/run"
	"github.com/pipectl/pipectl/engine/secret"
	"github.com/pipectl/pipectl/engine/spec"
)

// PlanCmd shows what a run would do.
type PlanCmd struct {
	SpecFlags
	Pipeline string   `arg:"" help:"Pipeline name."`
	Target   string   `short:"t" help:"Target (default: the pipeline's default_target)."`
	Set      []string `name:"set" sep:"none" placeholder:"STAGE.PARAM=VALUE" help:"Override a stage parameter for this plan (repeatable)."`
	JSON     bool     `name:"json" help:"Print the plan as JSON."`
	Explain  bool     `name:"explain" help:"For each stage that will run, list what changed since its last cached result."`
	// RunFlags make every run command line a valid plan command line;
	// --parallelism and --wait change nothing here.
	RunFlags
}

// buildPlan loads the pipeline and plans it on a target with --set values;
// diagnostics go to stderr and mean exit 2.
func (a *App) buildPlan(specs []string, pipeline, target string, sets []string) (*plan.Plan, error) {
	_, p, err := a.pipeline(specs, pipeline)
	if err != nil {
		return nil, err
	}
	var parsed []plan.Set
	for _, s := range sets {
		ps, err := plan.ParseSet(s)
		if err != nil {
			return nil, invalidf("%v", err)
		}
		parsed = append(parsed, ps)
	}
	schema, err := spec.LoadSchema()
	if err != nil {
		return nil, err
	}
	pl, ds := plan.Build(schema, p, plan.Options{Target: target, Sets: parsed})
	a.printDiagnostics(ds)
	if ds.HasErrors() {
		fmt.Fprintf(a.Stderr, "pipectl: cannot plan %s: %s\n", pipeline, ds.Summary())
		return nil, alreadyPrinted(exitInvalid)
	}
	return pl, nil
}

// Run prints the plan with what the cache says about each stage.
func (c *PlanCmd) Run(app *App) error {
	target, sets, err := app.resumeTarget(c.RunFlags, c.Pipeline, c.Target, c.Set)
	if err != nil {
		return err
	}
	pl, err := app.buildPlan(c.Specs, c.Pipeline, target, sets)
	if err != nil {
		return err
	}
	decisions, err := app.preview(pl, c.RunFlags, sets)
	if err != nil {
		return err
	}
	if c.JSON {
		return writePlanJSON(app.Stdout, pl, decisions)
	}
	writePlanText(app.Stdout, pl, decisions, c.Explain)
	return nil
}

// preview says what a run with these flags would do with each stage.
func (a *App) preview(pl *plan.Plan, f RunFlags, sets []string) (map[string]*runner.Decision, error) {
	r, err := a.newRunner(pl)
	if err != nil {
		return nil, err
	}
	p, err := r.Prepare(a.Ctx, f.runOptions(sets))
	var ue *runner.UsageError
	switch {
	case errors.As(err, &ue):
		return nil, invalidf("%v", ue.Err)
	case errors.Is(err, runner.ErrNothingToResume):
		return nil, invalidf("%v", err)
	case err != nil:
		return nil, err
	}
	out := map[string]*runner.Decision{}
	for _, d := range p.Preview(a.Ctx) {
		out[d.Stage] = d
	}
	return out, nil
}

// planJSON is the stable JSON form of a plan.
type planJSON struct {
	Pipeline string `json:"pipeline"`
	Target   string `json:"target"`
	Executor string `json:"executor"`
	SpecHash string `json:"spec_hash"`
	Schedule string `json:"schedule,omitempty"`
	// Scheduler is set with Schedule: the system that triggers it.
	Scheduler string                   `json:"scheduler,omitempty"`
	Layers    [][]string               `json:"layers"`
	Stages    map[string]stagePlanJSON `json:"stages"`
}

type stagePlanJSON struct {
	Type     string            `json:"type"`
	Executor string            `json:"executor"`
	Notebook string            `json:"notebook"`
	Needs    []string          `json:"needs"`
	Retries  int               `json:"retries"`
	Timeout  string            `json:"timeout"`
	Params   map[string]string `json:"params"`
	// Cache says whether the stage will run and why (run.Decision).
	Cache *runner.Decision `json:"cache"`
}

func writePlanJSON(w io.Writer, pl *plan.Plan, decisions map[string]*runner.Decision) error {
	out := planJSON{
		Pipeline: pl.Pipeline.Name, Target: pl.Target.Name, Executor: pl.Target.Executor,
		SpecHash: pl.Pipeline.Hash, Schedule: pl.Pipeline.Schedule, Layers: pl.Layers,
		Stages: map[string]stagePlanJSON{},
	}
	if out.Schedule != "" {
		out.Scheduler = pl.Pipeline.Scheduler
	}
	for name, st := range pl.Stages {
		params, _ := st.RenderParams(nil)
		params = secret.Params(params) // credentials show as ***
		needs := st.Needs
		if needs == nil {
			needs = []string{}
		}
		out.Stages[name] = stagePlanJSON{
			Type: st.Type, Executor: st.Executor, Notebook: st.Notebook, Needs: needs,
			Retries: st.Retries, Timeout: fmtDuration(st.Timeout), Params: params, Cache: decisions[name],
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writePlanText(w io.Writer, pl *plan.Plan, decisions map[string]*runner.Decision, explain bool) {
	p := pl.Pipeline
	fmt.Fprintf(w, "pipeline %s on target %s (executor %s, %s)\n", p.Name, pl.Target.Name, pl.Target.Executor, pl.Target.Mode)
	fmt.Fprintf(w, "spec %s\n", shortHash(p.Hash))
	if p.Schedule != "" {
		fmt.Fprintf(w, "schedule %s (UTC)\n", p.Schedule)
		fmt.Fprintln(w, schedulerText(p, pl.Target))
	}
	for i, layer := range pl.Layers {
		fmt.Fprintf(w, "\nlayer %d\n", i+1)
		for _, name := range layer {
			st := pl.Stages[name]
			fmt.Fprintf(w, "  %s: %s on %s, %s", name, st.Type, st.Executor, st.Notebook)
			if len(st.Needs) > 0 {
				fmt.Fprintf(w, ", needs %s", strings.Join(st.Needs, ", "))
			}
			if st.Retries > 0 {
				fmt.Fprintf(w, ", retries %d", st.Retries)
			}
			fmt.Fprintf(w, ", timeout %s\n", fmtDuration(st.Timeout))
			if d := decisions[name]; d != nil {
				writeDecision(w, d, explain)
			}
			params, _ := st.RenderParams(nil)
			params = secret.Params(params) // credentials show as ***
			width := 0
			for k := range params {
				width = max(width, len(k))
			}
			for _, k := range slices.Sorted(maps.Keys(params)) {
				fmt.Fprintf(w, "      %-*s  %s\n", width, k, params[k])
			}
		}
	}
}

// writeDecision prints what a run does with a stage: "cached", "will run
// (why)", and with explain the changes behind a run.
func writeDecision(w io.Writer, d *runner.Decision, explain bool) {
	switch d.Action {
	case runner.ActRun:
		fmt.Fprintf(w, "      → will run (%s)\n", d.Why())
		if explain {
			if len(d.Changes) == 0 && d.Key != "" {
				fmt.Fprintln(w, "          no earlier result of this stage to compare with")
			}
			for _, c := range d.Changes {
				fmt.Fprintf(w, "          %s: %s\n", c.Reason, c.Detail)
			}
		}
	case runner.ActCached:
		fmt.Fprintf(w, "      → cached (outputs of run %s)\n", d.FromRun)
	case runner.ActPrevious:
		fmt.Fprintf(w, "      → not run: outputs of run %s\n", d.FromRun)
	case runner.ActReuse:
		fmt.Fprintf(w, "      → not run: succeeded earlier in run %s\n", d.FromRun)
	case runner.ActExcluded:
		fmt.Fprintln(w, "      → not run: not selected by --only/--from")
	}
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// fmtDuration prints durations as people write them: 2h, 90s, 1h30m.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
