package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
)

// mlflowStartTimeout bounds the start of the MLflow server (it imports a
// lot of Python and migrates its database; slow on a busy machine).
const mlflowStartTimeout = 5 * time.Minute

// mlflowState is the MLflow tracking server the emulator started.
type mlflowState struct {
	once  sync.Once
	ready chan struct{}
	uri   string
	err   error
	mu    sync.Mutex
	cmd   *exec.Cmd
	exit  chan struct{}
}

// trackingURI returns the MLflow server behind the databricks URIs,
// starting the emulator's own on first use.
func (e *Emulator) trackingURI(ctx context.Context) (string, error) {
	if e.opts.MLflowTrackingURI != "" {
		return e.opts.MLflowTrackingURI, nil
	}
	e.mlflow.once.Do(func() {
		e.mlflow.ready = make(chan struct{})
		go func() {
			defer close(e.mlflow.ready)
			e.mlflow.uri, e.mlflow.err = e.startMLflow()
		}()
	})
	select {
	case <-e.mlflow.ready:
		return e.mlflow.uri, e.mlflow.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (e *Emulator) startMLflow() (string, error) {
	if e.opts.Python == "" {
		return "", errors.New("no Python (emulator.Options.Python) to run an MLflow server")
	}
	dir := filepath.Join(e.opts.Dir, "mlflow")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(e.opts.Python, "-m", "mlflow", "server",
		"--backend-store-uri", "sqlite:///"+filepath.ToSlash(filepath.Join(dir, "mlflow.db")),
		"--artifacts-destination", filepath.Join(dir, "artifacts"),
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--workers", "1")
	cmd.Dir = dir
	cmd.Env = append(e.notebookEnv(dir, "", nil), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false")
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return "", err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	inOwnGroup(cmd)
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s -m mlflow server: %w", e.opts.Python, err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exit) }()
	e.mlflow.mu.Lock()
	e.mlflow.cmd, e.mlflow.exit = cmd, exit
	e.mlflow.mu.Unlock()

	uri := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(mlflowStartTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exit:
			return "", fmt.Errorf("the MLflow server exited during start-up: %s", tail(filepath.Join(dir, "server.log")))
		case <-e.ctx.Done():
			return "", e.ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		resp, err := client.Get(uri + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				e.logf("MLflow server ready at %s", uri)
				return uri, nil
			}
		}
	}
	return "", fmt.Errorf("the MLflow server did not answer within %s (log: %s)", mlflowStartTimeout, filepath.Join(dir, "server.log"))
}

func (e *Emulator) stopMLflow() {
	e.mlflow.mu.Lock()
	cmd, exit := e.mlflow.cmd, e.mlflow.exit
	e.mlflow.mu.Unlock()
	if cmd == nil {
		return
	}
	terminateGroup(cmd)
	select {
	case <-exit:
	case <-time.After(10 * time.Second):
		killGroup(cmd)
		<-exit
	}
}

// getModelVersion answers the Unity Catalog model-version call from the
// MLflow registry: GET /api/2.1/unity-catalog/models/{full_name}/versions/{version}.
func (e *Emulator) getModelVersion(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/api/2.1/unity-catalog/models/")
	name, v, ok := strings.Cut(rest, "/versions/")
	version, err := strconv.Atoi(v)
	if !ok || err != nil || version < 1 {
		badRequest(w, "version must be a positive integer")
		return
	}
	parts := strings.Split(name, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		badRequest(w, "Model name %q must be a three-level name: <catalog>.<schema>.<model>", name)
		return
	}
	missing := func() {
		writeError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Model version %s/%d does not exist.", name, version))
	}
	if e.opts.MLflowTrackingURI == "" && e.opts.Python == "" {
		missing() // no registry, so no model
		return
	}
	uri, err := e.trackingURI(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE", "The model registry is unavailable: "+err.Error())
		return
	}
	if !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://") {
		missing() // a store without a server (tests): the emulator cannot look inside
		return
	}
	e.answerModelVersion(w, r, uri+"/api/2.0/mlflow/model-versions/get?"+url.Values{"name": {name}, "version": {strconv.Itoa(version)}}.Encode(), parts, missing)
}

// getModelVersionByAlias answers the Unity Catalog alias lookup from the
// MLflow registry: GET /api/2.1/unity-catalog/models/{full_name}/aliases/{alias}.
func (e *Emulator) getModelVersionByAlias(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/api/2.1/unity-catalog/models/")
	name, alias, ok := strings.Cut(rest, "/aliases/")
	if !ok || alias == "" || strings.Contains(alias, "/") {
		badRequest(w, "want /api/2.1/unity-catalog/models/<full_name>/aliases/<alias>")
		return
	}
	parts := strings.Split(name, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		badRequest(w, "Model name %q must be a three-level name: <catalog>.<schema>.<model>", name)
		return
	}
	missing := func() {
		writeError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Alias %s of model %s does not exist.", alias, name))
	}
	if e.opts.MLflowTrackingURI == "" && e.opts.Python == "" {
		missing()
		return
	}
	uri, err := e.trackingURI(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE", "The model registry is unavailable: "+err.Error())
		return
	}
	if !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://") {
		missing()
		return
	}
	e.answerModelVersion(w, r, uri+"/api/2.0/mlflow/registered-models/alias?"+url.Values{"name": {name}, "alias": {alias}}.Encode(), parts, missing)
}

// answerModelVersion asks the MLflow registry for one model version (by
// number or alias, get) and answers it as Unity Catalog's ModelVersionInfo.
func (e *Emulator) answerModelVersion(w http.ResponseWriter, r *http.Request, get string, parts []string, missing func()) {
	name := strings.Join(parts, ".")
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, get, nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE", "The model registry is unavailable: "+err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		missing()
		return
	}
	var body struct {
		ModelVersion struct {
			Name        string `json:"name"`
			Version     string `json:"version"`
			Created     int64  `json:"creation_timestamp"`
			Updated     int64  `json:"last_updated_timestamp"`
			RunID       string `json:"run_id"`
			Source      string `json:"source"`
			Status      string `json:"status"`
			Description string `json:"description"`
		} `json:"model_version"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", fmt.Sprintf("The model registry answered %s.", resp.Status))
		return
	}
	mv := body.ModelVersion
	version, err := strconv.Atoi(mv.Version)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", fmt.Sprintf("The model registry answered version %q.", mv.Version))
		return
	}
	status := catalog.ModelVersionInfoStatusReady
	switch mv.Status {
	case "PENDING_REGISTRATION":
		status = catalog.ModelVersionInfoStatusPendingRegistration
	case "FAILED_REGISTRATION":
		status = catalog.ModelVersionInfoStatusFailedRegistration
	}
	writeJSON(w, catalog.ModelVersionInfo{CatalogName: parts[0], SchemaName: parts[1], ModelName: parts[2], Version: version,
		CreatedAt: mv.Created, UpdatedAt: mv.Updated, RunId: mv.RunID, Source: mv.Source, Status: status, Comment: mv.Description,
		CreatedBy: creator, UpdatedBy: creator, Id: fmt.Sprintf("%s/%d", name, version)})
}

// MLflowStore is the backend store URI of the MLflow server the emulator
// starts (sqlite, under Dir), for tests that read what notebooks logged
// and registered; empty when Options.MLflowTrackingURI names another.
func (e *Emulator) MLflowStore() string {
	if e.opts.MLflowTrackingURI != "" {
		return ""
	}
	return "sqlite:///" + filepath.ToSlash(filepath.Join(e.opts.Dir, "mlflow", "mlflow.db"))
}
