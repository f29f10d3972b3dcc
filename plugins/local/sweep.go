package local

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/record"
)

// stageKey names one stage of one pipectl run.
type stageKey struct{ run, stage string }

// begin records that this executor is running task's stage (so that
// sweeps leave its MLflow runs alone) and serves task's pipectl run; the
// returned func ends it.
func (e *Executor) begin(task executor.Task) func() {
	k := stageKey{task.RunID, task.Stage}
	e.mu.Lock()
	e.inFlight[k]++
	e.served[task.RunID] = true
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.inFlight[k]--; e.inFlight[k] <= 0 {
			delete(e.inFlight, k)
		}
	}
}

// sweepRuns marks KILLED the MLflow runs left RUNNING by notebooks that can
// no longer end them, before task's notebook starts. A notebook killed by
// SIGKILL cannot end its run, and neither can one whose executor or pipectl
// died with it (kill -9: the guard kills the notebook and the MLflow server
// together). A RUNNING run tagged with pipectl run R and stage S is dead
// when:
//
//   - (R, S) is task's own stage: pipectl runs one attempt of a stage at a
//     time and this attempt's notebook has not started (resume, retry);
//   - R is a run this executor serves and S is not running here: its
//     notebook ran in an executor process that died (the plugin was
//     killed, a new one serves the rest of the run);
//   - R's run record says it is over, or running with its owner process
//     gone (interrupted): the next run on this store cleans up after a
//     pipectl that was killed and never resumed.
//
// Runs of pipectl runs still alive in another process, and runs without a
// record here (interactive use), are left alone. Failures are notes, never
// a reason to fail the stage.
func (e *Executor) sweepRuns(ctx context.Context, task executor.Task, srv *server, sink executor.EventSink) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	note := func(format string, args ...any) {
		sink(executor.Event{Time: time.Now(), Kind: executor.EventLog, Stream: "stderr", Text: "pipectl: " + fmt.Sprintf(format, args...)})
	}
	api := newMLflowAPI(srv.URL())
	running, err := api.pipectlRunning(ctx)
	if err != nil {
		note("could not look for MLflow runs left RUNNING: %v", err)
		return
	}
	records := &record.Store{Dir: record.DirIn(stateDir(task))}
	ended := map[string]bool{} // pipectl run -> its record says it is not running
	for _, r := range running {
		if !e.deadRun(task, r.key, records, ended) {
			continue
		}
		if err := api.killRun(ctx, r.id); err != nil {
			note("could not mark MLflow run %s KILLED: %v", r.id, err)
			continue
		}
		note("marked MLflow run %s (pipectl run %s, stage %s) KILLED: the attempt that started it was stopped", r.id, r.key.run, r.key.stage)
	}
}

func (e *Executor) deadRun(task executor.Task, k stageKey, records *record.Store, ended map[string]bool) bool {
	if k == (stageKey{task.RunID, task.Stage}) {
		return true
	}
	e.mu.Lock()
	live, served := e.inFlight[k] > 0, e.served[k.run]
	e.mu.Unlock()
	switch {
	case live:
		return false
	case served:
		return true
	}
	over, ok := ended[k.run]
	if !ok {
		rec, err := records.Load(k.run) // refuses ids that are not pipectl run ids
		over = err == nil && rec.Effective() != record.Running
		ended[k.run] = over
	}
	return over
}

// taggedRun is an MLflow run that carries pipectl's tags.
type taggedRun struct {
	id  string
	key stageKey
}

// pipectlRunning returns the RUNNING runs with a pipectl.run_id tag.
func (a *mlflowAPI) pipectlRunning(ctx context.Context) ([]taggedRun, error) {
	exps, err := a.experimentIDs(ctx)
	if err != nil || len(exps) == 0 {
		return nil, err
	}
	var out []taggedRun
	token := ""
	for {
		var page struct {
			Runs []struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
				Data struct {
					Tags []struct {
						Key   string `json:"key"`
						Value string `json:"value"`
					} `json:"tags"`
				} `json:"data"`
			} `json:"runs"`
			NextPageToken string `json:"next_page_token"`
		}
		in := map[string]any{"experiment_ids": exps, "filter": "attributes.status = 'RUNNING'", "max_results": 1000}
		if token != "" {
			in["page_token"] = token
		}
		if err := a.call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/search", in, &page); err != nil {
			return nil, err
		}
		for _, r := range page.Runs {
			var k stageKey
			for _, t := range r.Data.Tags {
				switch t.Key {
				case TagRunID:
					k.run = t.Value
				case TagStage:
					k.stage = t.Value
				}
			}
			if k.run != "" && k.stage != "" {
				out = append(out, taggedRun{id: r.Info.RunID, key: k})
			}
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		token = page.NextPageToken
	}
}
