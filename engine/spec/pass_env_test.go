package spec

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTargetPassEnv(t *testing.T) {
	spec := strings.Replace(base, `targets: local: executor: "local"`,
		`targets: {
		local: executor: "local"
		batch: {executor: "shell", config: command: "true", pass_env: ["SLURM_TOKEN", "HTTPS_PROXY"]}
	}`, 1)
	root := project(t, map[string]string{"specs/p.cue": spec})
	proj, ds := Load(nil, Options{Root: root, Executors: func(name string) bool { return name == "shell" }})
	if ds.HasErrors() {
		t.Fatalf("unexpected diagnostics: %v", ds)
	}
	targets := proj.Pipelines["demo"].Targets
	if diff := cmp.Diff([]string{"SLURM_TOKEN", "HTTPS_PROXY"}, targets["batch"].PassEnv); diff != "" {
		t.Errorf("wrong pass_env\n%s", diff)
	}
	if targets["local"].PassEnv != nil {
		t.Errorf("a target without pass_env passes %q", targets["local"].PassEnv)
	}
}
