package emulator

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configure an emulator.
type Options struct {
	// Dir holds the emulator's state: workspace objects, Volumes, git
	// checkouts, task logs and the MLflow store. Required.
	Dir string
	// Token is the bearer token clients must send. Required.
	Token string
	// Addr is where to listen; default 127.0.0.1:0 (a free port).
	Addr string
	// Python runs notebooks (python -m pipectl_runner) and, unless
	// MLflowTrackingURI is set, the MLflow server; it needs the notebooks'
	// requirements. Empty: notebook tasks end in INTERNAL_ERROR.
	Python string
	// PythonPath is put first on the PYTHONPATH of notebook processes, e.g.
	// where pipectl_runner lives when the imported code does not carry it.
	// The notebook's own directory always follows.
	PythonPath []string
	// Env is added to the environment of notebook processes (KEY=VALUE).
	Env []string
	// SparkMaster, when set (e.g. "local[2]"), gives notebooks the Spark a
	// Databricks cluster provides: a stage run with engine "spark" starts a
	// local session with this master (PIPECTL_SPARK_MASTER) and, unless Env
	// sets PIPECTL_STATE_DIR, keeps its ivy cache, warehouse and metastore
	// under Dir. Python then needs pyspark and delta-spark
	// (notebooks/requirements-spark.txt) and Java 17 on PATH. Empty: a
	// notebook that asks for Spark starts none the emulator configured.
	SparkMaster string
	// MLflowTrackingURI is the MLflow tracking server behind the databricks
	// and databricks-uc URIs. Empty: the emulator starts one with Python on
	// first use, with its store under Dir.
	MLflowTrackingURI string
	// PendingDelay is how long a task run stays PENDING before it runs, as
	// compute starts; default 0.
	PendingDelay time.Duration
	// ComputeStartup is how long compute takes to start, paid once per
	// compute a run's tasks share: once per run for the tasks of one
	// serverless environment, once per task for new_cluster tasks (a
	// one-time run has no shared job clusters), never for an existing
	// cluster; a repair starts compute again. Default 0.
	ComputeStartup time.Duration
	// Logf receives the emulator's own diagnostics; nil discards them.
	Logf func(format string, args ...any)
	// UserName is the identity of the token (SCIM /Me); default
	// DefaultUserName. SetUser changes it.
	UserName string
	// Catalogs are the Unity Catalog catalogs the metastore has at start
	// (creating catalogs is an admin's job; pipectl setup only checks them).
	Catalogs []string
}

// Emulator is a running Databricks API emulator. Its methods are safe for
// concurrent use.
type Emulator struct {
	// URL is the workspace host, e.g. http://127.0.0.1:41234.
	URL string

	opts Options
	ln   net.Listener
	srv  *http.Server

	libs libInstalls

	mu      sync.Mutex
	nextID  int64
	objects map[string]*object
	jobs    map[int64]*job
	runs    map[int64]*run
	tasks   map[int64]*taskRun
	// submitTokens maps a runs/submit idempotency token to its run.
	submitTokens map[string]int64
	// runNowTokens maps "job_id/token" to the run run-now started.
	runNowTokens map[string]int64
	calls        map[string]int
	userName     string
	httpFaults   []*HTTPFault
	taskFaults   []*TaskFault

	mlflow mlflowState

	// ctx is cancelled by Close: every run stops.
	ctx     context.Context
	stop    context.CancelFunc
	running sync.WaitGroup
}

// Start starts an emulator listening on opts.Addr.
func Start(opts Options) (*Emulator, error) {
	if opts.Dir == "" {
		return nil, errors.New("emulator: Options.Dir is required")
	}
	if opts.Token == "" {
		return nil, errors.New("emulator: Options.Token is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	subs := []string{"workspace", "volumes", "runs", "git"}
	for _, c := range opts.Catalogs {
		if !ucName.MatchString(c) {
			return nil, fmt.Errorf("emulator: catalog %q is not a valid name", c)
		}
		subs = append(subs, filepath.Join("volumes", c))
	}
	if opts.UserName == "" {
		opts.UserName = DefaultUserName
	}
	for _, sub := range subs {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	e := &Emulator{
		URL:          "http://" + ln.Addr().String(),
		opts:         opts,
		ln:           ln,
		nextID:       1000,
		objects:      map[string]*object{},
		jobs:         map[int64]*job{},
		runs:         map[int64]*run{},
		tasks:        map[int64]*taskRun{},
		submitTokens: map[string]int64{},
		runNowTokens: map[string]int64{},
		calls:        map[string]int{},
		userName:     opts.UserName,
		ctx:          ctx,
		stop:         stop,
	}
	e.initWorkspace()
	e.srv = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.logf("serve: %v", err)
		}
	}()
	return e, nil
}

// Close stops every run (killing notebook processes), the MLflow server it
// started and the HTTP server.
func (e *Emulator) Close() error {
	e.stop()
	e.running.Wait()
	// Clients may hold connections they never used (dial races), which
	// Shutdown waits 5 s for; after a grace period, close them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var err error
	if e.srv.Shutdown(ctx) != nil {
		err = e.srv.Close()
	}
	e.stopMLflow()
	return err
}

func (e *Emulator) logf(format string, args ...any) {
	if e.opts.Logf != nil {
		e.opts.Logf(format, args...)
	}
}

// id returns a fresh identifier; callers hold e.mu.
func (e *Emulator) id() int64 {
	e.nextID++
	return e.nextID
}

// Calls returns how many requests each endpoint received ("METHOD /path",
// path parameters collapsed), including rejected ones.
func (e *Emulator) Calls() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.calls)
}

// ResetCalls zeroes the call counts.
func (e *Emulator) ResetCalls() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = map[string]int{}
}

// endpoint names a request for counting and fault matching: file paths and
// model names are collapsed.
func endpoint(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/2.0/fs/files/"):
		p = "/api/2.0/fs/files"
	case strings.HasPrefix(p, "/api/2.0/fs/directories/"):
		p = "/api/2.0/fs/directories"
	case strings.HasPrefix(p, "/api/2.1/unity-catalog/models/"):
		rest := strings.TrimPrefix(p, "/api/2.1/unity-catalog/models/")
		if strings.Contains(rest, "/versions/") {
			p = "/api/2.1/unity-catalog/models/{name}/versions/{version}"
		} else if strings.Contains(rest, "/aliases/") {
			p = "/api/2.1/unity-catalog/models/{name}/aliases/{alias}"
		} else {
			p = "/api/2.1/unity-catalog/models/{name}"
		}
	case strings.HasPrefix(p, "/api/2.1/unity-catalog/catalogs/"):
		p = "/api/2.1/unity-catalog/catalogs/{name}"
	case strings.HasPrefix(p, "/api/2.1/unity-catalog/schemas/"):
		p = "/api/2.1/unity-catalog/schemas/{full_name}"
	case strings.HasPrefix(p, "/api/2.1/unity-catalog/volumes/"):
		p = "/api/2.1/unity-catalog/volumes/{name}"
	case strings.HasPrefix(p, "/api/2.0/permissions/jobs/"):
		p = "/api/2.0/permissions/jobs/{job_id}"
	}
	return r.Method + " " + p
}

// ServeHTTP implements http.Handler.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep := endpoint(r)
	e.mu.Lock()
	e.calls[ep]++
	fault := e.takeHTTPFault(ep)
	var held <-chan struct{}
	if fault != nil && fault.Gather > 0 {
		held = fault.arrive()
	}
	e.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-time.After(30 * time.Second):
		case <-r.Context().Done():
			return
		}
	}
	if fault != nil {
		if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if fault.Status != 0 {
			fault.write(w)
			return
		}
		if fault.LoseResponse > 0 {
			if !e.authorized(w, r) {
				return
			}
			rec := httptest.NewRecorder()
			e.serve(ep, rec, r)
			select {
			case <-time.After(fault.LoseResponse):
			case <-r.Context().Done():
				return
			}
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
	}
	if ep == hostMetadataEndpoint {
		// A workspace answers its discovery document without credentials;
		// the SDK (v0.175+) reads it before the first call and warns on
		// stderr when refused.
		e.hostMetadata(w, r)
		return
	}
	if !e.authorized(w, r) {
		return
	}
	e.serve(ep, w, r)
}

const hostMetadataEndpoint = "GET /.well-known/databricks-config"

// hostMetadata serves the workspace's discovery document, shaped as the
// SDK's config.HostMetadata reads it.
func (e *Emulator) hostMetadata(w http.ResponseWriter, r *http.Request) {
	host := "http://" + r.Host
	writeJSON(w, map[string]any{
		"oidc_endpoint": host + "/oidc",
		"workspace_id":  "1234567890",
		"cloud":         "AWS",
		"host_type":     "workspace",
		"token_federation_default_oidc_audiences": []string{host + "/oidc/v1/token"},
	})
}

// serve routes an authorized request to its handler.
func (e *Emulator) serve(ep string, w http.ResponseWriter, r *http.Request) {
	h, ok := routes[ep]
	if !ok {
		switch {
		case strings.HasPrefix(ep, "GET /api/2.1/unity-catalog/models/{name}/versions/"):
			h = (*Emulator).getModelVersion
		default:
			writeError(w, http.StatusNotFound, "ENDPOINT_NOT_FOUND", fmt.Sprintf("No API found for '%s %s'", r.Method, r.URL.Path))
			return
		}
	}
	h(e, w, r)
}

var routes = map[string]func(*Emulator, http.ResponseWriter, *http.Request){
	"POST /api/2.0/workspace/mkdirs":    (*Emulator).workspaceMkdirs,
	"POST /api/2.0/workspace/import":    (*Emulator).workspaceImport,
	"GET /api/2.0/workspace/get-status": (*Emulator).workspaceGetStatus,
	"GET /api/2.0/workspace/list":       (*Emulator).workspaceList,
	"GET /api/2.0/workspace/export":     (*Emulator).workspaceExport,
	"POST /api/2.0/workspace/delete":    (*Emulator).workspaceDelete,

	"POST /api/2.2/jobs/runs/submit":    (*Emulator).runsSubmit,
	"GET /api/2.2/jobs/runs/get":        (*Emulator).runsGet,
	"GET /api/2.2/jobs/runs/get-output": (*Emulator).runsGetOutput,
	"POST /api/2.2/jobs/runs/cancel":    (*Emulator).runsCancel,
	"POST /api/2.2/jobs/runs/repair":    (*Emulator).runsRepair,
	"POST /api/2.2/jobs/create":         (*Emulator).jobsCreate,
	"POST /api/2.2/jobs/reset":          (*Emulator).jobsReset,
	"GET /api/2.2/jobs/get":             (*Emulator).jobsGet,
	"GET /api/2.2/jobs/list":            (*Emulator).jobsList,
	"POST /api/2.2/jobs/delete":         (*Emulator).jobsDelete,
	"POST /api/2.2/jobs/run-now":        (*Emulator).jobsRunNow,
	"POST /api/2.2/jobs/update":         (*Emulator).jobsUpdate,

	"GET /api/2.0/permissions/jobs/{job_id}":   (*Emulator).getJobPermissions,
	"PUT /api/2.0/permissions/jobs/{job_id}":   (*Emulator).setJobPermissions,
	"PATCH /api/2.0/permissions/jobs/{job_id}": (*Emulator).setJobPermissions,

	"PUT /api/2.0/fs/files":          (*Emulator).filesUpload,
	"GET /api/2.0/fs/files":          (*Emulator).filesDownload,
	"HEAD /api/2.0/fs/files":         (*Emulator).filesHead,
	"DELETE /api/2.0/fs/files":       (*Emulator).filesDelete,
	"PUT /api/2.0/fs/directories":    (*Emulator).dirsCreate,
	"HEAD /api/2.0/fs/directories":   (*Emulator).dirsHead,
	"GET /api/2.0/fs/directories":    (*Emulator).dirsList,
	"DELETE /api/2.0/fs/directories": (*Emulator).dirsDelete,

	"GET /api/2.1/unity-catalog/models/{name}/versions/{version}": (*Emulator).getModelVersion,
	"GET /api/2.1/unity-catalog/models/{name}/aliases/{alias}":    (*Emulator).getModelVersionByAlias,
	"GET /api/2.0/preview/scim/v2/Me":                             (*Emulator).me,

	"GET /api/2.1/unity-catalog/catalogs/{name}":     (*Emulator).getCatalog,
	"GET /api/2.1/unity-catalog/schemas/{full_name}": (*Emulator).getSchema,
	"POST /api/2.1/unity-catalog/schemas":            (*Emulator).createSchema,
	"GET /api/2.1/unity-catalog/volumes/{name}":      (*Emulator).readVolume,
	"POST /api/2.1/unity-catalog/volumes":            (*Emulator).createVolume,
}

// authorized checks the bearer token: missing credentials are 401, a wrong
// token 403, as on a workspace.
func (e *Emulator) authorized(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if h == "" || !ok {
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(e.opts.Token)) != 1 {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "Invalid access token.")
		return false
	}
	return true
}

// writeError writes the error shape of the Databricks REST API.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error_code": code, "message": message})
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf(format, args...))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON request body into v; a malformed body is answered
// with 400 MALFORMED_REQUEST and false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := readBody(w, r)
	return ok && decodeBytes(w, body, v)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "MALFORMED_REQUEST", "Could not read the request body.")
		return nil, false
	}
	return body, true
}

func decodeBytes(w http.ResponseWriter, body []byte, v any) bool {
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request - "+err.Error())
		return false
	}
	return true
}
