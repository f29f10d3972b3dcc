package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Tags the notebooks set on every MLflow run they start (sentiment/context.py
// Context.tags); the executor finds a stage's runs by them.
const (
	TagRunID = "pipectl.run_id"
	TagStage = "pipectl.stage"
)

// mlflowAPI is the part of MLflow's REST API the executor uses.
type mlflowAPI struct {
	base   string
	client *http.Client
}

func newMLflowAPI(base string) *mlflowAPI {
	return &mlflowAPI{base: strings.TrimRight(base, "/"), client: &http.Client{Timeout: 10 * time.Second}}
}

func (a *mlflowAPI) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("MLflow %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// experimentIDs lists every active experiment.
func (a *mlflowAPI) experimentIDs(ctx context.Context) ([]string, error) {
	var ids []string
	token := ""
	for {
		var out struct {
			Experiments []struct {
				ID string `json:"experiment_id"`
			} `json:"experiments"`
			NextPageToken string `json:"next_page_token"`
		}
		in := map[string]any{"max_results": 1000, "view_type": "ACTIVE_ONLY"}
		if token != "" {
			in["page_token"] = token
		}
		if err := a.call(ctx, http.MethodPost, "/api/2.0/mlflow/experiments/search", in, &out); err != nil {
			return nil, err
		}
		for _, e := range out.Experiments {
			ids = append(ids, e.ID)
		}
		if out.NextPageToken == "" {
			return ids, nil
		}
		token = out.NextPageToken
	}
}

// runningRuns returns the ids of RUNNING runs tagged with the pipectl run
// id and stage.
func (a *mlflowAPI) runningRuns(ctx context.Context, runID, stage string) ([]string, error) {
	if strings.ContainsAny(runID+stage, `'\`) {
		return nil, fmt.Errorf("cannot search MLflow runs for a run id or stage name with quotes")
	}
	exps, err := a.experimentIDs(ctx)
	if err != nil || len(exps) == 0 {
		return nil, err
	}
	filter := fmt.Sprintf("tags.`%s` = '%s' and tags.`%s` = '%s' and attributes.status = 'RUNNING'", TagRunID, runID, TagStage, stage)
	var ids []string
	token := ""
	for {
		var out struct {
			Runs []struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"runs"`
			NextPageToken string `json:"next_page_token"`
		}
		in := map[string]any{"experiment_ids": exps, "filter": filter, "max_results": 1000}
		if token != "" {
			in["page_token"] = token
		}
		if err := a.call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/search", in, &out); err != nil {
			return nil, err
		}
		for _, r := range out.Runs {
			ids = append(ids, r.Info.RunID)
		}
		if out.NextPageToken == "" {
			return ids, nil
		}
		token = out.NextPageToken
	}
}

// killRun ends a run as KILLED.
func (a *mlflowAPI) killRun(ctx context.Context, runID string) error {
	return a.call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/update", map[string]any{
		"run_id": runID, "status": "KILLED", "end_time": time.Now().UnixMilli(),
	}, nil)
}

// runExperiment returns the experiment of a run.
func (a *mlflowAPI) runExperiment(ctx context.Context, runID string) (string, error) {
	var out struct {
		Run struct {
			Info struct {
				ExperimentID string `json:"experiment_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := a.call(ctx, http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+url.QueryEscape(runID), nil, &out); err != nil {
		return "", err
	}
	return out.Run.Info.ExperimentID, nil
}
