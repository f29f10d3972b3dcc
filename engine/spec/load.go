package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"

	"github.com/pipectl/pipectl/engine/diag"
)

// DefaultDir is where specs live, relative to the project root.
const DefaultDir = "specs"

// Options configure Load.
type Options struct {
	// Root is the project root; relative paths are resolved against it.
	// Empty means the working directory.
	Root string
	// Executors reports whether an executor name is available (built in or
	// an installed plugin). Nil accepts only the built-ins.
	Executors func(name string) bool
	// ExecutorHint explains, in an unknown-executor diagnostic, which
	// executors exist.
	ExecutorHint string
	// CheckInputs checks that the local input files of every target exist
	// (Pipeline.CheckInputs); validate sets it. Without it, plan and run
	// check only the target they run.
	CheckInputs bool
}

// loader carries one Load call's state.
type loader struct {
	opts   Options
	schema *Schema
	diags  diag.Diagnostics
	// errPaths are field paths that already have an error, so that later
	// checks do not report consequences of the same problem.
	errPaths []string
	project  *Project
	// current is the user's value of the package being checked.
	current cue.Value
	// defined is where each pipeline name was first defined; twice lists
	// names defined in two files (checkDefinedOnce).
	defined map[string]token.Pos
	twice   []string
}

// Load loads the spec packages at paths (directories, or .cue files loaded
// together) and returns the project with every diagnostic found. The project
// is nil only when nothing could be loaded; when diagnostics have errors the
// project must not be run.
func Load(paths []string, opts Options) (*Project, diag.Diagnostics) {
	if opts.Root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, diag.Diagnostics{diag.Errorf(diag.Pos{}, "", "cannot find the working directory: %v", err)}
		}
		opts.Root = wd
	}
	if len(paths) == 0 {
		paths = []string{DefaultDir}
	}
	s, err := LoadSchema()
	if err != nil {
		return nil, diag.Diagnostics{diag.Errorf(diag.Pos{}, "", "%v", err)}
	}
	l := &loader{opts: opts, schema: s, project: &Project{Root: opts.Root, Pipelines: map[string]*Pipeline{}}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, args := range l.groupArgs(paths) {
		l.loadInstance(args)
	}
	slices.Sort(l.project.Files)
	return l.project, l.diags.Sort()
}

// groupArgs turns command-line paths into load arguments: each directory on
// its own, .cue files grouped by directory (CUE loads files of one package
// together).
func (l *loader) groupArgs(paths []string) [][]string {
	var groups [][]string
	files := map[string][]string{}
	var fileDirs []string
	for _, p := range paths {
		abs := p
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(l.opts.Root, p)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			d := diag.Errorf(diag.Pos{File: abs}, "", "cannot read spec path %s: %v", p, unwrapPathErr(err))
			switch {
			case stderrors.Is(err, syscall.ELOOP):
				d = d.WithFix("a symbolic link points back to itself (a loop): remove it or point it at the spec directory")
			case p == DefaultDir:
				d = d.WithFix("run pipectl in the project root, or pass the spec directory or files as arguments")
			}
			l.diags = append(l.diags, d)
			continue
		}
		if fi.IsDir() {
			groups = append(groups, []string{abs})
			continue
		}
		if filepath.Ext(abs) != ".cue" {
			l.diags = append(l.diags, diag.Errorf(diag.Pos{File: abs}, "", "%s is not a .cue file", p).
				WithFix("pass .cue files or directories of them"))
			continue
		}
		dir := filepath.Dir(abs)
		if _, ok := files[dir]; !ok {
			fileDirs = append(fileDirs, dir)
		}
		files[dir] = append(files[dir], abs)
	}
	for _, d := range fileDirs {
		groups = append(groups, files[d])
	}
	return groups
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (l *loader) loadInstance(args []string) {
	// Load from the package's own directory: CUE names a directory outside
	// Dir by a relative import path it then refuses as non-canonical
	// ("./../x"), so a specs folder outside the project root would fail.
	dir := args[0]
	rel := []string{"."}
	if filepath.Ext(dir) == ".cue" {
		dir = filepath.Dir(dir)
		rel = rel[:0]
		for _, f := range args {
			rel = append(rel, "./"+filepath.Base(f))
		}
	}
	cfg := &load.Config{Dir: dir}
	insts := load.Instances(rel, cfg)
	for _, inst := range insts {
		if inst.Err != nil {
			l.addCUEError(inst.Err, nil, cue.Value{})
			continue
		}
		for _, f := range inst.BuildFiles {
			l.project.Files = append(l.project.Files, f.Filename)
		}
		if len(inst.BuildFiles) == 0 {
			l.diags = append(l.diags, diag.Errorf(diag.Pos{File: strings.Join(args, " ")}, "", "no .cue files found").
				WithFix("specs are CUE files with a top-level pipelines: {...}"))
			continue
		}
		l.checkDefinedOnce(inst)
		raw := l.schema.ctx.BuildInstance(inst)
		if err := raw.Err(); err != nil {
			// Syntax and reference errors: nothing more can be said.
			l.addCUEError(err, nil, raw)
			continue
		}
		unified := raw.Unify(l.schema.def("#Spec"))
		l.addCUEError(unified.Validate(cue.All()), []string{"#Spec"}, raw)
		l.current = raw
		l.reportUnknownFields(raw, nil)
		l.reportMissing(unified, raw)
		l.decodePipelines(unified, raw)
	}
}

// addCUEError turns CUE errors into diagnostics positioned in the user's
// files. strip is a leading path element to drop (the #Spec definition).
func (l *loader) addCUEError(err error, strip []string, raw cue.Value) {
	if err == nil {
		return
	}
	if l.addPathErrors(err) {
		return
	}
	fallback := func(p []string) token.Pos { return rawPos(raw, trimPrefix(p, strip)) }
	valueAt := func(p []string) string {
		if !raw.Exists() {
			return ""
		}
		return syntaxOf(raw.LookupPath(cue.MakePath(selectors(trimPrefix(p, strip))...)))
	}
	issues := cueIssues(err, fallback, valueAt)
	if len(issues) == 0 {
		// Errors without a path (syntax errors, load errors).
		for _, e := range errors.Errors(err) {
			l.diags = append(l.diags, diag.Errorf(toPos(e.Position()), "", "%s", message(e)))
		}
		return
	}
	for _, is := range issues {
		p := trimPrefix(is.path, strip)
		is.path = p
		field := joinPath(p)
		valid := l.validFields(raw, p)
		summary, fix := explain(is, field, valid, l.keyedAt(raw, p), l.schema.fixes)
		d := diag.Diagnostic{Severity: diag.Error, Pos: toPos(is.pos), Path: field, Summary: summary, Fix: fix}
		if !is.pos.IsValid() && len(p) == 0 {
			// A load or syntax error: CUE puts the position in the message.
			d.Pos = toPos(firstPos(err))
		}
		l.diags = append(l.diags, d)
		l.markError(field)
	}
}

// addPathErrors reports file-system errors met while loading (a symlink
// loop, a file that cannot be read) at the file they name, and reports
// whether err held only such errors.
func (l *loader) addPathErrors(err error) bool {
	var ds diag.Diagnostics
	for _, e := range errors.Errors(err) {
		var pe *fs.PathError
		if !stderrors.As(e, &pe) {
			return false
		}
		d := diag.Errorf(diag.Pos{File: pe.Path}, "", "cannot read %s: %v", filepath.Base(pe.Path), pe.Err)
		if stderrors.Is(pe.Err, syscall.ELOOP) {
			d = d.WithFix("a symbolic link points back to itself (a loop): remove it or point it at a file")
		}
		ds = append(ds, d)
	}
	l.diags = append(l.diags, ds...)
	return len(ds) > 0
}

func firstPos(err error) token.Pos {
	for _, e := range errors.Errors(err) {
		if e.Position().IsValid() {
			return e.Position()
		}
	}
	return token.NoPos
}

func trimPrefix(p, prefix []string) []string {
	if len(prefix) > 0 && len(p) >= len(prefix) && slices.Equal(p[:len(prefix)], prefix) {
		return p[len(prefix):]
	}
	return p
}

// validFields lists the fields the schema accepts in the struct that holds
// path's last element, for "unknown field" fixes.
func (l *loader) validFields(raw cue.Value, p []string) []string {
	if len(p) == 0 {
		return nil
	}
	parent := p[:len(p)-1]
	if kp, ok := l.keyedParamAt(raw, parent); ok {
		return l.schema.keyNames(kp, stringAt(raw, append(slices.Clone(parent[:len(parent)-1]), kp.by)))
	}
	if def := l.paramStructDef(raw, parent); def != "" {
		return fieldNames(l.schema.def(def))
	}
	def := schemaDefFor(parent)
	if def == "" {
		return nil
	}
	return fieldNames(l.schema.def(def))
}

// paramStructDef returns the schema path of the parameter at p
// (pipelines.P.stages.S.params.F) when the stage's type has it, e.g. a
// train stage's features, or "".
func (l *loader) paramStructDef(raw cue.Value, p []string) string {
	if len(p) != 6 || p[2] != "stages" || p[4] != "params" {
		return ""
	}
	def, ok := l.schema.paramsDef(stringAt(raw, append(slices.Clone(p[:4]), "type")))
	if !ok {
		return ""
	}
	return def + "." + p[5]
}

// schemaDefFor maps a spec path to the schema definition that shapes it.
func schemaDefFor(p []string) string {
	switch {
	case len(p) == 0:
		return "#Spec"
	case len(p) == 2 && p[0] == "pipelines":
		return "#Pipeline"
	case len(p) == 4 && p[2] == "stages":
		return "#Stage"
	case len(p) == 4 && p[2] == "targets":
		return "#Target"
	case len(p) == 5 && p[2] == "targets" && p[4] == "local":
		return "#LocalTarget"
	case len(p) == 5 && p[2] == "targets" && p[4] == "databricks":
		return "#DatabricksTarget"
	case len(p) == 6 && p[2] == "targets" && p[4] == "stages":
		return "#StageOverride"
	}
	return ""
}

// keyedParamAt reports whether p is a stage's keyed parameter
// (pipelines.P.stages.S.params.F, keyedParam), per the stage's type in raw.
func (l *loader) keyedParamAt(raw cue.Value, p []string) (keyedParam, bool) {
	if len(p) != 6 || p[2] != "stages" || p[4] != "params" {
		return keyedParam{}, false
	}
	return l.schema.keyedParam(stringAt(raw, append(slices.Clone(p[:4]), "type")), p[5])
}

// keyedAt words an issue at p when p is a field of a keyed parameter.
func (l *loader) keyedAt(raw cue.Value, p []string) keyedBy {
	if len(p) == 0 {
		return keyedBy{}
	}
	parent := p[:len(p)-1]
	kp, ok := l.keyedParamAt(raw, parent)
	if !ok {
		return keyedBy{}
	}
	return keyedBy{noun: kp.noun, value: stringAt(raw, append(slices.Clone(parent[:len(parent)-1]), kp.by))}
}

// stringAt returns the string at p in v, or "".
func stringAt(v cue.Value, p []string) string {
	s, _ := v.LookupPath(cue.MakePath(selectors(p)...)).String()
	return s
}

// reportUnknownFields walks the user's value and reports fields that the
// schema does not know. CUE reports "field not allowed" only when nothing
// else is wrong, so a typo next to a range error would go unseen.
func (l *loader) reportUnknownFields(raw cue.Value, p []string) {
	it, err := raw.Fields()
	if err != nil {
		return
	}
	valid, keyed := l.allowedFields(raw, p)
	for it.Next() {
		name := it.Selector().Unquoted()
		child := append(slices.Clone(p), name)
		field := joinPath(child)
		if valid != nil && !slices.Contains(valid, name) {
			if !l.hasError(field) {
				summary, fix := explain(cueIssue{path: child, kind: kindNotAllowed}, field, valid, keyed, l.schema.fixes)
				pos := it.Value().Pos()
				if !isUserPos(pos) {
					pos = rawPos(raw, nil)
				}
				l.add(diag.Diagnostic{Severity: diag.Error, Pos: toPos(pos), Path: field, Summary: summary, Fix: fix})
			}
			continue
		}
		if it.Value().IncompleteKind() == cue.StructKind {
			l.reportUnknownFields(it.Value(), child)
		}
	}
}

// allowedFields returns the field names the schema allows in the struct at
// p (nil when any name is allowed, e.g. maps of stages), and how to word
// an unknown one when p is a stage's keyed parameter.
func (l *loader) allowedFields(v cue.Value, p []string) ([]string, keyedBy) {
	n := len(p)
	if kp, ok := l.keyedParamAt(l.current, p); ok {
		value := l.stageField(p[:4], "params", kp.by)
		return l.schema.keyNames(kp, value), keyedBy{noun: kp.noun, value: value}
	}
	if def := l.paramStructDef(l.current, p); def != "" {
		return fieldNames(l.schema.def(def)), keyedBy{}
	}
	if n == 5 && p[2] == "stages" && p[4] == "params" {
		if def, ok := l.schema.paramsDef(l.stageField(p[:4], "type")); ok {
			return fieldNames(l.schema.def(def)), keyedBy{}
		}
		return nil, keyedBy{}
	}
	if def := schemaDefFor(p); def != "" {
		return fieldNames(l.schema.def(def)), keyedBy{}
	}
	return nil, keyedBy{}
}

// stageField reads a string field of the stage at stagePath from the value
// being checked.
func (l *loader) stageField(stagePath []string, field ...string) string {
	v := l.current.LookupPath(cue.MakePath(selectors(append(slices.Clone(stagePath), field...))...))
	s, _ := v.String()
	return s
}

// reportMissing adds a diagnostic for each required field without a value.
func (l *loader) reportMissing(unified, raw cue.Value) {
	for _, p := range missingFields(unified, nil) {
		field := joinPath(p)
		if l.hasError(field) {
			continue
		}
		name := lastElem(p)
		d := diag.Errorf(toPos(rawPos(raw, p)), field, "missing required field %q", name)
		if fix, ok := missingFix[name]; ok {
			d.Fix = fix
		} else if fix, ok := l.schema.missingFixes[name]; ok {
			d.Fix = fix
		} else if choices := stringChoices(unified.LookupPath(cue.MakePath(selectors(p)...))); len(choices) > 0 {
			d.Fix = fmt.Sprintf("choose %s", strings.Join(choices, ", "))
		} else {
			d.Fix = fmt.Sprintf("add %s: ... here", name)
		}
		l.diags = append(l.diags, d)
		l.markError(field)
	}
}

// missingFix holds the fixes for missing fields of pipectl's own config;
// stage parameters declare theirs in the schemas, @pipectl(missing="...").
var missingFix = map[string]string{
	"description":     `add description: "what this pipeline does"`,
	"executor":        `add executor: "local" (or "databricks", or a plugin's name)`,
	"notebook":        `custom stages name their notebook, e.g. notebook: "notebooks/my_step.py"`,
	"workspace_root":  `add workspace_root: "/Workspace/Shared/pipectl"`,
	"experiment_root": `add experiment_root: "/Shared/pipectl/<target>"`,
	"catalog":         "name the Unity Catalog catalog that holds the registered models",
	"schema":          "name the Unity Catalog schema that holds the registered models",
	"volume":          "name the UC Volume (under catalog.schema) that holds data versions",
}

// stringChoices returns the strings a field of the schema may take when its
// type is a disjunction of strings (e.g. a model type), in schema order.
func stringChoices(v cue.Value) []string {
	op, args := v.Expr()
	if op != cue.OrOp {
		return nil
	}
	var out []string
	for _, a := range args {
		s, err := a.String()
		if err != nil {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// rawPos returns the position of the deepest existing prefix of p in the
// user's value.
func rawPos(raw cue.Value, p []string) token.Pos {
	if !raw.Exists() {
		return token.NoPos
	}
	for i := len(p); i >= 0; i-- {
		v := raw.LookupPath(cue.MakePath(selectors(p[:i])...))
		if !v.Exists() {
			continue
		}
		// Point at the value as written (Pos may give the label or the
		// value depending on how the field was declared).
		if n := v.Source(); n != nil {
			if f, ok := n.(*ast.Field); ok {
				n = f.Value
			}
			if pos := n.Pos(); isUserPos(pos) {
				return pos
			}
		}
		if pos := v.Pos(); isUserPos(pos) {
			return pos
		}
	}
	return token.NoPos
}

// defIdent matches a CUE definition's name. A quoted label such as
// pipelines: "#00000" is a plain field: cue.Def panics on it.
var defIdent = regexp.MustCompile(`^#[A-Za-z_$][A-Za-z0-9_$]*$`)

func selectors(p []string) []cue.Selector {
	sels := make([]cue.Selector, 0, len(p))
	for _, e := range p {
		if n, err := strconv.Atoi(e); err == nil && n >= 0 {
			sels = append(sels, cue.Index(n))
		} else if defIdent.MatchString(e) {
			sels = append(sels, cue.Def(e))
		} else {
			sels = append(sels, cue.Str(e))
		}
	}
	return sels
}

func (l *loader) markError(path string) { l.errPaths = append(l.errPaths, path) }

// hasError reports whether path, a parent or a child of it has an error.
func (l *loader) hasError(path string) bool {
	for _, e := range l.errPaths {
		if e == path || strings.HasPrefix(path, e+".") || strings.HasPrefix(e, path+".") {
			return true
		}
	}
	return false
}

// posAt returns the user's position of a field path.
func (l *loader) posAt(raw cue.Value, p ...string) diag.Pos {
	return toPos(rawPos(raw, p))
}

// decodePipelines reads every pipeline of one package into Go values and
// checks it.
func (l *loader) decodePipelines(unified, raw cue.Value) {
	it, err := unified.LookupPath(cue.ParsePath("pipelines")).Fields()
	if err != nil {
		return
	}
	for it.Next() {
		name := it.Selector().Unquoted()
		pv := it.Value()
		path := "pipelines." + name
		if prev, ok := l.project.Pipelines[name]; ok {
			if slices.Contains(l.twice, name) {
				continue // reported by checkDefinedOnce, with both files
			}
			l.diags = append(l.diags, diag.Errorf(l.posAt(raw, "pipelines", name), path,
				"pipeline %q is defined twice", name).
				WithDetail("first defined at %s", prev.Pos).
				WithFix("pipeline names are unique across every spec package: rename one"))
			continue
		}
		p := l.decodePipeline(name, pv, raw)
		l.project.Pipelines[name] = p
		l.checkPipeline(p, raw)
	}
}

func (l *loader) decodePipeline(name string, pv, raw cue.Value) *Pipeline {
	base := []string{"pipelines", name}
	p := &Pipeline{
		Name:          name,
		Description:   str(pv, "description"),
		Schedule:      str(pv, "schedule"),
		Scheduler:     str(pv, "scheduler"),
		DefaultTarget: str(pv, "default_target"),
		Targets:       map[string]*Target{},
		Stages:        map[string]*Stage{},
		Path:          joinPath(base),
		Pos:           l.posAt(raw, base...),
		root:          l.opts.Root,
	}
	_ = pv.LookupPath(cue.ParsePath("tags")).Decode(&p.Tags)
	if b, err := pv.MarshalJSON(); err == nil {
		sum := sha256.Sum256(b)
		p.Hash = hex.EncodeToString(sum[:])
	}
	if it, err := pv.LookupPath(cue.ParsePath("stages")).Fields(); err == nil {
		for it.Next() {
			sn := it.Selector().Unquoted()
			p.Stages[sn] = l.decodeStage(sn, it.Value(), raw, append(slices.Clone(base), "stages", sn))
		}
	}
	if it, err := pv.LookupPath(cue.ParsePath("targets")).Fields(); err == nil {
		for it.Next() {
			tn := it.Selector().Unquoted()
			p.Targets[tn] = l.decodeTarget(tn, it.Value(), raw, append(slices.Clone(base), "targets", tn))
		}
	}
	return p
}

func (l *loader) decodeStage(name string, sv, raw cue.Value, path []string) *Stage {
	s := &Stage{
		Name:     name,
		Type:     str(sv, "type"),
		Notebook: str(sv, "notebook"),
		Executor: str(sv, "executor"),
		Retries:  int(num(sv, "retries")),
		Path:     joinPath(path),
		Pos:      l.posAt(raw, path...),
		ParamPos: map[string]diag.Pos{},
	}
	_ = sv.LookupPath(cue.ParsePath("needs")).Decode(&s.Needs)
	s.Timeout = l.duration(str(sv, "timeout"), raw, append(slices.Clone(path), "timeout"))
	s.RetryBackoff = l.duration(str(sv, "retry_backoff"), raw, append(slices.Clone(path), "retry_backoff"))
	if s.Type == TypeCustom {
		_ = sv.LookupPath(cue.ParsePath("outputs")).Decode(&s.Outputs)
	} else {
		s.Outputs = l.schema.Outputs(s.Type)
		s.StageLists = l.schema.StageLists(s.Type)
	}
	s.Inputs = l.schema.Inputs(s.Type)
	var declared map[string]string
	_ = sv.LookupPath(cue.ParsePath("inputs")).Decode(&declared)
	maps.Copy(s.Inputs, declared)
	// Parameters as written, without defaults: targets and --set replace
	// them key by key before defaults apply.
	rawParams := raw.LookupPath(cue.MakePath(selectors(append(slices.Clone(path), "params"))...))
	if !rawParams.Exists() {
		s.Params = map[string]any{}
		return s
	}
	if err := decodeJSON(rawParams, &s.Params); err != nil {
		// Not concrete without the schema (e.g. it refers to defaults):
		// take the unified value.
		_ = decodeJSON(sv.LookupPath(cue.ParsePath("params")), &s.Params)
	}
	if s.Params == nil {
		s.Params = map[string]any{}
	}
	for k := range s.Params {
		s.ParamPos[k] = l.posAt(raw, append(slices.Clone(path), "params", k)...)
	}
	return s
}

func (l *loader) decodeTarget(name string, tv, raw cue.Value, path []string) *Target {
	t := &Target{
		Name:     name,
		Executor: str(tv, "executor"),
		Mode:     str(tv, "mode"),
		Configs:  map[string]json.RawMessage{},
		Stages:   map[string]*StageOverride{},
		Path:     joinPath(path),
		Pos:      l.posAt(raw, path...),
	}
	_ = tv.LookupPath(cue.ParsePath("pass_env")).Decode(&t.PassEnv)
	for _, block := range []string{"local", "databricks", "config"} {
		bv := tv.LookupPath(cue.ParsePath(block))
		if !bv.Exists() {
			continue
		}
		if b, err := bv.MarshalJSON(); err == nil {
			t.Configs[block] = b
		}
	}
	if it, err := tv.LookupPath(cue.ParsePath("stages")).Fields(); err == nil {
		for it.Next() {
			sn := it.Selector().Unquoted()
			ov := it.Value()
			opath := append(slices.Clone(path), "stages", sn)
			o := &StageOverride{
				Executor: str(ov, "executor"),
				Path:     joinPath(opath),
				Pos:      l.posAt(raw, opath...),
				ParamPos: map[string]diag.Pos{},
			}
			if r := ov.LookupPath(cue.ParsePath("retries")); r.Exists() {
				if n, err := r.Int64(); err == nil {
					v := int(n)
					o.Retries = &v
				}
			}
			if t := str(ov, "timeout"); t != "" {
				if d := l.duration(t, raw, append(slices.Clone(opath), "timeout")); d > 0 {
					o.Timeout = &d
				}
			}
			rp := raw.LookupPath(cue.MakePath(selectors(append(slices.Clone(opath), "params"))...))
			if rp.Exists() {
				_ = decodeJSON(rp, &o.Params)
				for k := range o.Params {
					o.ParamPos[k] = l.posAt(raw, append(slices.Clone(opath), "params", k)...)
				}
			}
			t.Stages[sn] = o
		}
	}
	return t
}

func str(v cue.Value, field string) string {
	f := v.LookupPath(cue.ParsePath(field))
	if d, ok := f.Default(); ok {
		f = d
	}
	s, _ := f.String()
	return s
}

func num(v cue.Value, field string) int64 {
	f := v.LookupPath(cue.ParsePath(field))
	if d, ok := f.Default(); ok {
		f = d
	}
	n, _ := f.Int64()
	return n
}
