package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/spec"
)

const demo = `package p

pipelines: demo: {
	description: "demo"
	targets: {
		local: executor: "local"
		other: {executor: "local", stages: data: params: {data_version: "v9", test_size: 0.3}}
	}
	stages: {
		data: {type: "data", params: {data_name: "news", data_version: "v1", source: "raw.csv", holdout_size: 0.15}}
		a: {type: "train", params: {data_name: "news", data_version: "${stages.data.outputs.data_version}", model_name: "m", model_type: "naive_bayes"}}
		b: {type: "train", retries: 2, params: {data_name: "news", data_version: "v1", model_name: "m", model_type: "linear_svc"}}
		eval: {type: "evaluate", params: {candidates: ["a", "b"], data_name: "news", data_version: "v1"}}
	}
}
`

func load(t *testing.T) (*spec.Schema, *spec.Pipeline) {
	t.Helper()
	root := t.TempDir()
	for _, nb := range []string{"create_data", "train_model", "evaluate_models", "run_inference"} {
		write(t, filepath.Join(root, "notebooks", nb+".py"), "# Databricks notebook source\n")
	}
	write(t, filepath.Join(root, "raw.csv"), "Sentence,Sentiment\n") // the local source must exist
	write(t, filepath.Join(root, "specs", "p.cue"), demo)
	proj, ds := spec.Load(nil, spec.Options{Root: root})
	if ds.HasErrors() {
		t.Fatal(ds.Error())
	}
	s, err := spec.LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	return s, proj.Pipelines["demo"]
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBuild(t *testing.T) {
	s, p := load(t)
	pl, ds := Build(s, p, Options{})
	if ds.HasErrors() {
		t.Fatal(ds.Error())
	}
	if diff := cmp.Diff([][]string{{"b", "data"}, {"a"}, {"eval"}}, pl.Layers); diff != "" {
		t.Errorf("layers\n%s", diff)
	}
	eval := pl.Stages["eval"]
	params, err := eval.RenderParams(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `["${stages.a.outputs.model_uri}","${stages.b.outputs.model_uri}"]`; params["candidates"] != want {
		t.Errorf("candidates = %s, want %s", params["candidates"], want)
	}
	rendered, err := eval.RenderParams(func(r spec.Ref) (string, bool) { return "models:/m/" + r.Stage, true })
	if err != nil {
		t.Fatal(err)
	}
	if want := `["models:/m/a","models:/m/b"]`; rendered["candidates"] != want {
		t.Errorf("rendered candidates = %s, want %s", rendered["candidates"], want)
	}
	data, _ := pl.Stages["data"].RenderParams(nil)
	want := map[string]string{"holdout": "true", "holdout_size": "0.15", "test_size": "0.2", "stratify": `["Sentiment"]`, "seed": "42", "overwrite": "false"}
	for k, v := range want {
		if data[k] != v {
			t.Errorf("data.%s = %q, want %q", k, data[k], v)
		}
	}
	if pl.Stages["b"].Retries != 2 || pl.Stages["a"].Executor != "local" {
		t.Errorf("retries/executor not carried: %+v", pl.Stages["b"])
	}
}

func TestTargetOverridesReplaceKeys(t *testing.T) {
	s, p := load(t)
	pl, ds := Build(s, p, Options{Target: "other"})
	if ds.HasErrors() {
		t.Fatal(ds.Error())
	}
	data, _ := pl.Stages["data"].RenderParams(nil)
	for k, v := range map[string]string{"data_version": "v9", "test_size": "0.3", "holdout_size": "0.15", "data_name": "news"} {
		if data[k] != v {
			t.Errorf("data.%s = %q on target other, want %q", k, data[k], v)
		}
	}
	if _, ds := Build(s, p, Options{Target: "nope"}); !ds.HasErrors() || !strings.Contains(ds.Error(), `no target "nope"`) {
		t.Errorf("unknown target: %v", ds)
	}
}

func TestSets(t *testing.T) {
	s, p := load(t)
	tests := map[string]struct {
		sets []string
		key  string
		want string
		err  string
	}{
		"number":              {sets: []string{"data.test_size=0.25"}, key: "test_size", want: "0.25"},
		"string param number": {sets: []string{"data.data_version=2024"}, key: "data_version", want: "2024"},
		"list":                {sets: []string{`data.stratify=null`}, key: "stratify", want: "null"},
		"out of range":        {sets: []string{"data.test_size=1"}, err: "--set data.test_size"},
		"unknown key":         {sets: []string{"data.tset_size=0.1"}, err: `unknown field "tset_size"`},
		"unknown stage":       {sets: []string{"nope.x=1"}, err: `pipeline demo has no stage "nope"`},
		"comma in value":      {sets: []string{`a.model_params={"alpha":0.1,"fit_prior":false}`}, key: "", want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var sets []Set
			for _, raw := range tc.sets {
				set, err := ParseSet(raw)
				if err != nil {
					t.Fatal(err)
				}
				sets = append(sets, set)
			}
			pl, ds := Build(s, p, Options{Sets: sets})
			if tc.err != "" {
				if !ds.HasErrors() || !strings.Contains(pathsOf(ds), tc.err) {
					t.Fatalf("want error %q, got %v", tc.err, ds)
				}
				return
			}
			if ds.HasErrors() {
				t.Fatal(ds.Error())
			}
			if tc.key == "" {
				return
			}
			params, _ := pl.Stages[sets[0].Stage].RenderParams(nil)
			if params[tc.key] != tc.want {
				t.Errorf("%s = %q, want %q", tc.key, params[tc.key], tc.want)
			}
		})
	}
	if _, err := ParseSet("data=1"); err == nil {
		t.Error("ParseSet accepted a value without STAGE.PARAM")
	}
}

// pathsOf renders diagnostics with their field paths, for matching.
func pathsOf(ds diag.Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.Path + ": " + d.Summary + "\n")
	}
	return b.String()
}

func TestStringify(t *testing.T) {
	tests := map[string]struct {
		in   any
		want string
	}{
		"string": {"a b", "a b"},
		"nil":    {nil, "null"},
		"bool":   {true, "true"},
		"list":   {[]any{"x", 1}, `["x",1]`},
		"map":    {map[string]any{"b": 1, "a": "x"}, `{"a":"x","b":1}`},
	}
	for name, tc := range tests {
		if got := Stringify(tc.in); got != tc.want {
			t.Errorf("%s: got %s, want %s", name, got, tc.want)
		}
	}
}
