package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipectl/pipectl/engine/diag"
)

// project writes a project root with stub notebooks and the given spec
// files, and returns its path.
func project(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, nb := range []string{"create_data", "train_model", "evaluate_models", "run_inference", "custom"} {
		writeFile(t, filepath.Join(root, "notebooks", nb+".py"), "# Databricks notebook source\n")
	}
	// The local source the small specs name: validate checks it exists.
	writeFile(t, filepath.Join(root, "raw.csv"), "Sentence,Sentiment\n")
	for name, content := range files {
		writeFile(t, filepath.Join(root, name), content)
	}
	return root
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// base is a small valid pipeline; tests splice fragments into it.
const base = `package p

pipelines: demo: {
	description: "demo"
	targets: local: executor: "local"
	stages: {
		data: {
			type: "data"
			params: {data_name: "news", data_version: "v1", source: "raw.csv"}
		}
		train: {
			type: "train"
			params: {
				data_name:    "${stages.data.outputs.data_name}"
				data_version: "${stages.data.outputs.data_version}"
				model_name:   "clf"
				model_type:   "logistic_regression"
				model_params: C: 2
			}
		}
	}
}
`

func TestLoadValid(t *testing.T) {
	root := project(t, map[string]string{"specs/p.cue": base})
	proj, ds := Load(nil, Options{Root: root})
	if ds.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", ds.Error())
	}
	p := proj.Pipelines["demo"]
	if p == nil {
		t.Fatal("pipeline demo not loaded")
	}
	train := p.Stages["train"]
	if train.Notebook != "notebooks/train_model.py" || train.Timeout.String() != "2h0m0s" || train.Retries != 0 {
		t.Errorf("stage defaults not applied: %+v", train)
	}
	if diff := cmp.Diff([]string{"data"}, p.Dependencies("train", nil)); diff != "" {
		t.Errorf("references are not dependencies\n%s", diff)
	}
	if _, ok := train.Params["features"]; ok {
		t.Errorf("Params must hold what was written, without schema defaults: %v", train.Params)
	}
	if p.Hash == "" || p.DefaultTarget != "local" {
		t.Errorf("hash %q default target %q", p.Hash, p.DefaultTarget)
	}
}

// TestLoadInvalid checks that each broken spec yields exactly the expected
// diagnostics: position, field path and summary.
func TestLoadInvalid(t *testing.T) {
	tests := map[string]struct {
		// edit changes the base spec (old → new).
		old, new string
		// old2/new2 is an optional second edit.
		old2, new2 string
		want       []string // "LINE:COL path: summary"
	}{
		"test size out of range": {
			old:  `source: "raw.csv"}`,
			new:  `source: "raw.csv", test_size: 1.5}`,
			want: []string{"9:82 pipelines.demo.stages.data.params.test_size: test_size: invalid value 1.5 (out of bound <1)"},
		},
		"sizes leave no train": {
			old:  `source: "raw.csv"}`,
			new:  `source: "raw.csv", test_size: 0.6, holdout_size: 0.5}`,
			want: []string{"9:82 pipelines.demo.stages.data.params.test_size: test_size + holdout_size = 1.1 leaves no training data"},
		},
		"unknown model param": {
			old:  `model_params: C: 2`,
			new:  `model_params: {C: 2, alhpa: 1}`,
			want: []string{`18:26 pipelines.demo.stages.train.params.model_params.alhpa: unknown model parameter "alhpa" for logistic_regression`},
		},
		"unknown stage type": {
			old:  `type: "train"`,
			new:  `type: "training"`,
			want: []string{`12:10 pipelines.demo.stages.train.type: type: invalid value "training"`},
		},
		"unknown needs": {
			old:  `type: "train"`,
			new:  `type: "train", needs: ["prep"]`,
			want: []string{`12:27 pipelines.demo.stages.train.needs.0: stage "train" needs unknown stage "prep"`},
		},
		"reference to unknown output": {
			old:  `outputs.data_version}"`,
			new:  `outputs.version}"`,
			want: []string{`15:19 pipelines.demo.stages.train.params.data_version: ${stages.data.outputs.version}: stage "data" has no output "version"`},
		},
		"malformed reference": {
			old:  `"${stages.data.outputs.data_name}"`,
			new:  `"${stage.data.data_name}"`,
			want: []string{`14:19 pipelines.demo.stages.train.params.data_name: malformed reference "${stage.data.data_name}": write ${stages.<stage>.outputs.<key>}, ${run.date} or ${run.id}`},
		},
		"cycle": {
			old:  `type: "data"`,
			new:  `type: "data", needs: ["train"]`,
			want: []string{`7:9 pipelines.demo.stages.data: stages form a cycle: data → train → data`},
		},
		"unsafe data version": {
			old:  `data_version: "v1"`,
			new:  `data_version: "../../etc"`,
			want: []string{`9:46 pipelines.demo.stages.data.params.data_version: data_version "../../etc" must be a single path segment (no '/')`},
		},
		"missing description": {
			old:  `description: "demo"`,
			new:  ``,
			want: []string{`3:18 pipelines.demo.description: missing required field "description"`},
		},
		"unknown executor": {
			old:  `executor: "local"`,
			new:  `executor: "lokal"`,
			want: []string{`5:28 pipelines.demo.targets.local.executor: unknown executor "lokal"`},
		},
		"bad cron": {
			old:  `description: "demo"`,
			new:  `description: "demo", schedule: "0 3 1 *"`,
			want: []string{`4:33 pipelines.demo.schedule: schedule "0 3 1 *" has 4 fields, want 5: minute hour day-of-month month day-of-week (UTC), e.g. "0 3 1 * *"`},
		},
		"typo in a pipeline field": {
			old:  `description: "demo"`,
			new:  `description: "demo", stagse: {}`,
			want: []string{`4:23 pipelines.demo.stagse: unknown field "stagse"`},
		},
		"token in databricks target": {
			old:  `targets: local: executor: "local"`,
			new:  `targets: local: executor: "local", targets: dev: {executor: "databricks", databricks: {token: "dapi123", workspace_root: "/W", catalog: "c", schema: "s", volume: "v", experiment_root: "/E"}}`,
			want: []string{`5:89 pipelines.demo.targets.dev.databricks.token: "token" is not allowed in a spec: credentials never go in specs`},
		},
		"override of unknown stage": {
			old:  `targets: local: executor: "local"`,
			new:  `targets: local: {executor: "local", stages: trian: params: seed: 1}`,
			want: []string{`5:53 pipelines.demo.targets.local.stages.trian: target "local" overrides unknown stage "trian"`},
		},
		"override makes a combination invalid": {
			old:  `source: "raw.csv"}`,
			new:  `source: "raw.csv", holdout_size: 0.2}`,
			old2: `targets: local: executor: "local"`,
			new2: `targets: local: {executor: "local", stages: data: params: holdout: false}`,
			want: []string{`9:85 pipelines.demo.stages.data.params.holdout_size: holdout_size is set but holdout is false`},
		},
		"override with a bad value": {
			old:  `targets: local: executor: "local"`,
			new:  `targets: local: {executor: "local", stages: data: params: test_size: 2}`,
			want: []string{`5:71 pipelines.demo.targets.local.stages.data.params.test_size: test_size: invalid value 2 (out of bound >0 and <1)`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("edit %q not found in base", tc.old)
			}
			src := strings.Replace(base, tc.old, tc.new, 1)
			if tc.old2 != "" {
				src = strings.Replace(src, tc.old2, tc.new2, 1)
			}
			root := project(t, map[string]string{"specs/p.cue": src})
			_, ds := Load(nil, Options{Root: root})
			var got []string
			for _, d := range ds {
				if d.Pos.File != "" && d.Pos.File != filepath.Join(root, "specs/p.cue") {
					t.Errorf("diagnostic in %s, want the spec file", d.Pos.File)
				}
				got = append(got, render(d))
			}
			if os.Getenv("SHOWPOS") != "" {
				lines := strings.Split(src, "\n")
				for _, d := range ds {
					if d.Pos.Line > 0 {
						l := lines[d.Pos.Line-1]
						t.Logf("%s\n   %s\n   %s^", render(d), l, strings.Repeat(" ", max(0, d.Pos.Col-1)))
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("wrong diagnostics (-want +got)\n%s\nspec:\n%s", diff, src)
			}
		})
	}
}

func render(d diag.Diagnostic) string {
	return strings.TrimSpace(strings.Join([]string{
		strings.TrimPrefix(diag.Pos{Line: d.Pos.Line, Col: d.Pos.Col, File: "x"}.String(), "x:"),
		d.Path + ":", d.Summary,
	}, " "))
}

// TestRepositorySpecs loads every spec shipped in specs/ against the
// repository's own notebooks.
func TestRepositorySpecs(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "specs", "*.cue"))
	if len(files) == 0 {
		t.Fatal("no specs found in specs/")
	}
	proj, ds := Load(nil, Options{Root: root})
	if len(ds) > 0 {
		t.Fatalf("specs/ has diagnostics:\n%s", ds.Error())
	}
	if len(proj.Files) != len(files) {
		t.Errorf("loaded %d files, specs/ has %d", len(proj.Files), len(files))
	}
	for _, want := range []string{"sentiment", "sentiment-data", "sentiment-train", "sentiment-inference"} {
		if proj.Pipelines[want] == nil {
			t.Errorf("pipeline %s missing", want)
		}
	}
}

// A stage's inputs are its type's (#Inputs) and those it declares.
func TestStageInputs(t *testing.T) {
	spec := strings.Replace(base, `		train: {`, `		lex: {type: "custom", notebook: "notebooks/custom.py", inputs: {lexicon: "file"}, params: lexicon: "lex.txt"}
		train: {`, 1)
	root := project(t, map[string]string{"specs/p.cue": spec})
	proj, ds := Load(nil, Options{Root: root})
	if ds.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", ds.Error())
	}
	st := proj.Pipelines["demo"].Stages
	for name, want := range map[string]map[string]string{
		"data":  {"source": "file"},
		"train": {},
		"lex":   {"lexicon": "file"},
	} {
		if diff := cmp.Diff(want, st[name].Inputs); diff != "" {
			t.Errorf("%s inputs (-want +got):\n%s", name, diff)
		}
	}
	bad := strings.Replace(spec, `inputs: {lexicon: "file"}`, `inputs: {lexicon: "url"}`, 1)
	if _, ds := Load(nil, Options{Root: project(t, map[string]string{"specs/p.cue": bad})}); !ds.HasErrors() {
		t.Error(`inputs: {lexicon: "url"} was accepted`)
	}
}
