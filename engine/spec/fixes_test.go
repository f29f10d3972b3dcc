package spec

import (
	"strings"
	"testing"
	"testing/fstest"

	"cuelang.org/go/cue/cuecontext"
	"github.com/google/go-cmp/cmp"
)

// TestFieldFixesFromSchema checks that the fixes of stage parameters come
// from their schema fields' @pipectl(fix=...) and @pipectl(missing=...).
func TestFieldFixesFromSchema(t *testing.T) {
	fsys := fstest.MapFS{"s.cue": {Data: []byte(`package pipectl
#StageTypes: a: params: {
	size:  number & <1 @pipectl(fix="keep size below 1")
	owner: string @pipectl(missing="name the owner")
}
`)}}
	s, err := compileSchema(cuecontext.New(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if got := fieldFix("size", s.fixes); got != "keep size below 1" {
		t.Errorf("fix of size = %q", got)
	}
	if got := s.missingFixes["owner"]; got != "name the owner" {
		t.Errorf("missing fix of owner = %q", got)
	}
	if got := fieldFix("timeout", s.fixes); got != boundFix["timeout"] {
		t.Errorf("pipectl's own fields keep their fixes: timeout = %q", got)
	}
}

// TestFieldFixesConflict checks that one parameter name cannot declare two
// fixes: diagnostics look fixes up by name.
func TestFieldFixesConflict(t *testing.T) {
	fsys := fstest.MapFS{"s.cue": {Data: []byte(`package pipectl
#StageTypes: {
	a: params: n: int @pipectl(fix="one")
	b: params: n: int @pipectl(fix="two")
}
`)}}
	_, err := compileSchema(cuecontext.New(), fsys)
	if err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("want an error for two fixes of n, got %v", err)
	}
}

// TestSchemaFieldFixesReachDiagnostics loads specs with invalid or missing
// parameters whose fixes the embedded schemas declare.
func TestSchemaFieldFixesReachDiagnostics(t *testing.T) {
	const head = `package p

pipelines: demo: {
	description: "demo"
	targets: local: executor: "local"
	stages: {
`
	s, err := LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		stages string
		want   map[string]string // path → fix
	}{
		"invalid values": {
			stages: `data: {type: "data", params: {data_name: "news", data_version: "v1", source: "raw.csv", holdout_size: 1.5}}
		eval: {type: "evaluate", params: {candidates: ["x"], data_name: "news", data_version: "v1", min_delta: -1}}
		infer: {type: "inference", params: {model: "models:/m@champion", input_path: "raw.csv", batch_size: 0}}`,
			want: map[string]string{
				"pipelines.demo.stages.data.params.holdout_size": s.fixes["holdout_size"],
				"pipelines.demo.stages.eval.params.min_delta":    s.fixes["min_delta"],
				"pipelines.demo.stages.infer.params.batch_size":  s.fixes["batch_size"],
			},
		},
		"missing model_name": {
			stages: `train: {type: "train", params: {data_name: "news", data_version: "v1", model_type: "naive_bayes"}}`,
			want:   map[string]string{"pipelines.demo.stages.train.params.model_name": s.missingFixes["model_name"]},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := project(t, map[string]string{"specs/p.cue": head + "\t\t" + tc.stages + "\n\t}\n}\n"})
			_, ds := Load(nil, Options{Root: root})
			got := map[string]string{}
			for _, d := range ds {
				got[d.Path] = d.Fix
			}
			for path, fix := range tc.want {
				if fix == "" {
					t.Errorf("%s: the schema declares no fix", path)
				} else if got[path] != fix {
					t.Errorf("%s: fix %q, want %q\nall: %v", path, got[path], fix, ds.Error())
				}
			}
		})
	}
}

// TestKeyedParamFromSchema checks that a parameter whose names depend on a
// sibling is declared by the schema alone, whatever the domain.
func TestKeyedParamFromSchema(t *testing.T) {
	fsys := fstest.MapFS{"s.cue": {Data: []byte(`package pipectl
#Shades: {red: {dark?: bool, light?: bool}, blue: {navy?: bool}}
#StageTypes: paint: params: {
	color:  "red" | "blue"
	shade?: _ @pipectl(keys="#Shades", by="color", noun="shade")
	opts: {brush?: bool}
}
`)}}
	s, err := compileSchema(cuecontext.New(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"blue": {"navy"}, "red": {"dark", "light"}}
	if diff := cmp.Diff(want, s.KeyedParamNames("paint", "shade")); diff != "" {
		t.Errorf("keyed names (-want +got)\n%s", diff)
	}
	issues := s.issuesOf(s.def("#StageTypes.paint.params"), s.def("#StageTypes.paint.params"), "#StageTypes.paint.params",
		map[string]any{"color": "red", "shade": map[string]any{"navy": true}, "opts": map[string]any{"roller": true}})
	got := []string{}
	for _, is := range issues {
		got = append(got, is.Field+": "+is.Summary+" / "+is.Fix)
	}
	want2 := []string{
		`shade.navy: unknown shade "navy" for red / valid parameters: dark, light`,
		`opts.roller: unknown field "roller" / valid fields here: brush`,
	}
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("issues (-want +got)\n%s", diff)
	}
	bad := fstest.MapFS{"s.cue": {Data: []byte(`package pipectl
#StageTypes: paint: params: shade?: _ @pipectl(keys="#Shades")
`)}}
	if _, err := compileSchema(cuecontext.New(), bad); err == nil {
		t.Error("want an error for keys= without by= and noun=")
	}
}
