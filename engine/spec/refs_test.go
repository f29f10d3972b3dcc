package spec

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAndSubstitute(t *testing.T) {
	outputs := map[string]string{"data.data_version": "v1", "evaluate.model_uri": "models:/m/3"}
	lookup := func(r Ref) (string, bool) {
		if r.Run == "date" {
			return "2026-11-26", true
		}
		v, ok := outputs[r.Stage+"."+r.Output]
		return v, ok
	}
	tests := map[string]struct {
		in, out, err string
		refs         int
	}{
		"plain":        {in: "v1", out: "v1"},
		"whole":        {in: "${stages.data.outputs.data_version}", out: "v1", refs: 1},
		"embedded":     {in: "x-${stages.data.outputs.data_version}-y", out: "x-v1-y", refs: 1},
		"two":          {in: "${run.date}/${stages.evaluate.outputs.model_uri}", out: "2026-11-26/models:/m/3", refs: 2},
		"escaped":      {in: "$${stages.data.outputs.data_version}", out: "${stages.data.outputs.data_version}"},
		"unknown":      {in: "${stages.data.outputs.nope}", err: `stage "data" has no output "nope"`, refs: 1},
		"malformed":    {in: "${stages.data}", err: "malformed reference"},
		"unclosed":     {in: "${stages.data.outputs.x", err: "malformed reference"},
		"unknown run":  {in: "${run.month}", err: "malformed reference"},
		"dollar alone": {in: "costs $5", out: "costs $5"},
		"empty braces": {in: "${}", err: "malformed reference"},
		"hyphen stage": {in: "${stages.train-lr.outputs.model_uri}", err: `stage "train-lr" has no output`, refs: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			refs, perr := ParseRefs(tc.in)
			if perr == nil && len(refs) != tc.refs {
				t.Errorf("ParseRefs found %d refs, want %d", len(refs), tc.refs)
			}
			out, err := Substitute(tc.in, lookup)
			if tc.err != "" {
				if err == nil || !contains(err.Error(), tc.err) {
					t.Fatalf("Substitute error %v, want %q", err, tc.err)
				}
				var se *RefSyntaxError
				if contains(tc.err, "malformed") && (!errors.As(perr, &se) || !errors.As(err, &se)) {
					t.Errorf("want RefSyntaxError from both, got %v / %v", perr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out != tc.out {
				t.Errorf("got %q, want %q", out, tc.out)
			}
		})
	}
}

func TestCollectRefs(t *testing.T) {
	v := map[string]any{
		"a": []any{"${stages.x.outputs.y}", "plain"},
		"b": map[string]any{"c": "${run.id}"},
	}
	refs, errs := CollectRefs(v)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.Text)
	}
	if diff := cmp.Diff([]string{"${stages.x.outputs.y}", "${run.id}"}, got); diff != "" {
		t.Error(diff)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
