package spec

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"

	"github.com/pipectl/pipectl/schemas"
)

// schemaDir prefixes schema file names in positions, so that diagnostics
// can tell schema positions from the user's.
const schemaDir = "<pipectl>/schemas"

// Schema is the compiled set of embedded schemas. It is safe for concurrent
// use: CUE values are immutable, and the context is guarded.
type Schema struct {
	mu    sync.Mutex
	ctx   *cue.Context
	value cue.Value
	// resolved memoizes resolveParamsLocked by stage type and parameters:
	// a spec resolves the same parameters again for every target and every
	// pipeline that shares a stage (52 calls, 18 distinct, for specs/).
	resolved map[string]resolvedParams
	// fixes and missingFixes map a stage parameter's name to the fix its
	// schema field declares, @pipectl(fix="...") for an invalid value and
	// @pipectl(missing="...") for a missing one.
	fixes, missingFixes map[string]string
	// keyed holds the keyed parameters by parameters definition and name.
	keyed map[string]map[string]keyedParam
}

// keyedParam is a parameter whose allowed names depend on a sibling
// parameter, as its schema field declares with
// @pipectl(keys="#Table", by="sibling", noun="..."): the names are those of
// #Table.<sibling's value> (e.g. a model's parameters, by its type).
type keyedParam struct {
	keys, by, noun string
}

// keyedBy words an unknown name in a keyed parameter: "unknown <noun> for
// <value>". The zero value words nothing.
type keyedBy struct {
	noun, value string
}

// resolvedParams is a result of resolveParamsLocked: the parameters as
// JSON, or the issues.
type resolvedParams struct {
	json   []byte
	issues []ParamIssue
}

// result returns a fresh copy, for callers own what they get.
func (r resolvedParams) result() (map[string]any, []ParamIssue) {
	if len(r.issues) > 0 {
		return nil, slices.Clone(r.issues)
	}
	var out map[string]any
	if err := unmarshalJSON(r.json, &out); err != nil {
		return nil, []ParamIssue{{Summary: err.Error()}}
	}
	return out, nil
}

var (
	schemaOnce sync.Once
	theSchema  *Schema
	schemaErr  error
)

// LoadSchema compiles the embedded schemas once per process.
func LoadSchema() (*Schema, error) {
	schemaOnce.Do(func() {
		theSchema, schemaErr = compileSchema(cuecontext.New(), schemas.FS)
	})
	return theSchema, schemaErr
}

func compileSchema(ctx *cue.Context, fsys fs.FS) (*Schema, error) {
	names, err := fs.Glob(fsys, "*.cue")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	inst := build.NewContext().NewInstance(schemaDir, nil)
	for _, name := range names {
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(path.Join(schemaDir, name), src, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("embedded schema: %w", err)
		}
		if err := inst.AddSyntax(f); err != nil {
			return nil, fmt.Errorf("embedded schema: %w", err)
		}
	}
	v := ctx.BuildInstance(inst)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("embedded schema: %w", err)
	}
	s := &Schema{ctx: ctx, value: v}
	if err := s.readFieldFixes(); err != nil {
		return nil, fmt.Errorf("embedded schema: %w", err)
	}
	return s, nil
}

// readFieldFixes collects the fixes the stage types' parameters declare
// in @pipectl(fix="...") and @pipectl(missing="..."), and their keyed
// parameters. Diagnostics look fixes up by field name, so one name has one
// text across stage types.
func (s *Schema) readFieldFixes() error {
	s.fixes, s.missingFixes = map[string]string{}, map[string]string{}
	s.keyed = map[string]map[string]keyedParam{}
	for _, st := range s.StageTypes() {
		def, ok := s.paramsDef(st)
		if !ok {
			continue
		}
		it, err := s.def(def).Fields(cue.Optional(true))
		if err != nil {
			continue
		}
		for it.Next() {
			a := it.Value().Attribute("pipectl")
			if a.Err() != nil {
				continue
			}
			name := it.Selector().Unquoted()
			if keys, ok, _ := a.Lookup(0, "keys"); ok {
				by, _, _ := a.Lookup(0, "by")
				noun, _, _ := a.Lookup(0, "noun")
				if by == "" || noun == "" {
					return fmt.Errorf("%s.%s: @pipectl(keys=...) needs by= and noun=", def, name)
				}
				if s.keyed[def] == nil {
					s.keyed[def] = map[string]keyedParam{}
				}
				s.keyed[def][name] = keyedParam{keys: keys, by: by, noun: noun}
			}
			for key, table := range map[string]map[string]string{"fix": s.fixes, "missing": s.missingFixes} {
				text, found, err := a.Lookup(0, key)
				if err != nil {
					return fmt.Errorf("%s.%s: @pipectl(%s): %w", def, name, key, err)
				}
				if !found {
					continue
				}
				if prev, ok := table[name]; ok && prev != text {
					return fmt.Errorf("%s.%s: @pipectl(%s) differs from another stage type's %s", def, name, key, name)
				}
				table[name] = text
			}
		}
	}
	return nil
}

// def returns a schema definition by path, e.g. "#DataParams".
func (s *Schema) def(p string) cue.Value {
	return s.value.LookupPath(cue.ParsePath(p))
}

// paramsDef returns the path of a stage type's parameters definition in
// the table of stage types (#StageTypes), or false for a type the table
// does not hold (custom).
func (s *Schema) paramsDef(stageType string) (string, bool) {
	if stageType == "" || stageType == TypeCustom || strings.ContainsAny(stageType, ".#\"\\") {
		return "", false
	}
	p := "#StageTypes." + stageType + ".params"
	return p, s.def(p).Exists()
}

// StageTypes returns the stage types of the table, sorted.
func (s *Schema) StageTypes() []string {
	return fieldNames(s.def("#StageTypes"))
}

// Outputs returns the outputs a stage type promises (#StageTypes).
func (s *Schema) Outputs(stageType string) []string {
	var out []string
	if _, ok := s.paramsDef(stageType); ok {
		_ = s.def("#StageTypes." + stageType + ".outputs").Decode(&out)
	}
	return out
}

// Inputs returns the parameters of a stage type that name inputs, per
// #StageTypes[type].inputs: parameter → kind (executor.InputFile,
// executor.InputModel).
func (s *Schema) Inputs(stageType string) map[string]string {
	out := map[string]string{}
	if _, ok := s.paramsDef(stageType); ok {
		_ = s.def("#StageTypes." + stageType + ".inputs").Decode(&out)
	}
	return out
}

// DefaultNotebook returns the default notebook of a stage type, or "".
func (s *Schema) DefaultNotebook(stageType string) string {
	if _, ok := s.paramsDef(stageType); !ok {
		return ""
	}
	nb, _ := s.def("#StageTypes." + stageType + ".notebook").String()
	return nb
}

// StageList says that a parameter lists other stages of one type: each is
// a dependency, and the notebook receives that stage's Output.
type StageList struct {
	Type   string `json:"type"`
	Output string `json:"output"`
	// Same names parameters every listed stage must give the same value,
	// each with the reason the schema states.
	Same map[string]string `json:"same,omitempty"`
}

// StageLists returns a stage type's stage-list parameters by name.
func (s *Schema) StageLists(stageType string) map[string]StageList {
	if _, ok := s.paramsDef(stageType); !ok {
		return nil
	}
	var out map[string]StageList
	_ = s.def("#StageTypes." + stageType + ".stage_lists").Decode(&out)
	return out
}

// segments returns a stage type's parameters that must be safe path
// segments.
func (s *Schema) segments(stageType string) []string {
	var out []string
	_ = s.def("#StageTypes." + stageType + ".segments").Decode(&out)
	return out
}

// keyedParam returns a stage type's keyed parameter name, if it is one.
func (s *Schema) keyedParam(stageType, name string) (keyedParam, bool) {
	def, ok := s.paramsDef(stageType)
	if !ok {
		return keyedParam{}, false
	}
	kp, ok := s.keyed[def][name]
	return kp, ok
}

// keyNames returns the names a keyed parameter allows when its sibling is
// value, sorted, or nil for a value the table does not hold.
func (s *Schema) keyNames(kp keyedParam, value string) []string {
	if value == "" {
		return nil
	}
	return fieldNames(s.def(kp.keys + "." + value))
}

// KeyedParamNames returns, for a stage type's keyed parameter, each value
// of its sibling parameter and the names it allows (e.g. train's
// model_params: model type → parameter names), or nil.
func (s *Schema) KeyedParamNames(stageType, name string) map[string][]string {
	kp, ok := s.keyedParam(stageType, name)
	if !ok {
		return nil
	}
	out := map[string][]string{}
	for _, value := range fieldNames(s.def(kp.keys)) {
		out[value] = s.keyNames(kp, value)
	}
	return out
}

func fieldNames(v cue.Value) []string {
	if !v.Exists() {
		return nil
	}
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	var names []string
	for it.Next() {
		names = append(names, it.Selector().Unquoted())
	}
	slices.Sort(names)
	return names
}

// ParamIssue is a problem with one stage parameter, found by ResolveParams.
type ParamIssue struct {
	// Field is the path inside params, e.g. "test_size" or
	// "model_params.C".
	Field   string
	Summary string
	Fix     string
}

// ResolveParams checks params (as written, after overrides) against the
// schema of stageType and returns them with defaults applied, as JSON
// values. Custom stages' params are returned as given.
func (s *Schema) ResolveParams(stageType string, params map[string]any) (map[string]any, []ParamIssue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resolveParamsLocked(stageType, params)
}

// resolveParamsLocked is ResolveParams with s.mu held.
func (s *Schema) resolveParamsLocked(stageType string, params map[string]any) (map[string]any, []ParamIssue) {
	defName, ok := s.paramsDef(stageType)
	if !ok {
		return params, nil
	}
	// Through JSON, not Encode: json.Number would become a CUE string.
	b, err := json.Marshal(params)
	if err != nil {
		return nil, []ParamIssue{{Summary: err.Error()}}
	}
	key := stageType + "\x00" + string(b)
	if r, ok := s.resolved[key]; ok {
		return r.result()
	}
	given := s.ctx.CompileBytes(b, cue.Filename("params.json"))
	if err := given.Err(); err != nil {
		return nil, []ParamIssue{{Summary: err.Error()}}
	}
	v := s.def(defName).Unify(given)
	r := resolvedParams{issues: s.issuesOf(v, given, defName, params)}
	if len(r.issues) == 0 {
		r.issues = s.checksOf(v, stageType)
	}
	if len(r.issues) == 0 {
		if r.json, err = v.MarshalJSON(); err != nil {
			return nil, []ParamIssue{{Summary: err.Error()}}
		}
	}
	if s.resolved == nil {
		s.resolved = map[string]resolvedParams{}
	}
	s.resolved[key] = r
	return r.result()
}

// issuesOf turns the errors of a parameters value into ParamIssues: CUE
// errors first, then missing required fields.
func (s *Schema) issuesOf(v, given cue.Value, defName string, givenParams map[string]any) []ParamIssue {
	var issues []ParamIssue
	valueAt := func(p []string) string {
		x := given.LookupPath(cue.MakePath(selectors(trimDef(p, defName))...))
		return syntaxOf(x)
	}
	for _, ce := range cueIssues(v.Validate(cue.All()), nil, valueAt) {
		ce.path = trimDef(ce.path, defName)
		field := joinPath(ce.path)
		var valid []string
		var keyed keyedBy
		kp, isKeyed := keyedParam{}, false
		if len(ce.path) == 2 {
			kp, isKeyed = s.keyed[defName][ce.path[0]]
		}
		switch {
		case len(ce.path) == 1:
			valid = fieldNames(s.def(defName))
		case isKeyed:
			value, _ := givenParams[kp.by].(string)
			valid, keyed = s.keyNames(kp, value), keyedBy{noun: kp.noun, value: value}
		case len(ce.path) == 2:
			// A struct the definition closes, e.g. a train stage's features.
			valid = fieldNames(s.def(defName + "." + ce.path[0]))
		}
		summary, fix := explain(ce, field, valid, keyed, s.fixes)
		issues = append(issues, ParamIssue{Field: field, Summary: summary, Fix: fix})
	}
	// CUE reports "field not allowed" only when nothing else is wrong:
	// name unknown keys ourselves so that every problem shows at once.
	issues = appendUnknownKeys(issues, "", givenParams, fieldNames(s.def(defName)), keyedBy{})
	// Structs the definition closes: keyed parameters (e.g. a train stage's
	// model_params), then the others (e.g. its features).
	for _, k := range sortedKeys(s.keyed[defName]) {
		kp := s.keyed[defName][k]
		m, ok := givenParams[k].(map[string]any)
		value, _ := givenParams[kp.by].(string)
		if !ok || value == "" {
			continue
		}
		if valid := s.keyNames(kp, value); valid != nil {
			issues = appendUnknownKeys(issues, k+".", m, valid, keyedBy{noun: kp.noun, value: value})
		}
	}
	for _, k := range sortedKeys(givenParams) {
		m, ok := givenParams[k].(map[string]any)
		if _, keyed := s.keyed[defName][k]; !ok || keyed {
			continue
		}
		if valid := fieldNames(s.def(defName + "." + k)); valid != nil {
			issues = appendUnknownKeys(issues, k+".", m, valid, keyedBy{})
		}
	}
	if len(issues) > 0 {
		return issues
	}
	for _, p := range missingFields(v, nil) {
		field := joinPath(p)
		issues = append(issues, ParamIssue{
			Field:   field,
			Summary: fmt.Sprintf("missing required parameter %s", field),
			Fix:     fmt.Sprintf("set params.%s", field),
		})
	}
	return issues
}

// trimDef removes the definition's path, e.g. #StageTypes.data.params,
// from the front of p.
func trimDef(p []string, def string) []string {
	d := strings.Split(def, ".")
	if len(p) >= len(d) && slices.Equal(p[:len(d)], d) {
		return p[len(d):]
	}
	return p
}

// checksOf returns the violations of the rules a stage type's table entry
// declares: its segments, and the #checks of its parameters definition,
// evaluated on the resolved parameters v.
func (s *Schema) checksOf(v cue.Value, stageType string) []ParamIssue {
	var out []ParamIssue
	for _, field := range s.segments(stageType) {
		val, err := v.LookupPath(cue.MakePath(cue.Str(field))).String()
		if err != nil || strings.Contains(val, "${") {
			continue
		}
		if why := CheckSegment(val); why != "" {
			out = append(out, ParamIssue{Field: field, Summary: fmt.Sprintf("%s %q %s", field, truncate(val), why),
				Fix: "use a simple name such as v1 or 2026-11"})
		}
	}
	var checks []struct {
		Field   string `json:"field"`
		Summary string `json:"summary"`
		Fix     string `json:"fix"`
	}
	_ = v.LookupPath(cue.MakePath(cue.Def("#checks"))).Decode(&checks)
	for _, c := range checks {
		out = append(out, ParamIssue{Field: c.Field, Summary: c.Summary, Fix: c.Fix})
	}
	return out
}

func decodeJSON(v cue.Value, out any) error {
	b, err := v.MarshalJSON()
	if err != nil {
		return err
	}
	return unmarshalJSON(b, out)
}

func unmarshalJSON(b []byte, out any) error {
	dec := json.NewDecoder(bytesReader(b))
	dec.UseNumber()
	return dec.Decode(out)
}

// IsStringParam reports whether a stage type's parameter takes only
// strings, so that a --set value for it is never read as a number.
func (s *Schema) IsStringParam(stageType, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	defName, ok := s.paramsDef(stageType)
	if !ok {
		return false
	}
	f := s.def(defName).LookupPath(cue.MakePath(cue.Str(key).Optional()))
	if !f.Exists() {
		f = s.def(defName).LookupPath(cue.MakePath(cue.Str(key)))
	}
	return f.Exists() && f.IncompleteKind() == cue.StringKind
}

// syntaxOf renders a concrete value as the user would have written it, or
// "" when it does not exist.
func syntaxOf(v cue.Value) string {
	if !v.Exists() {
		return ""
	}
	b, err := v.MarshalJSON()
	if err != nil {
		return ""
	}
	return string(b)
}

// appendUnknownKeys adds an "unknown field" issue for each key of given not
// in valid, unless an issue for that field exists already. keyed words the
// message in a keyed parameter.
func appendUnknownKeys(issues []ParamIssue, prefix string, given map[string]any, valid []string, keyed keyedBy) []ParamIssue {
	for _, k := range sortedKeys(given) {
		if slices.Contains(valid, k) {
			continue
		}
		field := prefix + k
		if slices.ContainsFunc(issues, func(is ParamIssue) bool { return is.Field == field }) {
			continue
		}
		path := []string{k}
		if prefix != "" {
			path = []string{strings.TrimSuffix(prefix, "."), k}
		}
		summary, fix := explain(cueIssue{path: path, kind: kindNotAllowed}, field, valid, keyed, nil) // unknown keys use no field fixes
		issues = append(issues, ParamIssue{Field: field, Summary: summary, Fix: fix})
	}
	return issues
}
