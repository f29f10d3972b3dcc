package run

import (
	"context"
	"fmt"
	"slices"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
)

// Validate asks each executor the plan uses to check the target and its
// stages before anything runs.
func (r *Runner) Validate(ctx context.Context) (diag.Diagnostics, error) {
	pl := r.Plan
	byExec := map[string][]executor.StageSpec{}
	for _, name := range pl.Order() {
		st := pl.Stages[name]
		params, err := st.RenderParams(nil)
		if err != nil {
			return nil, err
		}
		byExec[st.Executor] = append(byExec[st.Executor], executor.StageSpec{Name: name, Type: st.Type, Notebook: st.Notebook, Params: params})
	}
	var all diag.Diagnostics
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range byExec {
			if !yield(n) {
				return
			}
		}
	}) {
		ex, err := r.Open(ctx, name)
		if err != nil {
			return nil, err
		}
		ds, err := ex.Validate(ctx, executor.ValidateRequest{Pipeline: pl.Pipeline.Name, Target: pl.Target.Name,
			ProjectRoot: r.ProjectRoot, Config: pl.Target.Config(name), Stages: byExec[name]})
		if err != nil {
			return nil, fmt.Errorf("executor %s: validate: %w", name, err)
		}
		all = append(all, ds...)
	}
	return all, nil
}
