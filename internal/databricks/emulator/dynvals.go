package emulator

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// dynRef matches a dynamic value reference, {{job.run_id}}.
var dynRef = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)

// jobRefs are the {{job.*}}, {{task.*}} and legacy references the emulator
// resolves (docs: "What is a dynamic value reference?").
var jobRefs = map[string]bool{
	"job.id": true, "job.name": true, "job.run_id": true, "job.repair_count": true,
	"job.trigger.type": true, "job.start_time.iso_date": true, "job.start_time.iso_datetime": true,
	"job.start_time.timestamp": true, "job.start_time.year": true, "job.start_time.month": true,
	"job.start_time.day": true, "job.start_time.hour": true, "job.start_time.minute": true,
	"job.start_time.second": true,
	"task.name":             true, "task.run_id": true, "task.execution_count": true, "task.notebook_path": true,
	"workspace.id": true, "workspace.url": true,
	"run_id": true, "job_id": true, "parent_run_id": true, "task_key": true, "start_date": true,
	"start_time": true, "task_retry_count": true,
}

var (
	taskValueRef = regexp.MustCompile(`^tasks\.([\w-]+)\.values\.([\w-]+)$`)
	taskAttrRef  = regexp.MustCompile(`^tasks\.([\w-]+)\.(run_id|result_state|error_code|execution_count|notebook_path)$`)
	jobParamRef  = regexp.MustCompile(`^job\.parameters\.([\w-]+)$`)
)

// checkRefs validates the dynamic value references in s against the task
// keys of the job.
func checkRefs(s string, taskKeys map[string]bool) error {
	for _, m := range dynRef.FindAllStringSubmatch(s, -1) {
		ref := m[1]
		switch {
		case jobRefs[ref], jobParamRef.MatchString(ref):
		case taskValueRef.MatchString(ref) || taskAttrRef.MatchString(ref):
			key := strings.SplitN(ref, ".", 3)[1]
			if !taskKeys[key] {
				return fmt.Errorf("the dynamic value reference %s names task %q, which is not a task of this job", m[0], key)
			}
		default:
			return fmt.Errorf("%s is not a valid dynamic value reference", m[0])
		}
	}
	return nil
}

// resolveRefs substitutes the references in s; lookup returns a value or an
// error for references whose value does not exist (yet).
func resolveRefs(s string, lookup func(ref string) (string, error)) (string, error) {
	var firstErr error
	out := dynRef.ReplaceAllStringFunc(s, func(m string) string {
		ref := dynRef.FindStringSubmatch(m)[1]
		v, err := lookup(ref)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	})
	return out, firstErr
}

// valueString renders a task value for a parameter: strings as they are,
// everything else as JSON.
func valueString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
