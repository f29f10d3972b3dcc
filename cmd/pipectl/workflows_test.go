package main

// Tests of the GitHub Actions workflows and the setup-pipectl composite
// action against the specs and this CLI: every pipectl command line in
// them names an existing pipeline, target, stage and valid flags; every
// workflow cron is its pipeline's spec schedule; every scheduled pipeline
// is triggered by the scheduler its spec names, and only by it; actions
// are pinned, permissions least-privilege, runs and deploys serialized;
// actionlint is clean.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/rhysd/actionlint"

	"github.com/pipectl/pipectl/engine/schedule"
	"github.com/pipectl/pipectl/engine/spec"
	"github.com/pipectl/pipectl/internal/workflows"
)

// repoRoot is the repository root, from cmd/pipectl where go test runs.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// workflowApp returns an App on the project at root that writes to buffers;
// the test's cleanup closes its executor registry, as run does.
func workflowApp(t testing.TB, root string) (*App, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	app := &App{Ctx: context.Background(), Stdout: &stdout, Stderr: &stderr, Root: root, Getenv: func(string) string { return "" }}
	t.Cleanup(func() { closeRegistry(t, app) })
	return app, &stdout, &stderr
}

func closeRegistry(t testing.TB, app *App) {
	if app.Registry != nil {
		if err := app.Registry.Close(); err != nil {
			t.Errorf("closing the executor registry: %v", err)
		}
		app.Registry = nil
	}
}

// loadSpecs loads the repository's specs as pipectl does.
func loadSpecs(t testing.TB, root string) *spec.Project {
	t.Helper()
	app, _, stderr := workflowApp(t, root)
	proj, err := app.loadProject(nil)
	if err != nil {
		t.Fatalf("specs/ do not load:\n%s", stderr)
	}
	return proj
}

// ciSetup loads the repository's specs and workflows and expands every
// pipectl invocation; expansion errors fail the test.
type ciSetup struct {
	root  string
	proj  *spec.Project
	files []*workflows.File
	invs  []workflows.Invocation
}

func loadCI(t *testing.T) *ciSetup {
	t.Helper()
	root := repoRoot(t)
	proj := loadSpecs(t, root)
	files, err := workflows.LoadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no workflow under .github/")
	}
	c := &ciSetup{root: root, proj: proj, files: files}
	for _, f := range files {
		invs, errs := f.Invocations(pipelineTargets(proj))
		for _, err := range errs {
			t.Errorf("%v", relPath(root, err.Error()))
		}
		c.invs = append(c.invs, invs...)
	}
	return c
}

func pipelineTargets(proj *spec.Project) map[string][]string {
	targets := map[string][]string{}
	for name, p := range proj.Pipelines {
		targets[name] = p.TargetNames()
	}
	return targets
}

// relPath shortens absolute paths under root in a message.
func relPath(root, msg string) string {
	return strings.ReplaceAll(msg, root+string(filepath.Separator), "")
}

// TestWorkflowInvocations runs every pipectl command line of the workflows
// and the composite action, for every way they can be triggered, through
// this CLI: flags are parsed by kong, and the pipeline, target and --set
// values are planned with `pipectl plan` in process.
func TestWorkflowInvocations(t *testing.T) {
	c := loadCI(t)
	commands := map[string]int{}
	checked := map[string]bool{}
	for _, inv := range c.invs {
		key := strings.Join(inv.Args, "\x00") + "\x00" + inv.Environment
		if checked[key] {
			continue
		}
		checked[key] = true
		call, problems := checkInvocation(c.root, c.proj, inv)
		commands[call.command]++
		for _, p := range problems {
			t.Errorf("%s: pipectl %s (%s): %s", relPath(c.root, inv.Where()), strings.Join(inv.Args, " "), inv.Context, p)
		}
	}
	t.Logf("checked %d distinct pipectl command lines, expanded from %d invocations in %d files: %v",
		len(checked), len(c.invs), len(c.files), commands)
	// The workflows call each of these; finding none means the expansion
	// lost them, not that they are fine.
	for _, want := range []string{"validate", "pipelines", "plan", "run", "deploy", "version"} {
		if commands[want] == 0 {
			t.Errorf("found no pipectl %s in the workflows (found: %v)", want, commands)
		}
	}
}

// call is what an invocation asks for, read from its arguments.
type call struct {
	command  string
	pipeline string
	target   string
	sets     []string
	stages   []string // --only and --from
	specs    []string
	flags    map[string]bool
}

// valueFlags take a value, as the next argument or after "=".
var valueFlags = map[string]bool{
	"-C": true, "--dir": true, "-t": true, "--target": true, "--set": true, "--only": true, "--from": true,
	"--resume": true, "--parallelism": true, "--specs": true, "-f": true, "--format": true,
}

// pipelineCommands take a pipeline as their first argument.
var pipelineCommands = map[string]bool{"plan": true, "graph": true, "schedule": true, "run": true, "deploy": true, "setup": true}

// documentedCommands are the command lines of commands built in parallel
// with the workflows (the Run and Databricks issues), as documented there:
// the flags each takes (true: with a value). They are used only while this
// CLI lacks the command; once it has it, kong parses the invocation.
var documentedCommands = map[string]map[string]bool{
	"run": {
		"-t": true, "--target": true, "--set": true, "--only": true, "--from": true, "--no-cache": false,
		"--resume": true, "--parallelism": true, "--json": false, "--specs": true,
	},
	"deploy": {"-t": true, "--target": true, "--dry-run": false, "--destroy": false, "--specs": true},
}

// readCall reads an invocation's arguments without judging them.
func readCall(args []string) call {
	c := call{flags: map[string]bool{}}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		c.flags[name] = true
		if valueFlags[name] && !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		switch name {
		case "-t", "--target":
			c.target = val
		case "--set":
			c.sets = append(c.sets, val)
		case "--only", "--from":
			c.stages = append(c.stages, val)
		case "--specs":
			c.specs = append(c.specs, val)
		}
	}
	if len(positional) > 0 {
		c.command = positional[0]
	}
	if len(positional) > 1 && pipelineCommands[c.command] {
		c.pipeline = positional[1]
	}
	return c
}

// kongCommands lists the commands this CLI has.
func kongCommands() map[string]bool {
	var cli CLI
	p := kong.Must(&cli, kong.Name("pipectl"))
	out := map[string]bool{}
	for _, n := range p.Model.Children {
		out[n.Name] = true
	}
	return out
}

// parseFlags checks an invocation's syntax: with kong when the CLI has
// the command, else against the documented command line.
func parseFlags(args []string, c call) error {
	if kongCommands()[c.command] {
		var cli CLI
		p, err := kong.New(&cli, kong.Name("pipectl"), kong.Writers(io.Discard, io.Discard),
			kong.Exit(func(int) { panic("kong exit") }), kong.Bind(&App{}))
		if err != nil {
			return err
		}
		_, err = p.Parse(args)
		return err
	}
	flags, ok := documentedCommands[c.command]
	if !ok {
		return fmt.Errorf("pipectl has no command %q", c.command)
	}
	var positional int
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			positional++
			continue
		}
		name, _, hasVal := strings.Cut(a, "=")
		takes, known := flags[name]
		switch {
		case !known:
			return fmt.Errorf("unknown flag %s for pipectl %s (documented: %s)", name, c.command, strings.Join(slices.Sorted(maps.Keys(flags)), " "))
		case takes && !hasVal:
			if i+1 >= len(args) {
				return fmt.Errorf("flag %s needs a value", name)
			}
			i++
		case !takes && hasVal:
			return fmt.Errorf("flag %s takes no value", name)
		}
	}
	if positional != 1 {
		return fmt.Errorf("pipectl %s takes one pipeline, got %d arguments", c.command, positional)
	}
	if c.command == "deploy" && c.target == "" {
		return fmt.Errorf("pipectl deploy needs --target")
	}
	return nil
}

// cliResult is the outcome of running pipectl in process.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cliRuns memoizes runCLI: the workflows repeat the same plans under many
// triggers, and every run loads the specs again.
var cliRuns sync.Map

// runCLI runs pipectl in process on the project at root, read-only
// commands only.
func runCLI(root string, args ...string) cliResult {
	key := root + "\x00" + strings.Join(args, "\x00")
	if r, ok := cliRuns.Load(key); ok {
		return r.(cliResult)
	}
	var stdout, stderr bytes.Buffer
	app := &App{Ctx: context.Background(), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	code := runApp(app, append([]string{"-C", root}, args...))
	if app.Registry != nil {
		if err := app.Registry.Close(); err != nil {
			fmt.Fprintf(&stderr, "closing the executor registry: %v\n", err)
			code = max(code, 1)
		}
	}
	r := cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
	cliRuns.Store(key, r)
	return r
}

// checkInvocation validates one invocation and returns what it asks for
// and every problem found.
func checkInvocation(root string, proj *spec.Project, inv workflows.Invocation) (call, []string) {
	c := readCall(inv.Args)
	if slices.Contains(inv.Args, "-C") || slices.Contains(inv.Args, "--dir") {
		return c, []string{"-C/--dir in a workflow: run pipectl from the repository root instead"}
	}
	if err := parseFlags(inv.Args, c); err != nil {
		return c, []string{err.Error()}
	}
	var problems []string
	if !pipelineCommands[c.command] || c.command == "schedule" || c.command == "graph" {
		// validate, pipelines, version, schedule, graph: read-only, run
		// them for real.
		if r := runCLI(root, inv.Args...); r.code != 0 {
			problems = append(problems, fmt.Sprintf("exit %d:\n%s", r.code, r.stderr))
		}
		return c, problems
	}
	// plan, and run and deploy as plans of the same pipeline, target and
	// --set values.
	planArgs := []string{"plan", c.pipeline, "--json"}
	if c.target != "" {
		planArgs = append(planArgs, "--target", c.target)
	}
	for _, s := range c.sets {
		planArgs = append(planArgs, "--set", s)
	}
	for _, s := range c.specs {
		planArgs = append(planArgs, "--specs", s)
	}
	r := runCLI(root, planArgs...)
	if r.code != 0 {
		return c, []string{fmt.Sprintf("pipectl %s fails (exit %d):\n%s", strings.Join(planArgs, " "), r.code, r.stderr)}
	}
	var pl struct {
		Target   string                     `json:"target"`
		Executor string                     `json:"executor"`
		Stages   map[string]json.RawMessage `json:"stages"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &pl); err != nil {
		return c, []string{fmt.Sprintf("plan --json: %v", err)}
	}
	for _, st := range c.stages {
		if _, ok := pl.Stages[st]; !ok {
			problems = append(problems, fmt.Sprintf("--only/--from %s: pipeline %s has no stage %q (stages: %s)",
				st, c.pipeline, st, strings.Join(slices.Sorted(maps.Keys(pl.Stages)), ", ")))
		}
	}
	if c.command == "deploy" && pl.Executor != spec.ExecutorDatabricks {
		problems = append(problems, fmt.Sprintf("pipectl deploy to target %s, whose executor is %s: only Databricks targets deploy", pl.Target, pl.Executor))
	}
	// A job that reaches Databricks takes the credentials of the GitHub
	// environment named like the target; any other would be a different
	// workspace or service principal.
	// A dry-run deploy (pull request plans) may use <target>-plan instead:
	// the same workspace, a read-only service principal, and deployment
	// branches that admit pull requests.
	readOnly := c.command == "deploy" && c.flags["--dry-run"] && inv.Environment == pl.Target+"-plan"
	if c.command != "plan" && pl.Executor == spec.ExecutorDatabricks && inv.Environment != pl.Target && !readOnly {
		problems = append(problems, fmt.Sprintf("runs on Databricks target %s from a job whose environment is %q: set environment: to the target", pl.Target, inv.Environment))
	}
	return c, problems
}

// TestInvocationCheckerFails proves the checker rejects bad command lines,
// so that TestWorkflowInvocations passing means something.
func TestInvocationCheckerFails(t *testing.T) {
	root := repoRoot(t)
	proj := loadSpecs(t, root)
	tests := map[string]struct {
		args []string
		env  string
		want string
	}{
		"unknown pipeline":    {args: []string{"run", "sentiment-nope", "--target", "dev"}, env: "dev", want: `no pipeline "sentiment-nope"`},
		"unknown target":      {args: []string{"run", "sentiment", "--target", "qa"}, env: "qa", want: "qa"},
		"unknown run flag":    {args: []string{"run", "sentiment", "--taget", "dev"}, env: "dev", want: "--taget"},
		"unknown plan flag":   {args: []string{"plan", "sentiment", "--dry-run"}, want: "--dry-run"},
		"bad --set":           {args: []string{"run", "sentiment", "--target", "local", "--set", "data.nope=1"}, want: "nope"},
		"unknown stage":       {args: []string{"run", "sentiment", "--target", "local", "--only", "trian_lr"}, want: `no stage "trian_lr"`},
		"deploy local":        {args: []string{"deploy", "sentiment", "--target", "local"}, want: "only Databricks targets deploy"},
		"deploy no target":    {args: []string{"deploy", "sentiment"}, env: "dev", want: "--target"},
		"wrong environment":   {args: []string{"run", "sentiment", "--target", "prod"}, env: "dev", want: `environment is "dev"`},
		"unknown command":     {args: []string{"trian", "sentiment"}, want: "trian"},
		"unscheduled":         {args: []string{"schedule", "sentiment"}, want: "has no schedule"},
		"validate other path": {args: []string{"validate", "nowhere/"}, want: "exit 2"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, problems := checkInvocation(root, proj, workflows.Invocation{Args: tc.args, Environment: tc.env})
			all := strings.Join(problems, "\n")
			if !strings.Contains(all, tc.want) {
				t.Errorf("problems %q do not mention %q", all, tc.want)
			}
		})
	}
	// And a good one passes.
	if _, problems := checkInvocation(root, proj, workflows.Invocation{Args: []string{"run", "sentiment", "--target", "staging", "--only", "train_lr"}, Environment: "staging"}); len(problems) > 0 {
		t.Errorf("a valid invocation was rejected: %v", problems)
	}
}

// TestWorkflowSchedules checks the workflows against the specs' schedules
// and schedulers: every workflow cron is the spec's schedule of the
// pipeline its scheduled runs run, and each scheduled pipeline is
// triggered by exactly the system its spec's scheduler names.
func TestWorkflowSchedules(t *testing.T) {
	c := loadCI(t)
	for _, p := range scheduleProblems(c.proj, c.files, c.invs) {
		t.Error(relPath(c.root, p))
	}
	for _, name := range c.proj.Names() {
		if p := c.proj.Pipelines[name]; p.Schedule != "" {
			t.Logf("%s: schedule %q, scheduler %s, run by the crons of %s", name, p.Schedule, p.Scheduler, relPath(c.root, strings.Join(cronsRunning(c.files, c.invs)[name], ", ")))
		}
	}
}

// scheduledRuns returns the pipelines a workflow's scheduled runs run.
func scheduledRuns(f *workflows.File, invs []workflows.Invocation) []string {
	set := map[string]bool{}
	for _, inv := range invs {
		if inv.File == f.Path && inv.Event == "schedule" {
			if c := readCall(inv.Args); c.command == "run" {
				set[c.pipeline] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// cronsRunning maps each pipeline that a workflow's cron runs to those
// workflows' "file:line" of the cron.
func cronsRunning(files []*workflows.File, invs []workflows.Invocation) map[string][]string {
	out := map[string][]string{}
	for _, f := range files {
		if len(f.Crons()) == 0 {
			continue
		}
		for _, p := range scheduledRuns(f, invs) {
			out[p] = append(out[p], fmt.Sprintf("%s:%d", f.Path, f.Crons()[0].Pos.Line))
		}
	}
	return out
}

// pushDeploys reports whether a push runs `pipectl deploy pipeline
// --target target` for real, with --destroy when destroy is set.
func pushDeploys(invs []workflows.Invocation, pipeline, target string, destroy bool) bool {
	for _, inv := range invs {
		c := readCall(inv.Args)
		if inv.Event == "push" && c.command == "deploy" && c.pipeline == pipeline && c.target == target &&
			!c.flags["--dry-run"] && c.flags["--destroy"] == destroy {
			return true
		}
	}
	return false
}

// runsPipelines reports whether a workflow calls pipectl run at all.
func runsPipelines(f *workflows.File, invs []workflows.Invocation) bool {
	for _, inv := range invs {
		if inv.File == f.Path && readCall(inv.Args).command == "run" {
			return true
		}
	}
	return false
}

// productionTargets are the Databricks targets in production mode: where
// pipectl deploy unpauses a databricks-scheduled job.
func productionTargets(p *spec.Pipeline) []string {
	var out []string
	for _, name := range p.TargetNames() {
		if t := p.Targets[name]; t.Mode == "production" && t.Executor == spec.ExecutorDatabricks {
			out = append(out, name)
		}
	}
	return out
}

// scheduleProblems lists every way the workflows disagree with the specs'
// schedules and schedulers.
func scheduleProblems(proj *spec.Project, files []*workflows.File, invs []workflows.Invocation) []string {
	var problems []string
	for _, f := range files {
		if len(f.Crons()) == 0 || !runsPipelines(f, invs) {
			continue // a cron that runs no pipeline (live.yml's test) has no spec to agree with
		}
		runs := scheduledRuns(f, invs)
		if len(runs) != 1 {
			problems = append(problems, fmt.Sprintf("%s:%d: on.schedule must start exactly one pipeline with pipectl run, its scheduled runs start %d: %v",
				f.Path, f.Crons()[0].Pos.Line, len(runs), runs))
			continue
		}
		name := runs[0]
		p := proj.Pipelines[name]
		if p == nil {
			continue // TestWorkflowInvocations reports it
		}
		if p.Schedule == "" {
			problems = append(problems, fmt.Sprintf("%s:%d: on.schedule runs %s, which has no schedule in its spec: add the schedule to the spec, or remove the cron",
				f.Path, f.Crons()[0].Pos.Line, name))
			continue
		}
		want, err := schedule.Parse(p.Schedule)
		if err != nil {
			problems = append(problems, fmt.Sprintf("pipeline %s: %v", name, err))
			continue
		}
		if len(f.Crons()) != 1 {
			problems = append(problems, fmt.Sprintf("%s:%d: %d crons for %s; the spec has one schedule (%q)", f.Path, f.Crons()[0].Pos.Line, len(f.Crons()), name, want.GitHub()))
		}
		for _, cr := range f.Crons() {
			got, err := schedule.Parse(cr.Value)
			if err != nil || got.GitHub() != want.GitHub() {
				problems = append(problems, fmt.Sprintf("%s:%d: cron %q differs from the spec's schedule of %s: set it to %q (`pipectl schedule %s`); the spec is the source of truth",
					f.Path, cr.Pos.Line, cr.Value, name, want.GitHub(), name))
			}
		}
	}
	crons := cronsRunning(files, invs)
	for _, name := range proj.Names() {
		p := proj.Pipelines[name]
		if p.Schedule == "" {
			continue
		}
		switch p.Scheduler {
		case spec.SchedulerGitHub:
			switch n := len(crons[name]); {
			case n == 0:
				problems = append(problems, fmt.Sprintf("pipeline %s: its spec's scheduler is github, but no workflow cron runs it: add on.schedule cron %q to the workflow that runs it (`pipectl schedule %s`), or set scheduler: \"databricks\" in its spec (docs/CI.md)",
					name, p.Schedule, name))
			case n > 1:
				problems = append(problems, fmt.Sprintf("pipeline %s is run by %d workflow crons (%s); keep exactly one", name, n, strings.Join(crons[name], ", ")))
			}
		case spec.SchedulerDatabricks:
			for _, where := range crons[name] {
				problems = append(problems, fmt.Sprintf("%s: a cron runs %s, whose spec's scheduler is databricks: its deployed job runs it on production targets, so this would run it twice; remove the cron, or set scheduler: \"github\" in its spec (docs/CI.md)",
					where, name))
			}
			prod := productionTargets(p)
			if len(prod) == 0 {
				problems = append(problems, fmt.Sprintf("pipeline %s: its spec's scheduler is databricks, but it has no production Databricks target, where pipectl deploy would unpause its job: nothing runs it on schedule", name))
			}
			for _, target := range prod {
				if !pushDeploys(invs, name, target, false) {
					problems = append(problems, fmt.Sprintf("pipeline %s: its spec's scheduler is databricks, but no push runs `pipectl deploy %s --target %s`: add it to deploy.yml's matrix, or nothing creates the job that schedules it",
						name, name, target))
				}
				if pushDeploys(invs, name, target, true) {
					problems = append(problems, fmt.Sprintf("pipeline %s: its spec's scheduler is databricks, but a push runs `pipectl deploy %s --target %s --destroy`, deleting the job that schedules it", name, name, target))
				}
			}
		default:
			problems = append(problems, fmt.Sprintf("pipeline %s: unknown scheduler %q", name, p.Scheduler))
		}
	}
	return problems
}

// withScheduler returns a copy of proj in which pipeline's scheduler is
// scheduler.
func withScheduler(t *testing.T, proj *spec.Project, pipeline, scheduler string) *spec.Project {
	t.Helper()
	p := proj.Pipelines[pipeline]
	if p == nil || p.Schedule == "" {
		t.Fatalf("no scheduled pipeline %s", pipeline)
	}
	cp := *proj
	cp.Pipelines = maps.Clone(proj.Pipelines)
	changed := *p
	changed.Scheduler = scheduler
	cp.Pipelines[pipeline] = &changed
	return &cp
}

// TestScheduleCheckerFails proves the schedule checks catch drift, a
// missing scheduler, a double one and one that disagrees with the spec,
// on altered copies of the workflows and specs, and that they accept a
// pipeline switched to scheduler: "databricks" the way docs/CI.md says.
func TestScheduleCheckerFails(t *testing.T) {
	c := loadCI(t)
	// edits maps a workflow's file name to (old, new) replacements.
	type edits map[string][][2]string
	check := func(t *testing.T, proj *spec.Project, ed edits) []string {
		t.Helper()
		var files []*workflows.File
		var invs []workflows.Invocation
		for _, f := range c.files {
			if reps, ok := ed[filepath.Base(f.Path)]; ok {
				src, err := os.ReadFile(f.Path)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range reps {
					if !bytes.Contains(src, []byte(r[0])) {
						t.Fatalf("%s has no %q", f.Path, r[0])
					}
					src = bytes.ReplaceAll(src, []byte(r[0]), []byte(r[1]))
				}
				f, err = workflows.Parse(f.Path, src, false)
				if err != nil {
					t.Fatal(err)
				}
			}
			files = append(files, f)
			more, errs := f.Invocations(pipelineTargets(proj))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			invs = append(invs, more...)
		}
		return scheduleProblems(proj, files, invs)
	}
	const inferenceCron = "  schedule:\n    - cron: \"0 6 * * *\"\n"
	noInferenceCron := edits{"inference.yml": {{inferenceCron, ""}}}
	databricksInference := withScheduler(t, c.proj, "sentiment-inference", spec.SchedulerDatabricks)
	tests := map[string]struct {
		proj *spec.Project
		ed   edits
		want string
	}{
		"cron drift": {c.proj, edits{"train.yml": {{`cron: "0 3 1 * *"`, `cron: "0 4 1 * *"`}}},
			`cron "0 4 1 * *" differs from the spec's schedule of sentiment-train: set it to "0 3 1 * *"`},
		"scheduled unscheduled": {c.proj, edits{"train.yml": {{`inputs.pipeline || 'sentiment-train'`, `inputs.pipeline || 'sentiment'`}}},
			"runs sentiment, which has no schedule"},
		// A cron that runs no pipeline is fine (live.yml's), but the pipeline
		// the cron ran is left without one.
		"cron without a pipeline": {c.proj, edits{"train.yml": {{"run: pipectl run", "run: echo pipectl run"}}},
			"pipeline sentiment-train: its spec's scheduler is github, but no workflow cron runs it"},
		"live.yml cron running a pipeline": {c.proj, edits{"live.yml": {{"run: go test -count=1", "run: pipectl run sentiment-train --target test && go test -count=1"}}},
			"pipeline sentiment-train is run by 2 workflow crons"},
		"github without a cron": {c.proj, noInferenceCron,
			"pipeline sentiment-inference: its spec's scheduler is github, but no workflow cron runs it"},
		"github twice": {c.proj, edits{"train.yml": {{`inputs.pipeline || 'sentiment-train'`, `inputs.pipeline || 'sentiment-inference'`}, {`cron: "0 3 1 * *"`, `cron: "0 6 * * *"`}}},
			"pipeline sentiment-inference is run by 2 workflow crons"},
		"databricks with a cron": {databricksInference, nil,
			"a cron runs sentiment-inference, whose spec's scheduler is databricks"},
		"databricks not deployed": {databricksInference, edits{"inference.yml": noInferenceCron["inference.yml"], "deploy.yml": {{"pipeline: [sentiment-inference, sentiment-train]", "pipeline: [sentiment-train]"}}},
			"no push runs `pipectl deploy sentiment-inference --target prod`"},
		"databricks destroyed": {databricksInference, edits{"inference.yml": noInferenceCron["inference.yml"], "deploy.yml": {{`run: pipectl deploy "$PIPELINE" --target "$TARGET"` + "\n", `run: pipectl deploy "$PIPELINE" --target "$TARGET" --destroy` + "\n"}}},
			"a push runs `pipectl deploy sentiment-inference --target prod --destroy`"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			problems := check(t, tc.proj, tc.ed)
			if all := strings.Join(problems, "\n"); !strings.Contains(all, tc.want) {
				t.Errorf("problems do not mention %q:\n%s", tc.want, all)
			}
		})
	}
	// Switching inference to Databricks as docs/CI.md describes (scheduler
	// in the spec, the workflow cron removed; deploy.yml already deploys
	// it) passes.
	t.Run("switched to databricks", func(t *testing.T) {
		if problems := check(t, databricksInference, noInferenceCron); len(problems) > 0 {
			t.Errorf("a pipeline switched to scheduler databricks is rejected:\n%s", strings.Join(problems, "\n"))
		}
	})
}

var (
	pinnedUses = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$`)
	tagComment = regexp.MustCompile(`^# v\d+(\.\d+)*$`)
	// secretUse is every allowed use of a secret: the token fallback, read
	// only when the environment's variable asks for it, and the check that
	// it is set.
	secretUse  = regexp.MustCompile(`secrets\.[A-Za-z_]+`)
	secretOKRe = regexp.MustCompile(`^\s*(DATABRICKS_TOKEN: \$\{\{ vars\.DATABRICKS_AUTH_TYPE == 'pat' && secrets\.DATABRICKS_TOKEN \|\| '' \}\}|HAS_TOKEN: \$\{\{ secrets\.DATABRICKS_TOKEN != '' \}\})$`)
)

// TestWorkflowHygiene checks the security and safety rules of docs/CI.md.
func TestWorkflowHygiene(t *testing.T) {
	c := loadCI(t)
	for _, p := range hygieneProblems(c.proj, c.files, c.invs) {
		t.Error(relPath(c.root, p))
	}
}

func hygieneProblems(proj *spec.Project, files []*workflows.File, invs []workflows.Invocation) []string {
	var problems []string
	add := func(path string, line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", path, line, fmt.Sprintf(format, args...)))
	}
	for _, f := range files {
		if slices.Contains(f.Events(), "pull_request_target") {
			add(f.Path, 1, "pull_request_target runs untrusted pull requests with the repository's secrets: use pull_request")
		}
		if p := f.Workflow.Permissions; !f.Action && (p == nil || p.All != nil || len(p.Scopes) > 0) {
			add(f.Path, cmp.Or(p, &actionlint.Permissions{Pos: &actionlint.Pos{Line: 1}}).Pos.Line, "the workflow must set permissions: {} and grant each job only what it needs")
		}
		for _, job := range f.Jobs() {
			id, perm := job.ID.Value, job.Permissions
			if perm == nil {
				if !f.Action {
					add(f.Path, job.Pos.Line, "job %s has no permissions: block", id)
				}
				perm = &actionlint.Permissions{}
			}
			if perm.All != nil {
				add(f.Path, perm.Pos.Line, "job %s: permissions: %s; list the scopes it needs", id, perm.All.Value)
			}
			for _, sc := range perm.Scopes {
				if sc.Value.Value == "write" && sc.Name.Value == "pull-requests" && commentOnly(job, perm) {
					continue // pr-plan.yml's comment job: no checkout, no OIDC token
				}
				if sc.Value.Value == "write" && sc.Name.Value != "id-token" {
					add(f.Path, sc.Name.Pos.Line, "job %s: %s: write; these workflows only read the repository", id, sc.Name.Value)
				}
				if sc.Value.Value == "write" && sc.Name.Value == "id-token" && job.Environment == nil {
					add(f.Path, job.Pos.Line, "job %s requests an OIDC token without an environment: the federation policy's subject is repo:<org>/<repo>:environment:<env>", id)
				}
			}
			for _, st := range job.Steps {
				a, ok := st.Exec.(*actionlint.ExecAction)
				if !ok || strings.HasPrefix(a.Uses.Value, "./") {
					continue
				}
				if !pinnedUses.MatchString(a.Uses.Value) {
					add(f.Path, a.Uses.Pos.Line, "%s is not pinned to a full commit SHA", a.Uses.Value)
				} else if c := f.Comment(a.Uses); !tagComment.MatchString(c) {
					add(f.Path, a.Uses.Pos.Line, "%s: put the release tag in a trailing comment (# vX.Y.Z), got %q", a.Uses.Value, c)
				}
			}
		}
		src, err := os.ReadFile(f.Path)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for i, line := range strings.Split(string(src), "\n") {
			if secretUse.MatchString(line) && !secretOKRe.MatchString(line) {
				add(f.Path, i+1, "secrets are used only for the token fallback (docs/CI.md): %s", strings.TrimSpace(line))
			}
		}
	}
	// Runs and deploys on Databricks: one at a time per pipeline and
	// target, across workflows, and never cancelled half-way.
	for _, inv := range invs {
		cl := readCall(inv.Args)
		p := proj.Pipelines[cl.pipeline]
		if (cl.command != "run" && cl.command != "deploy") || p == nil {
			continue
		}
		target := cl.target
		if target == "" {
			target = p.DefaultTarget
		}
		if tg := p.Targets[target]; tg == nil || tg.Executor != spec.ExecutorDatabricks {
			continue
		}
		want := fmt.Sprintf("pipectl-%s-%s-%s", cl.command, cl.pipeline, target)
		if inv.Concurrency != want {
			add(inv.File, inv.Line, "pipectl %s (%s) runs in concurrency group %q, want %q so that no two overlap", strings.Join(inv.Args, " "), inv.Context, inv.Concurrency, want)
		}
		if inv.CancelInProgress != "false" {
			add(inv.File, inv.Line, "pipectl %s (%s): set cancel-in-progress: false; a cancelled job leaves Databricks runs or a half-made deploy", strings.Join(inv.Args, " "), inv.Context)
		}
	}
	return problems
}

// commentOnly reports whether a job may write to pull requests: it checks
// out nothing (runs no code of the pull request), uses no action and gets
// no OIDC token, so a pull request cannot reach Databricks through it.
func commentOnly(job *actionlint.Job, perm *actionlint.Permissions) bool {
	for _, sc := range perm.Scopes {
		if sc.Name.Value != "pull-requests" && sc.Value.Value == "write" {
			return false
		}
	}
	for _, st := range job.Steps {
		if _, ok := st.Exec.(*actionlint.ExecAction); ok {
			return false
		}
	}
	return true
}

// TestHygieneCheckerFails proves the hygiene checks catch what they guard.
func TestHygieneCheckerFails(t *testing.T) {
	c := loadCI(t)
	path := filepath.Join(t.TempDir(), "bad.yml")
	src := `
name: bad
on: [push, pull_request_target]
jobs:
  a:
    runs-on: ubuntu-latest
    permissions:
      contents: write
      id-token: write
    concurrency:
      group: all
      cancel-in-progress: true
    env:
      DATABRICKS_TOKEN: ${{ secrets.DATABRICKS_TOKEN }}
    steps:
      - uses: actions/checkout@v6
      - uses: actions/setup-go@7a3fe6cf4cb3a834922a1244abfce67bcef6a0c5
      - run: pipectl deploy sentiment-inference --target prod
  comment:
    runs-on: ubuntu-latest
    permissions:
      pull-requests: write
    steps:
      - uses: actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2
      - run: gh pr comment
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := workflows.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	invs, errs := f.Invocations(pipelineTargets(c.proj))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	all := strings.Join(hygieneProblems(c.proj, []*workflows.File{f}, invs), "\n")
	for _, want := range []string{
		"pull_request_target", "must set permissions: {}", "contents: write", "without an environment",
		"actions/checkout@v6 is not pinned", "trailing comment", "secrets are used only for the token fallback",
		`concurrency group "all", want "pipectl-deploy-sentiment-inference-prod"`, "cancel-in-progress: false",
		"job comment: pull-requests: write", // it checks out the pull request's code
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems do not mention %q:\n%s", want, all)
		}
	}
}

// TestActionlint lints the workflows with actionlint (v1.7.12, pinned in
// go.mod). Its shellcheck rule runs when shellcheck is on PATH, as on
// GitHub's runners; scripts/actionlint.sh is the same check from a shell.
func TestActionlint(t *testing.T) {
	root := repoRoot(t)
	opts := &actionlint.LinterOptions{WorkingDir: root, Oneline: true}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = sc
	} else {
		t.Log("shellcheck is not on PATH: run: scripts are not shellchecked")
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, opts)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintRepository(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", relPath(root, e.Filepath), e.Line, e.Column, e.Message, e.Kind)
	}
}

// TestReleaseGate: a release deploys to prod only after the same workflow
// run (the same commit) trained on staging's workspace in the isolated test
// target: the job that deploys needs the job that runs sentiment-train on
// test, and test shares no schema or folder with staging.
func TestReleaseGate(t *testing.T) {
	c := loadCI(t)
	jobOf := func(command, pipeline, target string) (string, string) {
		for _, inv := range c.invs {
			cl := readCall(inv.Args)
			if cl.command == command && cl.pipeline == pipeline && cl.target == target && !cl.flags["--dry-run"] && inv.Event == "push" {
				return inv.File, inv.Job
			}
		}
		return "", ""
	}
	gateFile, gate := jobOf("run", "sentiment-train", "test")
	deployFile, deploy := jobOf("deploy", "sentiment-train", "prod")
	if gate == "" || deploy == "" || gateFile != deployFile {
		t.Fatalf("want a push workflow that runs sentiment-train on test and deploys it to prod: gate %s:%s, deploy %s:%s", gateFile, gate, deployFile, deploy)
	}
	for _, f := range c.files {
		if f.Path != deployFile {
			continue
		}
		var needs []string
		for _, n := range f.Workflow.Jobs[deploy].Needs {
			needs = append(needs, n.Value)
		}
		if !slices.Contains(needs, gate) {
			t.Errorf("%s: job %s deploys to prod without needing the staging gate %s (needs %v)", relPath(c.root, f.Path), deploy, gate, needs)
		}
	}
	p := c.proj.Pipelines["sentiment-train"]
	var test, staging struct {
		Catalog, Schema string
		Root            string `json:"workspace_root"`
		Experiments     string `json:"experiment_root"`
	}
	if err := json.Unmarshal(p.Targets["test"].Config("databricks"), &test); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(p.Targets["staging"].Config("databricks"), &staging); err != nil {
		t.Fatal(err)
	}
	if test.Catalog+"."+test.Schema == staging.Catalog+"."+staging.Schema || test.Root == staging.Root || test.Experiments == staging.Experiments {
		t.Errorf("target test shares a schema or folder with staging: %+v vs %+v", test, staging)
	}
}

// TestPRPlanComment: pull requests get the plan as one comment, updated in
// place: the jobs that reach Databricks skip forks, and the job that posts
// looks its comment up by the marker it writes.
func TestPRPlanComment(t *testing.T) {
	c := loadCI(t)
	var f *workflows.File
	for _, x := range c.files {
		if filepath.Base(x.Path) == "pr-plan.yml" {
			f = x
		}
	}
	if f == nil {
		t.Fatal("no .github/workflows/pr-plan.yml")
	}
	planned := map[string]bool{}
	for _, inv := range c.invs {
		if cl := readCall(inv.Args); inv.File == f.Path && cl.command == "deploy" && cl.flags["--dry-run"] && cl.target == "staging" {
			planned[cl.pipeline] = true
		}
	}
	for name, p := range c.proj.Pipelines {
		if p.Schedule != "" && !planned[name] {
			t.Errorf("pr-plan.yml does not dry-run deploy the scheduled pipeline %s on staging", name)
		}
	}
	var script string
	for _, job := range f.Jobs() {
		if job.If == nil || !strings.Contains(job.If.Value, "github.event.pull_request.head.repo.full_name == github.repository") {
			t.Errorf("pr-plan.yml: job %s does not skip fork pull requests", job.ID.Value)
		}
		for _, st := range job.Steps {
			if r, ok := st.Exec.(*actionlint.ExecRun); ok && strings.Contains(r.Run.Value, "gh api") {
				script = r.Run.Value
			}
		}
	}
	marker := regexp.MustCompile(`marker='(<!-- [a-z-]+ -->)'`).FindStringSubmatch(script)
	if marker == nil || !strings.Contains(script, `startswith(\"$marker\")`) || !strings.Contains(script, "--method PATCH") ||
		!strings.Contains(script, `"$marker"`) {
		t.Errorf("pr-plan.yml: the comment step must write a hidden marker, find its comment by it and PATCH it:\n%s", script)
	}
}
