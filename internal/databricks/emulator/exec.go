package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// killGrace is how long a cancelled notebook process has to stop after
// SIGTERM before it is killed.
const killGrace = 5 * time.Second

// runTask runs one task: PENDING (compute start-up, or stuck there by a
// fault), RUNNING (the notebook), then TERMINATED with the outcome.
func (e *Emulator) runTask(ctx context.Context, r *run, t *taskRun) {
	defer e.running.Done()
	e.mu.Lock()
	faults := e.takeTaskFaults(t.spec.TaskKey)
	e.mu.Unlock()
	fault := func(k FaultKind) *TaskFault {
		for i := range faults {
			if faults[i].Kind == k {
				return &faults[i]
			}
		}
		return nil
	}
	end := func(s state) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if t.why != nil {
			s = *t.why
		}
		e.endTaskLocked(t, s)
	}

	if fault(StuckPending) != nil {
		<-ctx.Done()
		end(cancelled("Run cancelled."))
		return
	}
	if !sleepCtx(ctx, e.opts.PendingDelay+e.computeWait(r, t)) {
		end(cancelled("Run cancelled."))
		return
	}
	e.mu.Lock()
	if t.why == nil {
		t.st = state{life: jobs.RunLifeCycleStateRunning}
	}
	e.mu.Unlock()

	execCtx := ctx
	timeout := time.Duration(t.spec.TimeoutSeconds) * time.Second
	if r.timeout > 0 && (timeout == 0 || r.timeout < timeout) {
		timeout = r.timeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		execCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	timedOutState := func() state {
		return timedOut(fmt.Sprintf("Task %s timed out after %s.", t.spec.TaskKey, timeout))
	}

	switch {
	case fault(InternalError) != nil:
		end(internalError(jobs.TerminationTypeTypeInternalError, jobs.TerminationCodeCodeInternalError,
			"An internal error occurred in the Databricks platform (injected by the emulator). Please retry."))
		return
	case fault(CloudFailure) != nil:
		end(internalError(jobs.TerminationTypeTypeCloudFailure, jobs.TerminationCodeCodeCloudFailure,
			"The cloud provider could not provision compute (injected by the emulator)."))
		return
	}
	if f := fault(Slow); f != nil && !sleepCtx(execCtx, f.Delay) {
		if ctx.Err() == nil {
			end(timedOutState())
		} else {
			end(cancelled("Run cancelled."))
		}
		return
	}
	if f := fault(FailTask); f != nil {
		e.mu.Lock()
		t.errMsg, t.errTrace = f.Error, f.Trace
		e.mu.Unlock()
		end(failed(jobs.TerminationCodeCodeRunExecutionError, "Workload failed, see run output for details"))
		return
	}
	s := e.executeNotebook(execCtx, r, t)
	if execCtx.Err() != nil && ctx.Err() == nil {
		s = timedOutState()
	}
	end(s)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// executeNotebook runs the task's notebook with the Python runner and
// returns the state the task ends in.
func (e *Emulator) executeNotebook(ctx context.Context, r *run, t *taskRun) state {
	nb := t.spec.NotebookTask
	file, err := e.resolveNotebook(r, nb)
	if err != nil {
		e.setError(t, err.Error(), "")
		code := jobs.TerminationCodeCodeResourceNotFound
		if errors.Is(err, errCheckout) {
			code = jobs.TerminationCodeCodeRepositoryCheckoutFailed
		}
		return failed(code, err.Error())
	}
	params, err := e.taskParams(r, t)
	if err != nil {
		e.setError(t, err.Error(), "")
		return failed(jobs.TerminationCodeCodeInvalidRunConfiguration, err.Error())
	}
	e.mu.Lock()
	t.params = maps.Clone(params)
	upstream := map[string]map[string]any{}
	for _, o := range r.tasks {
		if o.values != nil {
			upstream[o.spec.TaskKey] = o.values
		}
	}
	e.mu.Unlock()
	if e.opts.Python == "" {
		msg := "The emulator has no Python to run notebooks (emulator.Options.Python is empty)."
		e.setError(t, msg, "")
		return internalError(jobs.TerminationTypeTypeInternalError, jobs.TerminationCodeCodeDriverError, msg)
	}
	mlflowURI := ""
	if slices.ContainsFunc(slices.Collect(maps.Values(params)), isDatabricksMLflowURI) {
		if mlflowURI, err = e.trackingURI(ctx); err != nil {
			if ctx.Err() != nil {
				return cancelled("Run cancelled.")
			}
			msg := "The emulator could not start its MLflow server: " + err.Error()
			e.setError(t, msg, "")
			return internalError(jobs.TerminationTypeTypeInternalError, jobs.TerminationCodeCodeInternalError, msg)
		}
	}

	dir := filepath.Join(e.opts.Dir, "runs", strconv.FormatInt(r.id, 10), fmt.Sprintf("%s-%d", t.spec.TaskKey, t.id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return internalError(jobs.TerminationTypeTypeInternalError, jobs.TerminationCodeCodeInternalError, err.Error())
	}
	files := map[string]string{}
	for _, name := range []string{"output.json", "values-out.json", "values-in.json", "error.json", "log.txt"} {
		files[name] = filepath.Join(dir, name)
	}
	in, _ := json.Marshal(upstream)
	if err := os.WriteFile(files["values-in.json"], []byte(e.toLocal(string(in))), 0o644); err != nil {
		return internalError(jobs.TerminationTypeTypeInternalError, jobs.TerminationCodeCodeInternalError, err.Error())
	}
	args := []string{"-m", "pipectl_runner", file}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		if isDatabricksMLflowURI(v) {
			v = mlflowURI
		} else {
			v = e.toLocal(v)
		}
		args = append(args, "--param", k+"="+v)
	}
	args = append(args, "--output", files["output.json"], "--task-values-out", files["values-out.json"],
		"--task-values-in", files["values-in.json"], "--error-output", files["error.json"])
	libDirs, err := e.installWheels(ctx, e.taskWheels(r, t.spec.Libraries, t.spec.EnvironmentKey))
	if err == nil {
		err = e.checkPins(e.taskPins(r, t.spec.Libraries, t.spec.EnvironmentKey))
	}
	if err != nil {
		if ctx.Err() != nil {
			return cancelled("Run cancelled.")
		}
		e.setError(t, err.Error(), "")
		return failed(jobs.TerminationCodeCodeLibraryInstallationError, err.Error())
	}
	cmd := exec.Command(e.opts.Python, args...)
	cmd.Dir = filepath.Dir(file)
	cmd.Env = e.notebookEnv(filepath.Dir(file), mlflowURI, libDirs)
	log, err := os.Create(files["log.txt"])
	if err != nil {
		return internalError(jobs.TerminationTypeTypeInternalError, jobs.TerminationCodeCodeInternalError, err.Error())
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	e.mu.Lock()
	t.logPath = files["log.txt"]
	e.mu.Unlock()

	code, err := runProcess(ctx, cmd)
	if err != nil {
		msg := "could not start the notebook process: " + err.Error()
		e.setError(t, msg, "")
		return internalError(jobs.TerminationTypeTypeInternalError, jobs.TerminationCodeCodeDriverError, msg)
	}
	e.collectValues(t, files["values-out.json"])
	if ctx.Err() != nil {
		return cancelled("Run cancelled.")
	}
	switch code {
	case 0:
		if out, err := os.ReadFile(files["output.json"]); err == nil {
			text := e.fromLocal(string(out))
			e.mu.Lock()
			if len(text) > maxOutputBytes {
				text, t.truncated = text[:maxOutputBytes], true
			}
			t.exitValue = text
			e.mu.Unlock()
		}
		return succeeded()
	case 1:
		var nbErr struct {
			Error      string `json:"error"`
			ErrorTrace string `json:"error_trace"`
		}
		if b, err := os.ReadFile(files["error.json"]); err == nil && json.Unmarshal(b, &nbErr) == nil {
			e.setError(t, e.fromLocal(nbErr.Error), e.fromLocal(nbErr.ErrorTrace))
		} else {
			e.setError(t, "The notebook failed without reporting an error.", tail(files["log.txt"]))
		}
		return failed(jobs.TerminationCodeCodeRunExecutionError, "Workload failed, see run output for details")
	default:
		msg := fmt.Sprintf("The notebook process exited with code %d.", code)
		e.setError(t, msg, e.fromLocal(tail(files["log.txt"])))
		return failed(jobs.TerminationCodeCodeDriverError, msg)
	}
}

func (e *Emulator) setError(t *taskRun, msg, trace string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t.errMsg, t.errTrace = msg, trace
}

func (e *Emulator) collectValues(t *taskRun, name string) {
	b, err := os.ReadFile(name)
	if err != nil {
		return
	}
	var values map[string]any
	if err := json.Unmarshal([]byte(e.fromLocal(string(b))), &values); err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t.values = values
}

// runProcess runs cmd in its own process group until it exits; when ctx
// ends first, the group gets SIGTERM and, after killGrace, SIGKILL. It
// returns the exit code (-1 for a signal).
func runProcess(ctx context.Context, cmd *exec.Cmd) (int, error) {
	inOwnGroup(cmd)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
			terminateGroup(cmd)
			select {
			case <-done:
			case <-time.After(killGrace):
				killGroup(cmd)
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), nil
		}
		return 0, err
	}
	return 0, nil
}

// notebookEnv is a notebook process's environment: PYTHONPATH holds
// Options.PythonPath, the notebook's folder, then the installed libraries.
func (e *Emulator) notebookEnv(nbDir, mlflowURI string, libDirs []string) []string {
	env := map[string]string{
		"PATH":                    "/usr/local/bin:/usr/bin:/bin",
		"HOME":                    filepath.Join(e.opts.Dir, "home"),
		"LANG":                    "C.UTF-8",
		"PYTHONUNBUFFERED":        "1",
		"PYTHONDONTWRITEBYTECODE": "1",
		"MPLBACKEND":              "Agg",
	}
	if e.opts.SparkMaster != "" {
		env["PIPECTL_SPARK_MASTER"] = e.opts.SparkMaster
		env["PIPECTL_STATE_DIR"] = filepath.Join(e.opts.Dir, "spark")
	}
	for _, kv := range e.opts.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	paths := slices.Clone(e.opts.PythonPath)
	if nbDir != "" {
		paths = append(paths, nbDir)
	}
	env["PYTHONPATH"] = strings.Join(append(paths, libDirs...), string(os.PathListSeparator))
	if mlflowURI != "" {
		env["MLFLOW_TRACKING_URI"], env["MLFLOW_REGISTRY_URI"] = mlflowURI, mlflowURI
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// isDatabricksMLflowURI reports whether v names Databricks' MLflow tracking
// or Unity Catalog registry.
func isDatabricksMLflowURI(v string) bool {
	for _, s := range []string{"databricks", "databricks-uc"} {
		if v == s || strings.HasPrefix(v, s+"://") {
			return true
		}
	}
	return false
}

// toLocal rewrites /Volumes/... and /Workspace/... paths in a parameter
// (at its start, or inside JSON strings) to the emulator's directories.
func (e *Emulator) toLocal(s string) string {
	for _, m := range e.mounts() {
		if strings.HasPrefix(s, m[0]) {
			s = m[1] + s[len(m[0]):]
		}
		s = strings.ReplaceAll(s, `"`+m[0], `"`+m[1])
	}
	return s
}

// fromLocal is the inverse of toLocal, for outputs and task values.
func (e *Emulator) fromLocal(s string) string {
	for _, m := range e.mounts() {
		s = strings.ReplaceAll(s, m[1], m[0])
	}
	return s
}

func (e *Emulator) mounts() [][2]string {
	return [][2]string{
		{"/Volumes/", filepath.Join(e.opts.Dir, "volumes") + "/"},
		{"/Workspace/", filepath.Join(e.opts.Dir, "workspace") + "/"},
	}
}

var errCheckout = errors.New("repository checkout failed")

// resolveNotebook returns the file that holds a task's notebook.
func (e *Emulator) resolveNotebook(r *run, nb *jobs.NotebookTask) (string, error) {
	source := nb.Source
	if source == "" {
		source = jobs.SourceWorkspace
		if r.git != nil {
			source = jobs.SourceGit
		}
	}
	if source == jobs.SourceWorkspace {
		return e.notebookFile(nb.NotebookPath)
	}
	root, err := e.checkoutRepo(r)
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, filepath.FromSlash(nb.NotebookPath))
	if !strings.HasPrefix(p, root+string(filepath.Separator)) {
		return "", fmt.Errorf("notebook path %s leaves the repository", nb.NotebookPath)
	}
	for _, cand := range []string{p + ".py", p} {
		if fi, err := os.Stat(cand); err == nil && !fi.IsDir() {
			return cand, nil
		}
	}
	return "", fmt.Errorf("Notebook %s not found in %s at %s", nb.NotebookPath, r.git.GitUrl, gitRef(r.git))
}

func gitRef(g *jobs.GitSource) string {
	switch {
	case g.GitCommit != "":
		return g.GitCommit
	case g.GitTag != "":
		return g.GitTag
	}
	return g.GitBranch
}

// checkoutRepo clones the run's git_source once per run. Only local
// repositories (a path or a file:// URL) can be reached from here.
func (e *Emulator) checkoutRepo(r *run) (string, error) {
	r.checkoutOnce.Do(func() {
		src, ok := strings.CutPrefix(r.git.GitUrl, "file://")
		if !ok && !filepath.IsAbs(src) {
			r.checkoutErr = fmt.Errorf("%w: the emulator cannot reach %s; it checks out local repositories only (a path or a file:// URL)", errCheckout, r.git.GitUrl)
			return
		}
		dir := filepath.Join(e.opts.Dir, "git", strconv.FormatInt(r.id, 10))
		_ = os.RemoveAll(dir)
		for _, args := range [][]string{
			{"clone", "--quiet", "--no-checkout", src, dir},
			{"-C", dir, "-c", "advice.detachedHead=false", "checkout", "--quiet", gitRef(r.git)},
		} {
			out, err := exec.CommandContext(r.ctx, "git", args...).CombinedOutput()
			if err != nil {
				r.checkoutErr = fmt.Errorf("%w: git %s: %v: %s", errCheckout, args[0], err, strings.TrimSpace(string(out)))
				return
			}
		}
		r.checkout = dir
	})
	return r.checkout, r.checkoutErr
}

// taskParams merges a task's base_parameters with the run's job parameters
// and notebook_params and resolves dynamic value references.
func (e *Emulator) taskParams(r *run, t *taskRun) (map[string]string, error) {
	params := maps.Clone(t.spec.NotebookTask.BaseParameters)
	if params == nil {
		params = map[string]string{}
	}
	maps.Copy(params, r.params)
	maps.Copy(params, r.notebookParams)
	e.mu.Lock()
	defer e.mu.Unlock()
	byKey := map[string]*taskRun{}
	for _, o := range r.tasks {
		byKey[o.spec.TaskKey] = o
	}
	start := r.start.UTC()
	lookup := func(ref string) (string, error) {
		switch ref {
		case "job.id", "job_id":
			return strconv.FormatInt(r.jobID, 10), nil
		case "job.name":
			return r.name, nil
		case "job.run_id", "run_id", "parent_run_id":
			return strconv.FormatInt(r.id, 10), nil
		case "job.repair_count":
			return strconv.Itoa(len(r.repairs)), nil
		case "task.execution_count", "task_retry_count":
			return "0", nil
		case "job.trigger.type":
			return "one_time", nil
		case "job.start_time.iso_date", "start_date":
			return start.Format("2006-01-02"), nil
		case "job.start_time.iso_datetime":
			return start.Format("2006-01-02T15:04:05.000Z07:00"), nil
		case "job.start_time.timestamp", "start_time":
			return strconv.FormatInt(start.UnixMilli(), 10), nil
		case "job.start_time.year":
			return strconv.Itoa(start.Year()), nil
		case "job.start_time.month":
			return strconv.Itoa(int(start.Month())), nil
		case "job.start_time.day":
			return strconv.Itoa(start.Day()), nil
		case "job.start_time.hour":
			return strconv.Itoa(start.Hour()), nil
		case "job.start_time.minute":
			return strconv.Itoa(start.Minute()), nil
		case "job.start_time.second":
			return strconv.Itoa(start.Second()), nil
		case "task.name", "task_key":
			return t.spec.TaskKey, nil
		case "task.run_id":
			return strconv.FormatInt(t.id, 10), nil
		case "task.notebook_path":
			return t.spec.NotebookTask.NotebookPath, nil
		case "workspace.id":
			return strconv.Itoa(workspaceID), nil
		case "workspace.url":
			return e.URL, nil
		}
		if m := jobParamRef.FindStringSubmatch(ref); m != nil {
			v, ok := r.params[m[1]]
			if !ok {
				return "", fmt.Errorf("job parameter %q is not defined", m[1])
			}
			return v, nil
		}
		if m := taskValueRef.FindStringSubmatch(ref); m != nil {
			o := byKey[m[1]]
			if o == nil || o.values == nil {
				return "", fmt.Errorf("task %q has not set any task values", m[1])
			}
			v, ok := o.values[m[2]]
			if !ok {
				return "", fmt.Errorf("task %q did not set the task value %q", m[1], m[2])
			}
			return valueString(v), nil
		}
		if m := taskAttrRef.FindStringSubmatch(ref); m != nil {
			o := byKey[m[1]]
			switch m[2] {
			case "run_id":
				return strconv.FormatInt(o.id, 10), nil
			case "result_state":
				return strings.ToLower(string(o.st.result)), nil
			case "error_code":
				return string(o.st.tcode), nil
			case "notebook_path":
				return o.spec.NotebookTask.NotebookPath, nil
			}
			return "0", nil
		}
		return "", fmt.Errorf("{{%s}} is not a valid dynamic value reference", ref)
	}
	for k, v := range params {
		resolved, err := resolveRefs(v, lookup)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %v", k, err)
		}
		params[k] = resolved
	}
	return params, nil
}

// tail returns the last lines of a log file.
func tail(name string) string {
	b, err := readFileLimit(name, 1<<20)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// readFileLimit reads at most the last limit bytes of a file.
func readFileLimit(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		if _, err := f.Seek(-limit, io.SeekEnd); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(f)
}
