package schemas_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/pipectl/pipectl/engine/spec"
)

// modelParamsFile is #ModelParams as the engine reads it: model type to
// the model_params names it accepts. notebooks/tests/test_model_params.py
// checks it against the estimators' get_params(), without Go or a CUE
// parser; this test keeps it in step with models.cue (PIPECTL_UPDATE=1
// rewrites it).
const modelParamsFile = "model_params.json"

func TestModelParamsFile(t *testing.T) {
	s, err := spec.LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	table := s.KeyedParamNames("train", "model_params")
	want, err := json.MarshalIndent(table, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if os.Getenv("PIPECTL_UPDATE") == "1" {
		if err := os.WriteFile(modelParamsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(modelParamsFile)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("schemas/%s is not #ModelParams of models.cue (%v): run PIPECTL_UPDATE=1 go test ./schemas", modelParamsFile, err)
	}
}
