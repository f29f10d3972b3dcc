package spec

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"cuelang.org/go/cue"

	"github.com/pipectl/pipectl/engine/dag"
	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/schedule"
)

var (
	// Names of pipelines, stages and targets become directory names, task
	// keys and reference segments.
	nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	// Path segments from parameters (data_name, data_version, output_name).
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	// Registered model names: Unity Catalog identifiers.
	modelNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

const (
	maxNameLen    = 63
	maxSegmentLen = 128
)

// CheckName returns why s cannot be a pipeline, stage or target name, or "".
func CheckName(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > maxNameLen:
		return fmt.Sprintf("is %d characters long, the limit is %d", len(s), maxNameLen)
	case !nameRE.MatchString(s):
		return "must start with a letter and contain only letters, digits, '_' and '-'"
	}
	return ""
}

// CheckSegment returns why s cannot be a path segment under a data or
// output root, or "". It rejects "/", "..", absolute paths and long names.
func CheckSegment(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > maxSegmentLen:
		return fmt.Sprintf("is %d characters long, the limit is %d", len(s), maxSegmentLen)
	case strings.Contains(s, "/") || strings.Contains(s, `\`):
		return "must be a single path segment (no '/')"
	case strings.Contains(s, ".."):
		return "must not contain '..'"
	case !segmentRE.MatchString(s):
		return "must start with a letter or digit and contain only letters, digits, '.', '_' and '-'"
	}
	return ""
}

// duration parses a duration field. One the schema accepted (#Duration;
// a schema error marks the field) but Go cannot hold is reported: it would
// silently mean "no timeout".
func (l *loader) duration(s string, raw cue.Value, path []string) time.Duration {
	d, err := time.ParseDuration(s)
	field := joinPath(path)
	if err != nil && s != "" && !l.hasError(field) {
		l.add(diag.Errorf(l.posAt(raw, path...), field, "%s: %q is too long", lastElem(path), s).
			WithFix("the longest duration is 2562047h (about 292 years); a stage timeout is hours, e.g. 6h"))
	}
	return d
}

func (l *loader) add(d diag.Diagnostic) {
	l.diags = append(l.diags, d)
	l.markError(d.Path)
}

// checkPipeline runs the checks CUE cannot express on one decoded pipeline.
func (l *loader) checkPipeline(p *Pipeline, raw cue.Value) {
	if why := CheckName(p.Name); why != "" {
		l.add(diag.Errorf(p.Pos, p.Path, "pipeline name %q %s", p.Name, why).
			WithFix("rename the pipeline, e.g. news-train"))
	}
	if p.Schedule != "" {
		if _, err := schedule.Parse(p.Schedule); err != nil {
			fix := `write minute hour day-of-month month day-of-week in UTC, e.g. "0 3 1 * *" (03:00 on the 1st)`
			if errors.Is(err, schedule.ErrNeverFires) {
				fix = "pick a day the listed months have (1-28 always exist), or add a month that has it"
			}
			l.add(diag.Errorf(l.posAt(raw, "pipelines", p.Name, "schedule"), p.Path+".schedule", "%v", err).WithFix("%s", fix))
		}
	}
	// scheduler always has its default; only a value the user wrote
	// without a schedule is a mistake (it would schedule nothing).
	if p.Schedule == "" && raw.LookupPath(cue.MakePath(cue.Str("pipelines"), cue.Str(p.Name), cue.Str("scheduler"))).Exists() {
		l.add(diag.Errorf(l.posAt(raw, "pipelines", p.Name, "scheduler"), p.Path+".scheduler",
			"pipeline %q sets scheduler %q but has no schedule: there is nothing to trigger", p.Name, p.Scheduler).
			WithFix(`add schedule: "MIN HOUR DOM MON DOW" (UTC), e.g. "0 6 * * *", or remove scheduler`))
	}
	l.checkStages(p, raw)
	l.checkTargets(p, raw)
	l.warnSecrets(p, raw)
}

func (l *loader) checkStages(p *Pipeline, raw cue.Value) {
	if len(p.Stages) == 0 && !l.hasError(p.Path+".stages") {
		l.add(diag.Errorf(p.Pos, p.Path+".stages", "pipeline %q has no stages", p.Name).
			WithFix("add stages: { data: { type: \"data\", params: {...} } }"))
		return
	}
	lower := map[string]string{}
	for _, sn := range p.StageNames() {
		st := p.Stages[sn]
		if why := CheckName(sn); why != "" {
			l.add(diag.Errorf(st.Pos, st.Path, "stage name %q %s", sn, why).WithFix("rename the stage, e.g. train_lr"))
		}
		if other, ok := lower[strings.ToLower(sn)]; ok {
			l.add(diag.Errorf(st.Pos, st.Path, "stage names %q and %q differ only in case", other, sn).
				WithFix("rename one: logs and task keys would collide on case-insensitive systems"))
		}
		lower[strings.ToLower(sn)] = sn
		l.checkNotebook(st, raw)
		for i, n := range st.Needs {
			np := fmt.Sprintf("%s.needs.%d", st.Path, i)
			switch {
			case n == sn:
				l.add(diag.Errorf(l.posAt(raw, splitPath(np)...), np, "stage %q needs itself", sn).WithFix("remove it from needs"))
			case p.Stages[n] == nil:
				l.add(diag.Errorf(l.posAt(raw, splitPath(np)...), np, "stage %q needs unknown stage %q", sn, n).
					WithFix("known stages: %s", strings.Join(p.StageNames(), ", ")))
			}
		}
		l.checkStageLists(p, st, raw)
		l.checkStageListsAgree(p, st, raw)
		l.checkRefs(p, st, st.Params, st.ParamPos, st.Path+".params")
	}
	if l.hasError(p.Path + ".stages") {
		return
	}
	g := p.Graph(nil)
	if c := g.Cycle(); c != nil {
		first := p.Stages[c[0]]
		l.add(diag.Errorf(first.Pos, first.Path, "stages form a cycle: %s", strings.Join(c, " → ")).
			WithFix("remove one of these needs or references"))
	}
}

func (l *loader) checkNotebook(st *Stage, raw cue.Value) {
	path := st.Path + ".notebook"
	if st.Notebook == "" || l.hasError(path) {
		return
	}
	pos := l.posAt(raw, splitPath(path)...)
	if !pos.IsValid() {
		pos = st.Pos
	}
	nb := st.Notebook
	switch {
	case filepath.IsAbs(nb) || strings.HasPrefix(nb, "/"):
		l.add(diag.Errorf(pos, path, "notebook %q is an absolute path", nb).
			WithFix("name notebooks relative to the repository root, e.g. notebooks/train_model.py"))
	case slices.Contains(strings.Split(filepath.ToSlash(nb), "/"), ".."):
		l.add(diag.Errorf(pos, path, "notebook %q leaves the repository (..)", nb).
			WithFix("keep notebooks inside the repository"))
	case filepath.Ext(nb) != ".py":
		l.add(diag.Errorf(pos, path, "notebook %q is not a .py file", nb).
			WithFix("notebooks are Python files in Databricks source format"))
	default:
		if _, err := os.Stat(filepath.Join(l.opts.Root, nb)); err != nil {
			l.add(diag.Errorf(pos, path, "notebook %s does not exist", nb).
				WithFix("check the path: notebooks are relative to the project root (the working directory, or -C DIR)"))
		}
	}
}

// checkStageLists checks the parameters that list stages (#StageTypes
// stage_lists): each names a stage of the listed type, once.
func (l *loader) checkStageLists(p *Pipeline, st *Stage, raw cue.Value) {
	for _, param := range slices.Sorted(maps.Keys(st.StageLists)) {
		want := st.StageLists[param].Type
		names, _ := st.Params[param].([]any)
		seen := map[string]bool{}
		for i, c := range names {
			name, _ := c.(string)
			cp := fmt.Sprintf("%s.params.%s.%d", st.Path, param, i)
			pos := l.posAt(raw, splitPath(cp)...)
			other := p.Stages[name]
			switch {
			case other == nil:
				l.add(diag.Errorf(pos, cp, "%q is not a stage", name).
					WithFix("list %s stages: %s", want, strings.Join(p.stagesOfType(want), ", ")))
			case other.Type != want:
				l.add(diag.Errorf(pos, cp, "%q is a %s stage, not a %s stage", name, other.Type, want).
					WithFix("list %s stages: %s", want, strings.Join(p.stagesOfType(want), ", ")))
			case seen[name]:
				l.add(diag.Errorf(pos, cp, "%q is listed twice", name).WithFix("remove the repeat"))
			}
			seen[name] = true
		}
	}
}

// checkRefs checks every "${stages.X.outputs.Y}" in params.
func (l *loader) checkRefs(p *Pipeline, st *Stage, params map[string]any, pos map[string]diag.Pos, base string) {
	for _, k := range sortedKeys(params) {
		path := base + "." + k
		refs, errs := CollectRefs(params[k])
		for _, err := range errs {
			l.add(diag.Errorf(pos[k], path, "%v", err))
		}
		for _, r := range refs {
			l.checkRef(p, st, r, pos[k], path)
		}
	}
}

func (l *loader) checkRef(p *Pipeline, st *Stage, r Ref, pos diag.Pos, path string) {
	if r.Run != "" {
		return // parseRef accepts only known run fields
	}
	up := p.Stages[r.Stage]
	switch {
	case r.Stage == st.Name:
		l.add(diag.Errorf(pos, path, "%s refers to the stage's own output", r).
			WithFix("a stage can only use outputs of stages before it"))
	case up == nil:
		l.add(diag.Errorf(pos, path, "%s refers to unknown stage %q", r, r.Stage).
			WithFix("known stages: %s", strings.Join(p.StageNames(), ", ")))
	case !slices.Contains(up.Outputs, r.Output):
		fix := fmt.Sprintf("outputs of %s (%s): %s", r.Stage, up.Type, strings.Join(up.Outputs, ", "))
		if up.Type == TypeCustom && len(up.Outputs) == 0 {
			fix = fmt.Sprintf("declare the outputs of custom stage %s: outputs: [%q]", r.Stage, r.Output)
		}
		l.add(diag.Errorf(pos, path, "%s: stage %q has no output %q", r, r.Stage, r.Output).WithFix("%s", fix))
	}
}

func (p *Pipeline) stagesOfType(t string) []string {
	var out []string
	for _, n := range p.StageNames() {
		if p.Stages[n].Type == t {
			out = append(out, n)
		}
	}
	return out
}

// Graph returns the stage DAG: explicit needs, references to upstream
// outputs and stage lists. params, when given, replaces the
// parameters of the stages it names (a target's resolved parameters);
// unknown stage names are ignored here (checks report them).
func (p *Pipeline) Graph(params map[string]map[string]any) *dag.Graph {
	g := dag.New()
	names := p.StageNames()
	for _, n := range names {
		g.AddNode(n)
	}
	for _, n := range names {
		for _, dep := range p.Dependencies(n, params[n]) {
			// Self references and unknown stages are reported by the
			// checks; they are not edges.
			if p.Stages[dep] != nil && dep != n {
				g.AddEdge(dep, n)
			}
		}
	}
	return g
}

// Dependencies returns the stages that stage depends on, sorted: its needs,
// the stages its parameters reference and the stages its stage lists name.
// params overrides the stage's own parameters when non-nil.
func (p *Pipeline) Dependencies(stage string, params map[string]any) []string {
	st := p.Stages[stage]
	if st == nil {
		return nil
	}
	if params == nil {
		params = st.Params
	}
	deps := slices.Clone(st.Needs)
	refs, _ := CollectRefs(params)
	for _, r := range refs {
		if r.Stage != "" {
			deps = append(deps, r.Stage)
		}
	}
	for param := range st.StageLists {
		if names, ok := params[param].([]any); ok {
			for _, c := range names {
				if s, ok := c.(string); ok {
					deps = append(deps, s)
				}
			}
		}
	}
	slices.Sort(deps)
	return slices.Compact(deps)
}

func (l *loader) checkTargets(p *Pipeline, raw cue.Value) {
	if len(p.Targets) == 0 {
		if !l.hasError(p.Path + ".targets") {
			l.add(diag.Errorf(p.Pos, p.Path+".targets", "pipeline %q has no targets", p.Name).
				WithFix(`add targets: local: executor: "local"`))
		}
		return
	}
	if p.Targets[p.DefaultTarget] == nil {
		pos := l.posAt(raw, "pipelines", p.Name, "default_target")
		l.add(diag.Errorf(pos, p.Path+".default_target", "default target %q is not a target of %s", p.DefaultTarget, p.Name).
			WithFix("set default_target to one of %s", strings.Join(p.TargetNames(), ", ")))
	}
	for _, tn := range p.TargetNames() {
		t := p.Targets[tn]
		if why := CheckName(tn); why != "" {
			l.add(diag.Errorf(t.Pos, t.Path, "target name %q %s", tn, why).WithFix("rename the target, e.g. staging"))
		}
		l.checkExecutor(t.Executor, l.posAt(raw, "pipelines", p.Name, "targets", tn, "executor"), t.Path+".executor")
		l.checkTargetConfig(p, t, raw)
		for _, sn := range sortedKeys(t.Stages) {
			o := t.Stages[sn]
			if p.Stages[sn] == nil {
				l.add(diag.Errorf(o.Pos, o.Path, "target %q overrides unknown stage %q", tn, sn).
					WithFix("known stages: %s", strings.Join(p.StageNames(), ", ")))
				continue
			}
			if o.Executor != "" {
				l.checkExecutor(o.Executor, l.posAt(raw, splitPath(o.Path+".executor")...), o.Path+".executor")
			}
			l.checkRefs(p, p.Stages[sn], o.Params, o.ParamPos, o.Path+".params")
		}
		for _, sn := range p.StageNames() {
			st := p.Stages[sn]
			if st.Executor != "" && tn == p.TargetNames()[0] {
				l.checkExecutor(st.Executor, l.posAt(raw, splitPath(st.Path+".executor")...), st.Path+".executor")
			}
			exec := p.StageExecutor(tn, sn)
			if exec == ExecutorDatabricks && t.Configs["databricks"] == nil && !l.hasError(t.Path) {
				l.add(diag.Errorf(t.Pos, t.Path+".databricks", "stage %q runs on databricks but target %q has no databricks config", sn, tn).
					WithFix("add databricks: {host: ..., workspace_root: ..., catalog: ..., schema: ..., volume: ..., experiment_root: ...} to the target"))
			}
			l.checkStageOnTarget(p, t, st)
		}
	}
}

// StageExecutor returns the executor that runs stage on target: the
// target's override, the stage's, or the target's executor.
func (p *Pipeline) StageExecutor(target, stage string) string {
	t, st := p.Targets[target], p.Stages[stage]
	if t == nil || st == nil {
		return ""
	}
	if o := t.Stages[stage]; o != nil && o.Executor != "" {
		return o.Executor
	}
	if st.Executor != "" {
		return st.Executor
	}
	return t.Executor
}

func (l *loader) checkExecutor(name string, pos diag.Pos, path string) {
	if name == "" || l.hasError(path) {
		return
	}
	known := name == ExecutorLocal || name == ExecutorDatabricks
	if !known && l.opts.Executors != nil {
		known = l.opts.Executors(name)
	}
	if known {
		return
	}
	fix := fmt.Sprintf("use local or databricks, or install the plugin binary pipectl-executor-%s in .pipectl/plugins, ~/.pipectl/plugins or PATH", name)
	if l.opts.ExecutorHint != "" {
		fix = l.opts.ExecutorHint
	}
	l.add(diag.Errorf(pos, path, "unknown executor %q", name).WithFix("%s", fix))
}

func (l *loader) checkTargetConfig(p *Pipeline, t *Target, raw cue.Value) {
	db := t.Configs["databricks"]
	if db == nil || l.hasError(t.Path+".databricks") {
		return
	}
	var cfg struct {
		Host string `json:"host"`
		// Neither host nor profile is fine: the host then comes from
		// DATABRICKS_HOST (a GitHub environment variable per target).
		Profile string `json:"profile"`
		Catalog string `json:"catalog"`
		Schema  string `json:"schema"`
		Volume  string `json:"volume"`
		PerUser bool   `json:"per_user"`
	}
	_ = unmarshalJSON(db, &cfg)
	if cfg.PerUser && t.Mode == "production" {
		fp := t.Path + ".databricks.per_user"
		l.add(diag.Errorf(l.posAt(raw, splitPath(fp)...), fp, "production target %q cannot be per_user: a production job belongs to no developer", t.Name).
			WithFix("remove per_user from %s, or set mode: \"development\"", t.Name))
	}
	if cfg.Host != "" && cfg.Profile != "" {
		pos := l.posAt(raw, "pipelines", p.Name, "targets", t.Name, "databricks", "profile")
		l.add(diag.Errorf(pos, t.Path+".databricks.profile", "target %q names both a host and a profile", t.Name).
			WithFix("keep one: the profile names its host, or drop the profile and authenticate from the environment"))
	}
	for _, f := range []struct{ name, val string }{{"catalog", cfg.Catalog}, {"schema", cfg.Schema}, {"volume", cfg.Volume}} {
		if f.val != "" && !modelNameRE.MatchString(f.val) {
			fp := t.Path + ".databricks." + f.name
			l.add(diag.Errorf(l.posAt(raw, splitPath(fp)...), fp, "%s %q is not a Unity Catalog name", f.name, f.val).
				WithFix("use letters, digits and underscores"))
		}
	}
}

// checkStageOnTarget resolves a stage's parameters on a target and checks
// them; the same problem seen on several targets is reported once.
func (l *loader) checkStageOnTarget(p *Pipeline, t *Target, st *Stage) {
	// Any error inside the stage (a typo in a field, a wrong type) makes
	// its parameters meaningless to check again.
	if l.hasError(st.Path) {
		return
	}
	if o := t.Stages[st.Name]; o != nil && l.hasError(o.Path) {
		return
	}
	_, ds := p.resolveParams(l.schema, t.Name, st.Name, nil)
	for _, d := range ds {
		l.add(d)
	}
	l.checkTargetInputs(p, t, st)
}

func splitPath(p string) []string { return strings.Split(p, ".") }
