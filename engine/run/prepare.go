package run

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/record"
	"github.com/pipectl/pipectl/engine/spec"
)

// Action is what a run does with a stage.
type Action string

const (
	// ActRun: the stage runs.
	ActRun Action = "run"
	// ActCached: the cache has its outputs (and they still exist).
	ActCached Action = "cached"
	// ActPrevious: an earlier run's outputs serve a stage upstream of
	// --only/--from.
	ActPrevious Action = "previous-run"
	// ActReuse: the resumed run already succeeded at it.
	ActReuse Action = "reuse"
	// ActExcluded: --only/--from leave it out and nothing selected needs
	// it.
	ActExcluded Action = "excluded"
)

// Reasons a stage runs besides the cache package's component changes.
const (
	ReasonSelected       = "selected"
	ReasonNoCache        = "cache disabled"
	ReasonOutputsMissing = "outputs missing"
	ReasonRunID          = "params use ${run.id}"
)

// Decision is what a run does with one stage and why.
type Decision struct {
	Stage  string `json:"stage"`
	Action Action `json:"action"`
	// Reasons say why a stage runs (ActRun) or where its outputs come from.
	Reasons []string `json:"reasons,omitempty"`
	// Changes are the differences from the stage's last cache entry.
	Changes []cache.Change `json:"changes,omitempty"`
	Key     string         `json:"key,omitempty"`
	// FromRun is the run whose outputs a non-running stage uses.
	FromRun string `json:"from_run,omitempty"`

	Outputs    map[string]string  `json:"-"`
	Metrics    map[string]float64 `json:"-"`
	Links      []executor.Link    `json:"-"`
	Params     map[string]string  `json:"-"`
	Components *cache.Components  `json:"-"`
}

// Why returns the reasons as one phrase.
func (d *Decision) Why() string { return strings.Join(d.Reasons, ", ") }

// Prepared is a run whose stage selection is settled.
type Prepared struct {
	r    *Runner
	opts Options
	// forced are the stages --only/--from name: they run whatever the
	// cache says.
	forced map[string]bool
	// preset are the decisions settled before anything runs: excluded
	// stages, upstream outputs of --only/--from, stages a resume reuses.
	preset map[string]*Decision
	resume *record.Run
	// prior are the resumed run's stage statuses before this session.
	prior map[string]record.Status
}

// Resumed returns the record of the run being resumed, or nil.
func (p *Prepared) Resumed() *record.Run { return p.resume }

// Prepare checks the options against the plan and settles which stages
// run. Problems with the options are *UsageError; a resume of a run that
// succeeded is ErrNothingToResume.
func (r *Runner) Prepare(ctx context.Context, opts Options) (*Prepared, error) {
	pl := r.Plan
	if opts.Parallelism < 0 {
		return nil, usagef("--parallelism %d: want a positive number", opts.Parallelism)
	}
	for _, s := range append(slices.Clone(opts.Only), opts.From) {
		if s != "" && pl.Stages[s] == nil {
			return nil, usagef("pipeline %s has no stage %q (stages: %s)", pl.Pipeline.Name, s, strings.Join(pl.Order(), ", "))
		}
	}
	p := &Prepared{r: r, opts: opts, forced: map[string]bool{}, preset: map[string]*Decision{}}
	if opts.Resume != "" {
		if len(opts.Only) > 0 || opts.From != "" {
			return nil, usagef("--resume reruns what did not succeed; it does not combine with --only or --from")
		}
		if err := p.prepareResume(); err != nil {
			return nil, err
		}
		return p, nil
	}
	if len(opts.Only) == 0 && opts.From == "" {
		return p, nil
	}
	for _, s := range opts.Only {
		p.forced[s] = true
	}
	if opts.From != "" {
		p.forced[opts.From] = true
		for _, d := range pl.Graph.Descendants(opts.From) {
			p.forced[d] = true
		}
	}
	needed := map[string]bool{}
	for s := range p.forced {
		for _, a := range pl.Graph.Ancestors(s) {
			if !p.forced[a] {
				needed[a] = true
			}
		}
	}
	outputs := map[string]map[string]string{}
	var missing []string
	for _, name := range pl.Order() {
		switch {
		case p.forced[name]:
		case needed[name]:
			d, err := p.resolveUpstream(ctx, pl.Stages[name], outputs)
			if err != nil {
				return nil, err
			}
			if d == nil {
				missing = append(missing, name)
				continue
			}
			p.preset[name] = d
			outputs[name] = d.Outputs
		default:
			p.preset[name] = &Decision{Stage: name, Action: ActExcluded, Reasons: []string{"not selected"}}
		}
	}
	if len(missing) > 0 {
		sel := slices.Sorted(maps.Keys(p.forced))
		return nil, usagef("%s needs the outputs of %s, which %s not cached and did not succeed in an earlier run of %s on %s; run %s too (add --only %s) or run without --only/--from",
			strings.Join(sel, ", "), strings.Join(missing, ", "), isAre(len(missing)), pl.Pipeline.Name, pl.Target.Name,
			itThem(len(missing)), strings.Join(missing, " --only "))
	}
	return p, nil
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func itThem(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// prepareResume loads the run to resume and keeps what succeeded.
func (p *Prepared) prepareResume() error {
	r, pl := p.r, p.r.Plan
	id, err := r.Records.Resolve(p.opts.Resume, pl.Pipeline.Name)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--resume: %w", err)}
	}
	rec, err := r.Records.Load(id)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--resume: %w", err)}
	}
	if rec.Pipeline != pl.Pipeline.Name {
		return usagef("--resume %s: that run is of pipeline %s, not %s", id, rec.Pipeline, pl.Pipeline.Name)
	}
	if rec.Target != pl.Target.Name {
		return usagef("--resume %s: that run is on target %s, not %s", id, rec.Target, pl.Target.Name)
	}
	if rec.Status == record.Running {
		if rec.Owner.Alive() {
			return fmt.Errorf("--resume %s: the run is still going (PID %d on %s)", id, rec.Owner.PID, rec.Owner.Host)
		}
		rec.MarkInterrupted(r.now())
	}
	if rec.Status == record.Succeeded {
		return fmt.Errorf("%w: run %s already succeeded", ErrNothingToResume, id)
	}
	// A resume finishes the run that was started: its flags hold, so a
	// run started with --no-cache never takes an unfinished stage from
	// the cache. Asking for the opposite is a different run.
	if p.opts.NoCache && !rec.Options.NoCache {
		return usagef("--resume %s: that run was started without --no-cache and a resume keeps its flags; drop --no-cache, or start a new run with it", id)
	}
	p.opts.NoCache = rec.Options.NoCache
	p.resume = rec
	p.prior = map[string]record.Status{}
	for name, st := range rec.Stages {
		p.prior[name] = st.Status
	}
	for _, name := range pl.Order() {
		st := rec.Stages[name]
		switch {
		case st == nil:
		case st.Status.Done():
			p.preset[name] = &Decision{Stage: name, Action: ActReuse, FromRun: id, Key: cacheKey(st),
				Reasons: []string{string(st.Status) + " earlier in this run"},
				Outputs: st.Outputs, Metrics: st.Metrics, Links: st.Links, Params: st.Params}
		case st.Status == record.Excluded:
			p.preset[name] = &Decision{Stage: name, Action: ActExcluded, Reasons: []string{"not selected"}}
		}
	}
	return nil
}

// resumeReasons says why a stage of a resumed run runs again: how it
// ended before, then the cache's reasons unless that is just "new".
func (p *Prepared) resumeReasons(name string, reasons []string) []string {
	if p.resume == nil {
		return reasons
	}
	why := "not started earlier in this run"
	if st, ok := p.prior[name]; ok && st != record.Pending {
		why = string(st) + " earlier in this run"
	}
	if len(reasons) == 1 && reasons[0] == cache.ReasonNew {
		reasons = nil
	}
	return append([]string{why}, reasons...)
}

func cacheKey(st *record.Stage) string {
	if st.Cache != nil {
		return st.Cache.Key
	}
	return ""
}

// resolveUpstream finds the outputs of a stage that --only/--from do not
// run: from the cache, else from the newest earlier run of the pipeline on
// the target where it succeeded. Nil means neither has them.
func (p *Prepared) resolveUpstream(ctx context.Context, st *plan.Stage, outputs map[string]map[string]string) (*Decision, error) {
	r := p.r
	if params, err := r.render(st, outputs, "", runDate(r.now())); err == nil {
		d := r.decide(ctx, st, params, decideOpts{})
		if d.Action == ActCached {
			return d, nil
		}
	}
	runs, _ := r.Records.List()
	for i := len(runs) - 1; i >= 0; i-- {
		rec := runs[i]
		if rec.Pipeline != r.Plan.Pipeline.Name || rec.Target != r.Plan.Target.Name {
			continue
		}
		rs := rec.Stages[st.Name]
		if rs == nil || !rs.Status.Done() || rs.Outputs == nil {
			continue
		}
		if ok, _ := r.outputsExist(ctx, st, rs.Params, rs.Outputs); !ok {
			continue
		}
		return &Decision{Stage: st.Name, Action: ActPrevious, FromRun: rec.ID, Key: cacheKey(rs),
			Reasons: []string{"outputs of run " + rec.ID},
			Outputs: rs.Outputs, Metrics: rs.Metrics, Links: rs.Links, Params: rs.Params}, nil
	}
	return nil, nil
}

// outputsExist asks the stage's executor whether recorded outputs still
// exist.
func (r *Runner) outputsExist(ctx context.Context, st *plan.Stage, params, outputs map[string]string) (bool, string) {
	ex, err := r.Open(ctx, st.Executor)
	if err != nil {
		return false, err.Error()
	}
	task := r.task(st, params, "", "", 0)
	cr, err := ex.CheckOutputs(ctx, executor.CheckRequest{Task: task, Outputs: outputs})
	if err != nil {
		return false, "cannot check: " + err.Error()
	}
	return cr.Exists, cr.Reason
}

// render substitutes references in a stage's parameters: upstream outputs
// from outputs, ${run.id} (empty runID makes it an error) and
// ${run.date}.
func (r *Runner) render(st *plan.Stage, outputs map[string]map[string]string, runID, date string) (map[string]string, error) {
	return st.RenderParams(func(ref spec.Ref) (string, bool) {
		switch ref.Run {
		case "id":
			return runID, runID != ""
		case "date":
			return date, true
		}
		v, ok := outputs[ref.Stage][ref.Output]
		return v, ok
	})
}

type decideOpts struct {
	forced  bool
	noCache bool
}

// decide says whether a stage with rendered params runs or is a cache hit.
func (r *Runner) decide(ctx context.Context, st *plan.Stage, params map[string]string, o decideOpts) *Decision {
	d := &Decision{Stage: st.Name, Action: ActRun, Params: params}
	comps, taskParams, err := r.components(ctx, st, params)
	if taskParams != nil {
		d.Params = taskParams
	}
	if err != nil {
		d.Reasons = []string{"no cache key: " + err.Error()}
		var ie *inputError
		if errors.As(err, &ie) && !o.forced && !o.noCache {
			// Nothing to compare with: a stage that never ran is new,
			// whether or not its executor can tell what its inputs are
			// now (plan on a target without credentials).
			if last, _ := r.Cache.Last(r.Plan.Pipeline.Name, r.Plan.Target.Name, st.Name); last == nil {
				d.Reasons = []string{cache.ReasonNew}
				d.Changes = []cache.Change{{Reason: "no cache key", Detail: err.Error()}}
			}
		}
		return d
	}
	d.Components = &comps
	d.Key = comps.Key()
	// What changed since the stage's last result; only a run needs it.
	diff := func() {
		last, _ := r.Cache.Last(r.Plan.Pipeline.Name, r.Plan.Target.Name, st.Name)
		if last != nil && last.Key != d.Key {
			d.Changes = cache.Diff(last.Components, comps)
			for i, c := range d.Changes {
				if c.Reason == cache.ReasonInput && last.RunID != "" {
					d.Changes[i].Detail += " since run " + last.RunID
				}
			}
		}
	}
	switch {
	case o.forced:
		diff()
		d.Reasons = []string{ReasonSelected}
		return d
	case o.noCache:
		diff()
		d.Reasons = []string{ReasonNoCache}
		return d
	}
	entry, _ := r.Cache.Get(d.Key)
	if entry != nil {
		ok, why := r.outputsExist(ctx, st, params, entry.Outputs)
		if ok {
			d.Action = ActCached
			d.FromRun = entry.RunID
			d.Outputs, d.Metrics, d.Links = entry.Outputs, entry.Metrics, entry.Links
			d.Reasons = []string{"outputs of run " + entry.RunID}
			return d
		}
		reason := ReasonOutputsMissing
		if why != "" {
			reason += ": " + why
		}
		d.Reasons = []string{reason}
		return d
	}
	diff()
	if reasons := cache.Reasons(d.Changes); len(reasons) > 0 {
		d.Reasons = reasons
	} else {
		d.Reasons = []string{cache.ReasonNew}
	}
	return d
}

// components gathers a stage's cache key components, and the parameters
// the notebook receives: params with model references resolved by the
// executor (nil when the inputs could not be fingerprinted).
func (r *Runner) components(ctx context.Context, st *plan.Stage, params map[string]string) (cache.Components, map[string]string, error) {
	nbs, pkgs, err := r.Hasher.Sources(st.Notebook)
	if err != nil {
		return cache.Components{}, nil, err
	}
	req, reqSum, err := r.Hasher.Requirements(st.Notebook)
	if err != nil {
		return cache.Components{}, nil, err
	}
	inputs, taskParams, err := r.fingerprint(ctx, st, params)
	if err != nil {
		return cache.Components{}, nil, &inputError{err}
	}
	return cache.Components{
		Version: cache.KeyVersion, Stage: st.Name, Type: st.Type, Notebook: st.Notebook,
		Notebooks: nbs, Packages: pkgs, Params: params,
		Executor: st.Executor, Config: cache.CanonicalJSON(st.ExecutorConfig),
		Requirements: req, RequirementsSHA: reqSum, Inputs: inputs,
	}, taskParams, nil
}

// inputError says a stage's inputs could not be fingerprinted.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// fingerprint asks the stage's executor what the inputs its parameters
// name are now (plan.Stage.Inputs), for the key. It returns their
// fingerprints and the parameters the notebook receives: params, with a
// reference the executor resolved (a model alias) replaced by what it
// resolved to, so the notebook reads exactly what the key names. An input
// whose value waits for an upstream output ("${...}", in previews) is left
// out. An executor that cannot fingerprint is an error: no key, no hit.
func (r *Runner) fingerprint(ctx context.Context, st *plan.Stage, params map[string]string) (map[string]cache.Input, map[string]string, error) {
	var inputs []executor.Input
	for _, name := range slices.Sorted(maps.Keys(st.Inputs)) {
		v := params[name]
		if v == "" || strings.Contains(v, "${") {
			continue
		}
		inputs = append(inputs, executor.Input{Param: name, Kind: st.Inputs[name], Ref: v})
	}
	if len(inputs) == 0 {
		return nil, params, nil
	}
	names := make([]string, len(inputs))
	for i, in := range inputs {
		names[i] = in.Param
	}
	ex, err := r.Open(ctx, st.Executor)
	if err != nil {
		return nil, nil, err
	}
	unsupported := fmt.Errorf("executor %s cannot fingerprint the stage's inputs (%s), so the stage runs every time", st.Executor, strings.Join(names, ", "))
	fp, ok := ex.(executor.Fingerprinter)
	if !ok {
		return nil, nil, unsupported
	}
	res, err := fp.Fingerprint(ctx, executor.FingerprintRequest{Task: r.task(st, params, "", "", 0), Inputs: inputs})
	switch {
	case errors.Is(err, executor.ErrFingerprintUnsupported):
		return nil, nil, unsupported
	case err != nil:
		return nil, nil, fmt.Errorf("fingerprint inputs: %w", err)
	case len(res.Fingerprints) != len(inputs):
		return nil, nil, fmt.Errorf("executor %s answered %d fingerprints for %d inputs", st.Executor, len(res.Fingerprints), len(inputs))
	}
	out := map[string]cache.Input{}
	taskParams, cloned := params, false
	for i, f := range res.Fingerprints {
		in := inputs[i]
		if f.Value == "" {
			why := f.Detail
			if why == "" {
				why = "the executor cannot fingerprint it"
			}
			return nil, nil, fmt.Errorf("input %s %s: %s", in.Param, in.Ref, why)
		}
		out[in.Param] = cache.Input{Kind: in.Kind, Ref: in.Ref, Value: f.Value, Resolved: f.Resolved}
		if f.Resolved != "" && f.Resolved != in.Ref {
			if !cloned {
				taskParams, cloned = maps.Clone(params), true
			}
			taskParams[in.Param] = f.Resolved
		}
	}
	return out, taskParams, nil
}

// Preview says what Execute would do with each stage, in plan order,
// without running anything. A stage downstream of one that will run is
// "will run (upstream will run)": its key depends on outputs not known yet.
// Execute keys it again with the actual outputs, so an upstream stage that
// reproduces the same outputs still lets it hit.
func (p *Prepared) Preview(ctx context.Context) []*Decision {
	r, pl := p.r, p.r.Plan
	date := runDate(r.now())
	if p.resume != nil {
		date = runDate(p.resume.StartedAt)
	}
	outputs := map[string]map[string]string{}
	byName := map[string]*Decision{}
	var out []*Decision
	for _, name := range pl.Order() {
		st := pl.Stages[name]
		var d *Decision
		if pre := p.preset[name]; pre != nil {
			d = pre
		} else {
			var upstream []string
			for _, n := range st.Needs {
				if byName[n] != nil && byName[n].Action == ActRun {
					upstream = append(upstream, n)
				}
			}
			if len(upstream) > 0 {
				d = r.previewUpstream(ctx, st, outputs, date)
				switch {
				case p.forced[name]:
					d.Reasons = []string{ReasonSelected}
				case p.opts.NoCache:
					d.Reasons = []string{ReasonNoCache}
				default:
					d.Reasons = append([]string{"upstream " + strings.Join(upstream, ", ") + " will run"}, cache.Reasons(d.Changes)...)
				}
			} else if params, err := r.render(st, outputs, "", date); err != nil {
				d = &Decision{Stage: name, Action: ActRun, Reasons: []string{ReasonRunID}}
				if !usesRunID(st) {
					d.Reasons = []string{err.Error()}
				}
			} else {
				d = r.decide(ctx, st, params, decideOpts{forced: p.forced[name], noCache: p.opts.NoCache})
			}
			if d.Action == ActRun {
				d.Reasons = p.resumeReasons(name, d.Reasons)
			}
		}
		if d.Action != ActRun && d.Action != ActExcluded {
			outputs[name] = d.Outputs
		}
		byName[name] = d
		out = append(out, d)
	}
	return out
}

// previewUpstream diffs a stage whose upstream will run against its last
// entry, leaving out parameters that wait for upstream outputs.
func (r *Runner) previewUpstream(ctx context.Context, st *plan.Stage, outputs map[string]map[string]string, date string) *Decision {
	d := &Decision{Stage: st.Name, Action: ActRun}
	params, err := st.RenderParams(func(ref spec.Ref) (string, bool) {
		if ref.Run == "date" {
			return date, true
		}
		if v, ok := outputs[ref.Stage][ref.Output]; ok && ref.Run == "" {
			return v, true
		}
		return ref.Text, true
	})
	if err != nil {
		return d
	}
	comps, _, err := r.components(ctx, st, params)
	if err != nil {
		return d
	}
	last, _ := r.Cache.Last(r.Plan.Pipeline.Name, r.Plan.Target.Name, st.Name)
	if last == nil {
		return d
	}
	for _, c := range cache.Diff(last.Components, comps) {
		if c.Reason == cache.ReasonParams && strings.Contains(c.Detail, "${") {
			continue // an upstream output, unknown until it runs
		}
		d.Changes = append(d.Changes, c)
	}
	return d
}

func usesRunID(st *plan.Stage) bool {
	for _, ref := range st.Refs() {
		if ref.Run == "id" {
			return true
		}
	}
	return false
}

var errNoStatus = errors.New("executor returned no status")
