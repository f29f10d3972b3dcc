package spec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSchemaRules checks that the rules of the table of stage types
// (#StageTypes: segments and each params definition's #checks) reach the
// engine as parameter issues.
func TestSchemaRules(t *testing.T) {
	s, err := LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	data := func(extra map[string]any) map[string]any {
		p := map[string]any{"data_name": "news", "data_version": "v1", "source": "raw.csv"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	train := func(extra map[string]any) map[string]any {
		p := map[string]any{"data_name": "news", "data_version": "v1", "model_name": "clf", "model_type": "linear_svc"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	tests := map[string]struct {
		stageType string
		params    map[string]any
		want      []string // field: summary
	}{
		"valid data":   {stageType: "data", params: data(nil)},
		"unsafe name":  {stageType: "data", params: data(map[string]any{"data_version": "../v1"}), want: []string{`data_version: data_version "../v1" must be a single path segment (no '/')`}},
		"sizes":        {stageType: "data", params: data(map[string]any{"test_size": 0.5, "holdout_size": 0.5}), want: []string{"test_size: test_size + holdout_size = 1.0 leaves no training data"}},
		"empty strat":  {stageType: "data", params: data(map[string]any{"stratify": []any{}}), want: []string{"stratify: stratify is an empty list"}},
		"null strat":   {stageType: "data", params: data(map[string]any{"stratify": nil})},
		"reference":    {stageType: "train", params: train(map[string]any{"data_version": "${stages.data.outputs.data_version}"})},
		"model name":   {stageType: "train", params: train(map[string]any{"model_name": "a-b"}), want: []string{`model_name: model_name "a-b" is not a valid registered model name`}},
		"ngram order":  {stageType: "train", params: train(map[string]any{"features": map[string]any{"word_ngram": []any{3, 1}}}), want: []string{"features.word_ngram: word_ngram [3, 1] has min above max"}},
		"char ngram":   {stageType: "train", params: train(map[string]any{"features": map[string]any{"char_ngram": nil}})},
		"wrong model":  {stageType: "train", params: train(map[string]any{"model_params": map[string]any{"variant": "multinomial"}}), want: []string{`model_params.variant: unknown model parameter "variant" for linear_svc`}},
		"no input":     {stageType: "inference", params: map[string]any{"model": "models:/m@champion"}, want: []string{"data_name: inference has no input: data_name and data_version, or input_path, are required"}},
		"csv input":    {stageType: "inference", params: map[string]any{"model": "models:/m/3", "input_path": "x.csv"}},
		"bad model":    {stageType: "inference", params: map[string]any{"model": "m:latest", "input_path": "x.csv"}, want: []string{`model: model "m:latest" is not a model URI`}},
		"custom as is": {stageType: "custom", params: map[string]any{"anything": 1}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, issues := s.ResolveParams(tc.stageType, tc.params)
			var got []string
			for _, is := range issues {
				got = append(got, is.Field+": "+is.Summary)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("wrong issues (-want +got):\n%s", d)
			}
		})
	}
}
