package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rhysd/actionlint"
)

func TestEvalExpr(t *testing.T) {
	sc := &scope{
		event:  "workflow_dispatch",
		inputs: map[string]value{"target": strValue("dev"), "empty": strValue(""), "dry-run": boolValue(false)},
		matrix: map[string]value{"destroy": boolValue(true), "pipeline": strValue("p1")},
		env:    map[string]value{"TARGET": strValue("qa")},
		assume: map[string]bool{"startswith(github.ref, 'refs/heads/release/')": true},
	}
	tests := map[string]struct {
		expr, want string
		need       string // an undecided condition
	}{
		"input":                 {expr: "inputs.target", want: "dev"},
		"input fallback":        {expr: "inputs.empty || 'prod'", want: "prod"},
		"missing input":         {expr: "inputs.pipeline || 'sentiment-train'", want: "sentiment-train"},
		"boolean input":         {expr: "inputs.dry-run && 'x' || 'y'", want: "y"},
		"index syntax":          {expr: "inputs['target']", want: "dev"},
		"matrix bool":           {expr: "matrix.destroy && 'unschedule' || 'deploy'", want: "unschedule"},
		"not":                   {expr: "!matrix.destroy", want: "false"},
		"event":                 {expr: "github.event_name == 'workflow_dispatch'", want: "true"},
		"case-insensitive ==":   {expr: "'Dev' == inputs.target", want: "true"},
		"env":                   {expr: "env.TARGET", want: "qa"},
		"format is unknown":     {expr: "format('{0}', inputs.target)", want: markUnknown("format('{0}', inputs.target)")},
		"number is unknown":     {expr: "github.run_attempt > 1", need: "(github.run_attempt > 1)"},
		"null equals empty":     {expr: "inputs.pipeline == ''", want: "true"},
		"mixed kinds undecided": {expr: "inputs.dry-run == 'false'", need: "(inputs.dry-run == 'false')"},
		"assumed condition":     {expr: "startsWith(github.ref, 'refs/heads/release/') && 'prod' || 'staging'", want: "prod"},
		"decided startsWith":    {expr: "startsWith(inputs.target, 'd')", want: "true"},
		"undecided comparison":  {expr: "github.ref == 'refs/heads/main'", need: "(github.ref == 'refs/heads/main')"},
		"undecided truthiness":  {expr: "vars.MODE || 'x'", need: "vars.mode"},
		"status function":       {expr: "always()", need: "always()"},
		"unknown value":         {expr: "github.sha", want: markUnknown("github.sha")},
		"unknown in format":     {expr: "format('{0}', github.sha)", want: markUnknown("format('{0}', github.sha)")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, _, err := sc.evalExpr(tc.expr + " }}")
			var nc *needCondition
			if tc.need != "" {
				if !errors.As(err, &nc) || nc.text != tc.need {
					t.Fatalf("want undecided condition %q, got %v, %v", tc.need, v, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := v.String(); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.expr, got, tc.want)
			}
		})
	}
	if _, _, err := sc.evalExpr("inputs.target || }}"); err == nil {
		t.Error("a malformed expression was accepted")
	}
}

func TestScanScript(t *testing.T) {
	tests := map[string]struct {
		src  string
		want []string // each command: line, then its words as written, joined by |
		ann  map[string]string
	}{
		"simple": {
			src:  "pipectl run \"$PIPELINE\" --target \"$TARGET\"\n",
			want: []string{"1: pipectl|run|$PIPELINE|--target|$TARGET"},
		},
		"operators and keywords": {
			src:  "if [ -z \"$x\" ]; then pipectl validate && echo ok; fi\nwhile read -r p; do pipectl plan $p; done <<< \"$pairs\"\n",
			want: []string{"1: [|-z|$x|]", "1: pipectl|validate", "1: echo|ok", "2: read|-r|p", "2: pipectl|plan|$p"},
		},
		"continuation and comment": {
			src:  "# pipectl run ignored\npipectl plan \\\n  sentiment --json # trailing\n",
			want: []string{"2: pipectl|plan|sentiment|--json"},
		},
		"command substitution": {
			src:  "pairs=$(pipectl pipelines --json | jq -r '.[]')\nn=`pipectl version`\n",
			want: []string{"1: pipectl|pipelines|--json", "1: jq|-r|.[]", "2: pipectl|version"},
		},
		"assignment prefix": {
			src:  "FOO=1 pipectl validate\n",
			want: []string{"1: pipectl|validate"},
		},
		"heredoc skipped": {
			src:  "cat <<EOF\npipectl run nothing\nEOF\npipectl validate\n",
			want: []string{"1: cat", "4: pipectl|validate"},
		},
		"case patterns are not commands": {
			src:  "case \"$A\" in\na/b) pipectl deploy x ;;\n*) exit 1 ;;\nesac\n",
			want: []string{"2: pipectl|deploy|x", "3: exit|1"},
		},
		"for list is not a command": {
			src:  "for p in pipectl other; do echo \"$p\"; done\n",
			want: []string{"1: echo|$p"},
		},
		"redirections": {
			src:  "pipectl plan x > out.txt 2>&1\necho \"::error::x\" >&2\n",
			want: []string{"1: pipectl|plan|x", "2: echo|::error::x"},
		},
		"annotation": {
			src:  "# pipectl-test: p=each-pipeline t=each-target\npipectl plan \"$p\" --target \"$t\"\n",
			want: []string{"2: pipectl|plan|$p|--target|$t"},
			ann:  map[string]string{"p": "each-pipeline", "t": "each-target"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cmds, ann, err := scanScript(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cmds {
				var ws []string
				for _, w := range c.Args {
					ws = append(ws, literal(w))
				}
				got = append(got, fmt.Sprintf("%d: %s", c.Args[0].Pos().Line(), strings.Join(ws, "|")))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
			if tc.ann == nil {
				tc.ann = map[string]string{}
			}
			if diff := cmp.Diff(tc.ann, ann); diff != "" {
				t.Errorf("annotation (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"echo 'open\n", "echo \"open\n", "cat <<EOF\nno end\n", "# pipectl-test: p=every\n", "x=$(echo\n"} {
		if _, _, err := scanScript(bad); err == nil {
			t.Errorf("scanScript(%q) accepted it", bad)
		}
	}
}

func TestExpandWords(t *testing.T) {
	env := map[string]value{"p": strValue("p1"), "T": strValue("dev"), "S": unknownValue("github.sha")}
	cmds, _, err := scanScript(`pipectl plan 'a b' "c $T e" f\ g "" ${NOPE:-x} "$p" $S`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := expandWords(cmds[0].Args[1:], env)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"plan", "a b", "c dev e", "f g", "", "x", "p1", markUnknown("github.sha")}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMatrixCombinations(t *testing.T) {
	tests := map[string]struct {
		matrix string
		want   []map[string]string
	}{
		"cross product less exclude": {
			matrix: "{os: [a, b], py: [1, 2], exclude: [{os: b, py: 2}]}",
			want:   []map[string]string{{"os": "a", "py": "1"}, {"os": "a", "py": "2"}, {"os": "b", "py": "1"}},
		},
		"include extends matching rows and adds the rest": {
			matrix: "{os: [a, b], include: [{os: a, extra: x}, {os: c}, {flag: f}]}",
			want:   []map[string]string{{"os": "a", "extra": "x", "flag": "f"}, {"os": "b", "flag": "f"}, {"os": "c"}},
		},
		"include only": {
			matrix: "{include: [{pipeline: p1, destroy: false}, {pipeline: p2}]}",
			want:   []map[string]string{{"pipeline": "p1", "destroy": "${{ false }}"}, {"pipeline": "p2"}},
		},
		"expression": {
			matrix: "${{ fromJSON(needs.a.outputs.m) }}",
			want:   []map[string]string{nil},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src := "on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix: " + tc.matrix + "\n    steps:\n      - run: true\n"
			f, err := Parse("m.yml", []byte(src), false)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, combinations(f.Jobs()[0].Strategy)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

const fixture = `name: fixture
on:
  schedule:
    - cron: "0 3 1 * *"
  push:
    branches: [main]
  workflow_dispatch:
    inputs:
      pipeline:
        type: choice
        options: [p1, p2]
        default: p1
      dry-run:
        type: boolean
        default: false
permissions: {}
env:
  WF: from-workflow
jobs:
  run:
    runs-on: ubuntu-latest
    environment: ${{ startsWith(github.ref, 'refs/heads/release/') && 'prod' || 'staging' }}
    concurrency:
      group: g-${{ inputs.pipeline || 'p1' }}
      cancel-in-progress: false
    permissions:
      contents: read
    env:
      PIPELINE: ${{ inputs.pipeline || 'p1' }}
    steps:
      - name: only on schedule
        if: github.event_name == 'schedule'
        run: pipectl schedule "$PIPELINE"
      - name: dry run
        if: ${{ inputs.dry-run }}
        run: |
          echo "planning"
          pipectl plan "$PIPELINE" \
            --target "$TARGET"
        env:
          TARGET: ${{ startsWith(github.ref, 'refs/heads/release/') && 'prod' || 'staging' }}
      - run: go run ./cmd/pipectl validate --specs "$WF"
  matrix:
    runs-on: ubuntu-latest
    permissions: {}
    strategy:
      matrix:
        include:
          - {pipeline: p1, destroy: false}
          - {pipeline: p2, destroy: true}
    steps:
      - if: ${{ matrix.destroy }}
        run: pipectl deploy ${{ matrix.pipeline }} --target prod --destroy
      - run: |
          # pipectl-test: p=each-pipeline t=each-target
          while read -r p t; do "$RUNNER_TEMP/bin/pipectl" plan "$p" -t "$t"; done < pairs
`

func TestInvocations(t *testing.T) {
	f, err := Parse("fixture.yml", []byte(fixture), false)
	if err != nil {
		t.Fatal(err)
	}
	if c := f.Crons(); len(c) != 1 || c[0].Value != "0 3 1 * *" || c[0].Pos.Line != 4 {
		t.Errorf("crons = %v, want 0 3 1 * * at line 4", c)
	}
	invs, errs := f.Invocations(map[string][]string{"p1": {"dev", "prod"}, "p2": {"local"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var got []string
	for _, inv := range invs {
		got = append(got, fmt.Sprintf("%d %s [%s] env=%s group=%s: %s", inv.Line, inv.Event, inv.Job, inv.Environment, inv.Concurrency, strings.Join(inv.Args, " ")))
	}
	slices.Sort(got)
	got = slices.Compact(got)
	want := []string{
		// The schedule step runs on schedule only; inputs are null there.
		"33 schedule [run] env=prod group=g-p1: schedule p1",
		"33 schedule [run] env=staging group=g-p1: schedule p1",
		// The dry-run step runs when the boolean input is true; its target
		// follows the undecided startsWith, as the environment does.
		"38 workflow_dispatch [run] env=prod group=g-p1: plan p1 --target prod",
		"38 workflow_dispatch [run] env=prod group=g-p2: plan p2 --target prod",
		"38 workflow_dispatch [run] env=staging group=g-p1: plan p1 --target staging",
		"38 workflow_dispatch [run] env=staging group=g-p2: plan p2 --target staging",
		"42 push [run] env=prod group=g-p1: validate --specs from-workflow",
		"42 push [run] env=staging group=g-p1: validate --specs from-workflow",
		"42 schedule [run] env=prod group=g-p1: validate --specs from-workflow",
		"42 schedule [run] env=staging group=g-p1: validate --specs from-workflow",
		"42 workflow_dispatch [run] env=prod group=g-p1: validate --specs from-workflow",
		"42 workflow_dispatch [run] env=prod group=g-p2: validate --specs from-workflow",
		"42 workflow_dispatch [run] env=staging group=g-p1: validate --specs from-workflow",
		"42 workflow_dispatch [run] env=staging group=g-p2: validate --specs from-workflow",
		// Only the matrix row with destroy: true deploys.
		"53 push [matrix] env= group=: deploy p2 --target prod --destroy",
		"53 schedule [matrix] env= group=: deploy p2 --target prod --destroy",
		"53 workflow_dispatch [matrix] env= group=: deploy p2 --target prod --destroy",
		// The annotated loop: every pipeline with each of its targets.
		"56 push [matrix] env= group=: plan p1 -t dev",
		"56 push [matrix] env= group=: plan p1 -t prod",
		"56 push [matrix] env= group=: plan p2 -t local",
		"56 schedule [matrix] env= group=: plan p1 -t dev",
		"56 schedule [matrix] env= group=: plan p1 -t prod",
		"56 schedule [matrix] env= group=: plan p2 -t local",
		"56 workflow_dispatch [matrix] env= group=: plan p1 -t dev",
		"56 workflow_dispatch [matrix] env= group=: plan p1 -t prod",
		"56 workflow_dispatch [matrix] env= group=: plan p2 -t local",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("invocations (-want +got):\n%s", diff)
	}
}

func TestInvocationErrors(t *testing.T) {
	tests := map[string]struct {
		run  string
		want string
	}{
		"variable not in env":    {run: `pipectl run "$NOPE"`, want: "fixture.yml:10: run: pipectl run \"$NOPE\": $NOPE is not set by the env:"},
		"unknown expression":     {run: `pipectl run p --set "data.version=${{ github.sha }}"`, want: "depends on github.sha"},
		"command substitution":   {run: `pipectl run "$(cat name)"`, want: "cannot tell the value of $(cat name)"},
		"secret":                 {run: `pipectl run p --set x.y=$TOKEN`, want: "depends on secrets.t"},
		"bad expression":         {run: `pipectl run ${{ inputs. }}`, want: "fixture.yml:10: run: expression"},
		"loop without pipelines": {run: "# pipectl-test: p=each-pipeline\npipectl plan $p", want: "no pipelines to range over"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src := fmt.Sprintf("on: push\npermissions: {}\njobs:\n  a:\n    runs-on: x\n    env:\n      TOKEN: ${{ secrets.T }}\n    steps:\n      - run: |\n          %s\n",
				strings.ReplaceAll(tc.run, "\n", "\n          "))
			f, err := Parse("fixture.yml", []byte(src), false)
			if err != nil {
				t.Fatal(err)
			}
			_, errs := f.Invocations(nil)
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Errorf("errors %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

func TestParseAction(t *testing.T) {
	src := `name: a
inputs:
  python:
    default: "true"
runs:
  using: composite
  steps:
    - uses: actions/setup-go@0123456789012345678901234567890123456789 # v6.2.0
    - if: inputs.python == 'true'
      shell: bash
      run: "\"$bin/pipectl\" version"
    - if: inputs.python != 'true'
      shell: bash
      run: pipectl never
`
	f, err := Parse("action.yml", []byte(src), true)
	if err != nil {
		t.Fatal(err)
	}
	uses := f.Jobs()[0].Steps[0].Exec.(*actionlint.ExecAction).Uses
	if c := f.Comment(uses); c != "# v6.2.0" || uses.Pos.Line != 8 {
		t.Errorf("uses comment %q at line %d", c, uses.Pos.Line)
	}
	invs, errs := f.Invocations(nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(invs) != 1 || strings.Join(invs[0].Args, " ") != "version" || invs[0].Line != 11 {
		t.Errorf("invocations = %+v, want pipectl version at line 11 only", invs)
	}
}
