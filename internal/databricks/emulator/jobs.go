package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// job is a saved job.
type job struct {
	id       int64
	created  int64
	settings jobs.JobSettings
	// acl is the job's direct permissions.
	acl []jobs.JobAccessControlRequest
}

const creator = "pipectl-emulator@example.com"

var taskKeyPattern = regexp.MustCompile(`^[\w\-]{1,100}$`)

// validateTasks checks what runs/submit and jobs/create have in common: task
// keys, one notebook task each, dependencies without cycles, compute,
// environments, git source and dynamic value references.
func validateTasks(tasks []jobs.Task, envs []jobs.JobEnvironment, git *jobs.GitSource) error {
	if len(tasks) > 100 {
		return fmt.Errorf("A job can have at most 100 tasks, got %d", len(tasks))
	}
	envKeys := map[string]bool{}
	for _, env := range envs {
		if env.EnvironmentKey == "" {
			return fmt.Errorf("environment_key is required for every environment")
		}
		if envKeys[env.EnvironmentKey] {
			return fmt.Errorf("Duplicate environment key %q", env.EnvironmentKey)
		}
		if env.Spec == nil || (env.Spec.EnvironmentVersion == "" && env.Spec.Client == "" && env.Spec.BaseEnvironment == "") {
			return fmt.Errorf("Environment %q: spec.environment_version is required", env.EnvironmentKey)
		}
		envKeys[env.EnvironmentKey] = true
	}
	if git != nil {
		if git.GitUrl == "" || git.GitProvider == "" {
			return fmt.Errorf("git_source requires git_url and git_provider")
		}
		refs := 0
		for _, r := range []string{git.GitBranch, git.GitTag, git.GitCommit} {
			if r != "" {
				refs++
			}
		}
		if refs != 1 {
			return fmt.Errorf("git_source requires exactly one of git_branch, git_tag and git_commit")
		}
	}
	keys := map[string]bool{}
	for _, t := range tasks {
		if !taskKeyPattern.MatchString(t.TaskKey) {
			return fmt.Errorf("Invalid task_key %q: it must match %s", t.TaskKey, taskKeyPattern)
		}
		if keys[t.TaskKey] {
			return fmt.Errorf("Task key %q is not unique", t.TaskKey)
		}
		keys[t.TaskKey] = true
	}
	for _, t := range tasks {
		if err := validateTask(t, keys, envKeys, git); err != nil {
			return fmt.Errorf("Task %s: %v", t.TaskKey, err)
		}
	}
	if cycle := findCycle(tasks); cycle != "" {
		return fmt.Errorf("The job has a dependency cycle: %s", cycle)
	}
	return nil
}

func validateTask(t jobs.Task, keys, envKeys map[string]bool, git *jobs.GitSource) error {
	if t.NotebookTask == nil {
		return fmt.Errorf("the emulator runs notebook_task tasks only")
	}
	if t.SparkPythonTask != nil || t.PythonWheelTask != nil || t.SqlTask != nil || t.DbtTask != nil || t.PipelineTask != nil ||
		t.RunJobTask != nil || t.SparkJarTask != nil || t.SparkSubmitTask != nil || t.ConditionTask != nil || t.ForEachTask != nil {
		return fmt.Errorf("exactly one task type must be set")
	}
	nb := t.NotebookTask
	if nb.NotebookPath == "" {
		return fmt.Errorf("notebook_task.notebook_path is required")
	}
	source := nb.Source
	if source == "" {
		source = jobs.SourceWorkspace
		if git != nil {
			source = jobs.SourceGit
		}
	}
	switch source {
	case jobs.SourceWorkspace:
		if !strings.HasPrefix(nb.NotebookPath, "/") {
			return fmt.Errorf("notebook_task.notebook_path %q must be absolute for a WORKSPACE source", nb.NotebookPath)
		}
	case jobs.SourceGit:
		if git == nil {
			return fmt.Errorf("notebook_task.source is GIT but the job has no git_source")
		}
		if strings.HasPrefix(nb.NotebookPath, "/") {
			return fmt.Errorf("notebook_task.notebook_path %q must be relative to the repository for a GIT source", nb.NotebookPath)
		}
	default:
		return fmt.Errorf("notebook_task.source must be WORKSPACE or GIT, got %q", nb.Source)
	}
	compute := 0
	for _, set := range []bool{t.ExistingClusterId != "", t.NewCluster != nil, t.JobClusterKey != "", t.EnvironmentKey != ""} {
		if set {
			compute++
		}
	}
	if compute > 1 {
		return fmt.Errorf("only one of existing_cluster_id, new_cluster, job_cluster_key and environment_key may be set")
	}
	if t.EnvironmentKey != "" && !envKeys[t.EnvironmentKey] {
		return fmt.Errorf("environment_key %q does not name an environment of the job", t.EnvironmentKey)
	}
	if t.NewCluster != nil && (t.NewCluster.SparkVersion == "" || (t.NewCluster.NodeTypeId == "" && t.NewCluster.InstancePoolId == "")) {
		return fmt.Errorf("new_cluster requires spark_version and node_type_id")
	}
	for _, d := range t.DependsOn {
		if d.TaskKey == t.TaskKey {
			return fmt.Errorf("a task cannot depend on itself")
		}
		if !keys[d.TaskKey] {
			return fmt.Errorf("depends_on names task %q, which does not exist", d.TaskKey)
		}
	}
	if t.TimeoutSeconds < 0 {
		return fmt.Errorf("timeout_seconds must not be negative")
	}
	for name, v := range nb.BaseParameters {
		if err := checkRefs(v, keys); err != nil {
			return fmt.Errorf("base_parameters.%s: %v", name, err)
		}
	}
	if b, _ := json.Marshal(nb.BaseParameters); len(b) > 1<<20 {
		return fmt.Errorf("base_parameters exceed 1 MB")
	}
	return nil
}

// findCycle returns a dependency cycle as "a -> b -> a", or "".
func findCycle(tasks []jobs.Task) string {
	deps := map[string][]string{}
	for _, t := range tasks {
		for _, d := range t.DependsOn {
			deps[t.TaskKey] = append(deps[t.TaskKey], d.TaskKey)
		}
	}
	state := map[string]int{} // 1 visiting, 2 done
	var stack []string
	var visit func(string) string
	visit = func(k string) string {
		switch state[k] {
		case 1:
			i := slices.Index(stack, k)
			return strings.Join(append(slices.Clone(stack[i:]), k), " -> ")
		case 2:
			return ""
		}
		state[k] = 1
		stack = append(stack, k)
		for _, d := range deps[k] {
			if c := visit(d); c != "" {
				return c
			}
		}
		stack = stack[:len(stack)-1]
		state[k] = 2
		return ""
	}
	for _, t := range tasks {
		if c := visit(t.TaskKey); c != "" {
			return c
		}
	}
	return ""
}

var quartzFieldCount = map[int]bool{6: true, 7: true}

func validateSettings(s *jobs.JobSettings) error {
	if len(s.Name) > 4096 {
		return fmt.Errorf("name is longer than 4096 characters")
	}
	if err := validateTasks(s.Tasks, s.Environments, s.GitSource); err != nil {
		return err
	}
	if err := validateCompute(s.Tasks, s.JobClusters, false); err != nil {
		return err
	}
	if s.MaxConcurrentRuns < 0 || s.MaxConcurrentRuns > 1000 {
		return fmt.Errorf("max_concurrent_runs must be between 0 and 1000")
	}
	if s.TimeoutSeconds < 0 {
		return fmt.Errorf("timeout_seconds must not be negative")
	}
	if len(s.Tags) > 25 {
		return fmt.Errorf("A job can have at most 25 tags, got %d", len(s.Tags))
	}
	for k, v := range s.Tags {
		if k == "" || len(k) > 127 || len(v) > 255 {
			return fmt.Errorf("tag %q: keys are 1-127 characters and values at most 255", k)
		}
	}
	if sc := s.Schedule; sc != nil {
		fields := strings.Fields(sc.QuartzCronExpression)
		if !quartzFieldCount[len(fields)] {
			return fmt.Errorf("Invalid quartz_cron_expression %q: Quartz cron has 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year])", sc.QuartzCronExpression)
		}
		if (fields[3] == "?") == (fields[5] == "?") {
			return fmt.Errorf("Invalid quartz_cron_expression %q: exactly one of day-of-month and day-of-week must be '?'", sc.QuartzCronExpression)
		}
		if sc.TimezoneId == "" {
			return fmt.Errorf("schedule.timezone_id is required")
		}
		if _, err := time.LoadLocation(sc.TimezoneId); err != nil {
			return fmt.Errorf("Invalid timezone_id %q", sc.TimezoneId)
		}
		if sc.PauseStatus != "" && sc.PauseStatus != jobs.PauseStatusPaused && sc.PauseStatus != jobs.PauseStatusUnpaused {
			return fmt.Errorf("schedule.pause_status must be PAUSED or UNPAUSED")
		}
	}
	names := map[string]bool{}
	for _, p := range s.Parameters {
		if p.Name == "" || names[p.Name] {
			return fmt.Errorf("job parameter names must be set and unique, got %q", p.Name)
		}
		names[p.Name] = true
	}
	return nil
}

func (e *Emulator) jobsCreate(w http.ResponseWriter, r *http.Request) {
	var req jobs.CreateJob
	if !decode(w, r, &req) {
		return
	}
	var settings jobs.JobSettings
	if err := convert(req, &settings); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if err := validateSettings(&settings); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if settings.Name == "" {
		settings.Name = "Untitled"
	}
	if settings.MaxConcurrentRuns == 0 {
		settings.MaxConcurrentRuns = 1
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j := &job{id: e.id(), created: time.Now().UnixMilli(), settings: settings,
		acl: []jobs.JobAccessControlRequest{{UserName: e.userName, PermissionLevel: jobs.JobPermissionLevelIsOwner}}}
	e.jobs[j.id] = j
	writeJSON(w, jobs.CreateResponse{JobId: j.id})
}

func jobNotExist(w http.ResponseWriter, id int64) {
	badRequest(w, "Job %d does not exist.", id)
}

func (e *Emulator) jobsReset(w http.ResponseWriter, r *http.Request) {
	var req jobs.ResetJob
	if !decode(w, r, &req) {
		return
	}
	if err := validateSettings(&req.NewSettings); err != nil {
		badRequest(w, "%v", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.jobs[req.JobId]
	if !ok {
		jobNotExist(w, req.JobId)
		return
	}
	if req.NewSettings.Name == "" {
		req.NewSettings.Name = "Untitled"
	}
	if req.NewSettings.MaxConcurrentRuns == 0 {
		req.NewSettings.MaxConcurrentRuns = 1
	}
	j.settings = req.NewSettings
	writeJSON(w, struct{}{})
}

func (e *Emulator) jobsDelete(w http.ResponseWriter, r *http.Request) {
	var req jobs.DeleteJob
	if !decode(w, r, &req) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.jobs[req.JobId]; !ok {
		jobNotExist(w, req.JobId)
		return
	}
	delete(e.jobs, req.JobId)
	for _, run := range e.runs {
		if run.jobID == req.JobId && run.runType == jobs.RunTypeJobRun && !run.terminal() {
			e.cancelRunLocked(run, "The job was deleted.")
		}
	}
	writeJSON(w, struct{}{})
}

func queryInt(r *http.Request, name string) (int64, bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, true, err
}

func (e *Emulator) jobsGet(w http.ResponseWriter, r *http.Request) {
	id, ok, err := queryInt(r, "job_id")
	if err != nil || !ok {
		badRequest(w, "job_id is required and must be an integer")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j, found := e.jobs[id]
	if !found {
		jobNotExist(w, id)
		return
	}
	settings := j.settings
	runAs := creator
	if ra := settings.RunAs; ra != nil && ra.ServicePrincipalName+ra.UserName != "" {
		runAs = ra.ServicePrincipalName + ra.UserName
	}
	writeJSON(w, jobs.Job{JobId: j.id, CreatedTime: j.created, CreatorUserName: creator, RunAsUserName: runAs, Settings: &settings})
}

func (e *Emulator) jobsList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, hasLimit, err := queryInt(r, "limit")
	if err != nil || (hasLimit && (limit < 1 || limit > 100)) {
		badRequest(w, "limit must be between 1 and 100")
		return
	}
	if !hasLimit {
		limit = 20
	}
	offset, _, err := queryInt(r, "offset")
	if err != nil || offset < 0 {
		badRequest(w, "offset must be a non-negative integer")
		return
	}
	if tok := q.Get("page_token"); tok != "" {
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil || n < 0 {
			badRequest(w, "Invalid page_token")
			return
		}
		offset = n
	}
	expand, _ := strconv.ParseBool(q.Get("expand_tasks"))
	name := q.Get("name")
	// Settings are read under the lock: a concurrent reset replaces them.
	e.mu.Lock()
	var all []*job
	for _, j := range e.jobs {
		if name == "" || strings.EqualFold(j.settings.Name, name) {
			all = append(all, j)
		}
	}
	slices.SortFunc(all, func(a, b *job) int { return int(a.id - b.id) })
	resp := jobs.ListJobsResponse{}
	for i := offset; i < int64(len(all)) && i < offset+limit; i++ {
		settings := all[i].settings
		if !expand {
			settings.Tasks = nil
		}
		resp.Jobs = append(resp.Jobs, jobs.BaseJob{JobId: all[i].id, CreatedTime: all[i].created, CreatorUserName: creator, Settings: &settings})
	}
	e.mu.Unlock()
	if offset+limit < int64(len(all)) {
		resp.HasMore = true
		resp.NextPageToken = strconv.FormatInt(offset+limit, 10)
	}
	writeJSON(w, resp)
}

// convert copies between the SDK's request types that share JSON fields
// (SubmitTask and Task, CreateJob and JobSettings).
func convert(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}
