package plugin

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipectl/pipectl/engine/executor"
)

// groupExecutor runs a group stage after stage; a stage with param
// "wait" waits for its context to end.
type groupExecutor struct{ testExecutor }

func (groupExecutor) CanRunGroups() bool { return true }

func (groupExecutor) RunGroup(ctx context.Context, g executor.Group, sink executor.GroupSink) (executor.GroupResult, error) {
	sink("", executor.Event{Kind: executor.EventUnit, Text: "unit-7"}, nil)
	out := executor.GroupResult{Unit: "unit-7", Results: map[string]executor.Result{}}
	for _, s := range g.Stages {
		name := s.Task.Stage
		sink(name, executor.Event{Kind: executor.EventStarted}, nil)
		sink(name, executor.Event{Kind: executor.EventLog, Stream: "stdout", Text: "in " + name + " " + s.Task.Params["in"] + " repair=" + g.Repair}, nil)
		if s.Task.Params["wait"] != "" {
			<-ctx.Done()
			out.Results[name] = executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "stopped: " + context.Cause(ctx).Error()}}
			continue
		}
		r := executor.Result{Status: executor.Succeeded, Outputs: map[string]string{"out": name}}
		sink(name, executor.Event{}, &r)
		out.Results[name] = r
	}
	return out, nil
}

func TestRunGroupOverTheProtocol(t *testing.T) {
	c := inProcess(t, groupExecutor{})
	info, err := c.Describe(context.Background())
	if err != nil || !info.Groups {
		t.Fatalf("Describe = %+v, %v; want groups", info, err)
	}
	c.proc.info = info
	if !c.CanRunGroups() {
		t.Fatal("the client says the plugin cannot run groups")
	}
	var mu sync.Mutex
	var got []string
	sink := func(stage string, ev executor.Event, done *executor.Result) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case done != nil:
			got = append(got, fmt.Sprintf("%s done %s %s", stage, done.Status, done.Outputs["out"]))
		case ev.Kind == executor.EventLog:
			got = append(got, stage+" log "+ev.Text)
		default:
			got = append(got, fmt.Sprintf("%s %s %s", stage, ev.Kind, ev.Text))
		}
	}
	g := executor.Group{Repair: "unit-6", Stages: []executor.GroupStage{
		{Task: executor.Task{Stage: "a"}},
		{Task: executor.Task{Stage: "b", Params: map[string]string{"in": executor.OutputRef("a", "out")}}, Needs: []string{"a"}},
	}}
	res, err := c.RunGroup(context.Background(), g, sink)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{" unit unit-7", "a started ", "a log in a  repair=unit-6", "a done succeeded a",
		"b started ", "b log in b ${stages.a.outputs.out} repair=unit-6", "b done succeeded b"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if res.Unit != "unit-7" || res.Results["b"].Status != executor.Succeeded || res.Results["a"].Outputs["out"] != "a" {
		t.Errorf("result %+v", res)
	}
}

func TestRunGroupCancel(t *testing.T) {
	c := inProcess(t, groupExecutor{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	res, err := c.RunGroup(ctx, executor.Group{Stages: []executor.GroupStage{{Task: executor.Task{Stage: "s", Params: map[string]string{"wait": "1"}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Results["s"]; r.Status != executor.Cancelled || r.Error == nil || r.Error.Message != "stopped: context canceled" {
		t.Errorf("result %+v, want the executor's cancelled result", r)
	}
}

// An executor without groups (a plugin built before RunGroup) says so in
// Describe, and a RunGroup call to it is refused as the older protocol.
func TestRunGroupUnsupported(t *testing.T) {
	c := inProcess(t, testExecutor{})
	info, err := c.Describe(context.Background())
	if err != nil || info.Groups {
		t.Fatalf("Describe = %+v, %v; want no groups", info, err)
	}
	_, err = c.RunGroup(context.Background(), executor.Group{Stages: []executor.GroupStage{{Task: executor.Task{Stage: "s"}}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "older executor protocol") {
		t.Errorf("err = %v", err)
	}
}
