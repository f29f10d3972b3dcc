package databricks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strconv"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/pipectl/pipectl/engine/diag"
)

// JobOps are the operations settings of a deployed job
// (databricks.job in a target; schemas/targets.cue, #JobOps).
type JobOps struct {
	EmailNotifications   *Notify           `json:"email_notifications,omitempty"`
	WebhookNotifications *Notify           `json:"webhook_notifications,omitempty"`
	NotificationSettings *NotifySettings   `json:"notification_settings,omitempty"`
	Permissions          []Permission      `json:"permissions,omitempty"`
	RunAs                *RunAs            `json:"run_as,omitempty"`
	Tags                 map[string]string `json:"tags,omitempty"`
	TimeoutSeconds       int               `json:"timeout_seconds,omitempty"`
	Health               *Health           `json:"health,omitempty"`
}

// Notify lists recipients (email addresses, or notification destination
// ids for webhooks) per event.
type Notify struct {
	OnFailure                          []string `json:"on_failure,omitempty"`
	OnSuccess                          []string `json:"on_success,omitempty"`
	OnStart                            []string `json:"on_start,omitempty"`
	OnDurationWarningThresholdExceeded []string `json:"on_duration_warning_threshold_exceeded,omitempty"`
}

// NotifySettings quiets notifications of skipped or cancelled runs.
type NotifySettings struct {
	NoAlertForSkippedRuns  bool `json:"no_alert_for_skipped_runs,omitempty"`
	NoAlertForCanceledRuns bool `json:"no_alert_for_canceled_runs,omitempty"`
}

// Permission grants one principal a level on the job.
type Permission struct {
	UserName             string `json:"user_name,omitempty"`
	GroupName            string `json:"group_name,omitempty"`
	ServicePrincipalName string `json:"service_principal_name,omitempty"`
	Level                string `json:"level"`
}

// RunAs is the identity the job runs as.
type RunAs struct {
	ServicePrincipalName string `json:"service_principal_name,omitempty"`
	UserName             string `json:"user_name,omitempty"`
}

// Health warns when a run takes longer than RunDurationWarningSeconds (a
// RUN_DURATION_SECONDS health rule; on_duration_warning_threshold_exceeded
// recipients hear of it).
type Health struct {
	RunDurationWarningSeconds int `json:"run_duration_warning_seconds,omitempty"`
}

var permissionLevels = []string{"CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE"}

// validateOps checks what the schema cannot: one principal per permission.
func (o *JobOps) validate(errf func(sub, format string, args ...any) *diag.Diagnostic) {
	if o == nil {
		return
	}
	for i, p := range o.Permissions {
		n := 0
		for _, s := range []string{p.UserName, p.GroupName, p.ServicePrincipalName} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			errf(fmt.Sprintf("job.permissions[%d]", i), "a permission names exactly one of user_name, group_name and service_principal_name").Fix =
				`one principal per entry, e.g. {group_name: "data-scientists", level: "CAN_MANAGE_RUN"}`
		}
		if !slices.Contains(permissionLevels, p.Level) {
			errf(fmt.Sprintf("job.permissions[%d].level", i), "level %q is not one of %v (the owner is whoever deploys)", p.Level, permissionLevels)
		}
	}
	if r := o.RunAs; r != nil && (r.ServicePrincipalName == "") == (r.UserName == "") {
		errf("job.run_as", "run_as names exactly one of service_principal_name and user_name").Fix =
			`e.g. run_as: service_principal_name: "<application id>"`
	}
}

func notifications(n *Notify) *jobs.JobEmailNotifications {
	if n == nil {
		return nil
	}
	return &jobs.JobEmailNotifications{OnFailure: n.OnFailure, OnSuccess: n.OnSuccess, OnStart: n.OnStart,
		OnDurationWarningThresholdExceeded: n.OnDurationWarningThresholdExceeded}
}

func webhooks(ids []string) []jobs.Webhook {
	var out []jobs.Webhook
	for _, id := range ids {
		out = append(out, jobs.Webhook{Id: id})
	}
	return out
}

// applyOps puts a target's operations settings on job settings. Tags are
// merged under pipectl's own (which win).
func applyOps(o *JobOps, s *jobs.JobSettings, tags map[string]string) {
	if o == nil {
		return
	}
	s.EmailNotifications = notifications(o.EmailNotifications)
	if w := o.WebhookNotifications; w != nil {
		s.WebhookNotifications = &jobs.WebhookNotifications{OnFailure: webhooks(w.OnFailure), OnSuccess: webhooks(w.OnSuccess),
			OnStart: webhooks(w.OnStart), OnDurationWarningThresholdExceeded: webhooks(w.OnDurationWarningThresholdExceeded)}
	}
	if n := o.NotificationSettings; n != nil {
		s.NotificationSettings = &jobs.JobNotificationSettings{NoAlertForSkippedRuns: n.NoAlertForSkippedRuns, NoAlertForCanceledRuns: n.NoAlertForCanceledRuns}
	}
	if r := o.RunAs; r != nil {
		s.RunAs = &jobs.JobRunAs{ServicePrincipalName: r.ServicePrincipalName, UserName: r.UserName}
	}
	s.TimeoutSeconds = o.TimeoutSeconds
	if h := o.Health; h != nil && h.RunDurationWarningSeconds > 0 {
		s.Health = &jobs.JobsHealthRules{Rules: []jobs.JobsHealthRule{{Metric: jobs.JobsHealthMetricRunDurationSeconds,
			Op: jobs.JobsHealthOperatorGreaterThan, Value: int64(h.RunDurationWarningSeconds)}}}
	}
	for k, v := range o.Tags {
		if _, own := tags[k]; !own {
			tags[k] = v
		}
	}
}

// readPermissions reads a job's direct permissions: its owner and the
// others, as a set.
func readPermissions(ctx context.Context, c *Client, jobID int64) (*jobs.JobAccessControlRequest, map[Permission]bool, error) {
	cur, err := c.W.Jobs.GetPermissions(ctx, jobs.GetJobPermissionsRequest{JobId: strconv.FormatInt(jobID, 10)})
	if err != nil {
		return nil, nil, c.fail(fmt.Sprintf("read the permissions of job %d", jobID), err)
	}
	var owner *jobs.JobAccessControlRequest
	have := map[Permission]bool{}
	for _, a := range cur.AccessControlList {
		for _, p := range a.AllPermissions {
			if p.Inherited {
				continue
			}
			if p.PermissionLevel == jobs.JobPermissionLevelIsOwner {
				owner = &jobs.JobAccessControlRequest{UserName: a.UserName, ServicePrincipalName: a.ServicePrincipalName,
					PermissionLevel: jobs.JobPermissionLevelIsOwner}
				continue
			}
			have[Permission{UserName: a.UserName, GroupName: a.GroupName, ServicePrincipalName: a.ServicePrincipalName, Level: string(p.PermissionLevel)}] = true
		}
	}
	return owner, have, nil
}

func permissionSet(ps []Permission) map[Permission]bool {
	out := map[Permission]bool{}
	for _, p := range ps {
		out[p] = true
	}
	return out
}

// setPermissions replaces the job's direct permissions with want, keeping
// its owner (one PUT).
func setPermissions(ctx context.Context, c *Client, jobID int64, owner *jobs.JobAccessControlRequest, want []Permission) error {
	req := jobs.JobPermissionsRequest{JobId: strconv.FormatInt(jobID, 10)}
	if owner != nil {
		req.AccessControlList = append(req.AccessControlList, *owner)
	}
	for _, p := range want {
		req.AccessControlList = append(req.AccessControlList, jobs.JobAccessControlRequest{UserName: p.UserName, GroupName: p.GroupName,
			ServicePrincipalName: p.ServicePrincipalName, PermissionLevel: jobs.JobPermissionLevel(p.Level)})
	}
	if _, err := c.W.Jobs.SetPermissions(ctx, req); err != nil {
		return c.fail(fmt.Sprintf("set the permissions of job %d", jobID), err)
	}
	return nil
}

// managedPermissions are the permissions the spec manages; nil leaves the
// workspace's alone.
func (c *Config) managedPermissions() []Permission {
	if c.Job == nil {
		return nil
	}
	return c.Job.Permissions
}

// Deploy records: what pipectl last deployed, kept in the workspace next
// to the code (<workspace_root>/.pipectl/deploys/<key>.json), so that any
// machine's next deploy can tell settings changed in the workspace since
// (drift) from changes of the spec.

func recordPath(cfg *Config, key string) (string, error) {
	root, err := workspaceFolder(cfg.WorkspaceRoot)
	if err != nil {
		return "", err
	}
	return path.Join(root, ".pipectl", "deploys", key+".json"), nil
}

// deployRecord is what a deploy deployed: the job's settings and, when
// the spec manages them, its permissions.
type deployRecord struct {
	Settings    map[string]any `json:"settings"`
	Permissions []Permission   `json:"permissions,omitempty"`
}

func (r *deployRecord) settings() map[string]any {
	if r == nil {
		return nil
	}
	return r.Settings
}

// readRecord returns the last deploy's record, nil when there is none (or
// it is unreadable).
func readRecord(ctx context.Context, c *Client, p string) (*deployRecord, error) {
	resp, err := c.W.Workspace.Export(ctx, workspace.ExportRequest{Path: p, Format: workspace.ExportFormatAuto})
	if err != nil {
		if errors.Is(err, apierr.ErrNotFound) || errors.Is(err, apierr.ErrResourceDoesNotExist) {
			return nil, nil
		}
		return nil, c.fail("read the deploy record "+p, err)
	}
	b, err := base64.StdEncoding.DecodeString(resp.Content)
	if err != nil {
		return nil, nil
	}
	var r deployRecord
	if json.Unmarshal(b, &r) != nil || r.Settings == nil {
		return nil, nil
	}
	return &r, nil
}

// writeRecord saves what was deployed, unless the record says so already.
func writeRecord(ctx context.Context, c *Client, p string, last *deployRecord, deployed jobs.JobSettings, perms []Permission) error {
	r := &deployRecord{Settings: settingsMap(deployed), Permissions: perms}
	b, _ := json.MarshalIndent(r, "", "  ")
	if last != nil {
		// Compare as read back: numbers are float64 in both.
		var again deployRecord
		_ = json.Unmarshal(b, &again)
		if reflect.DeepEqual(*last, again) {
			return nil
		}
	}
	if err := c.W.Workspace.Mkdirs(ctx, workspace.Mkdirs{Path: path.Dir(p)}); err != nil {
		return c.fail("create "+path.Dir(p), err)
	}
	err := c.W.Workspace.Import(ctx, workspace.Import{Path: p, Content: base64.StdEncoding.EncodeToString(b),
		Format: workspace.ImportFormatAuto, Overwrite: true})
	if err != nil {
		return c.fail("write the deploy record "+p, err)
	}
	return nil
}

// deleteRecord removes the deploy record of a destroyed job.
func deleteRecord(ctx context.Context, c *Client, cfg *Config, key string) error {
	p, err := recordPath(cfg, key)
	if err != nil {
		return err
	}
	err = c.W.Workspace.Delete(ctx, workspace.Delete{Path: p})
	if err != nil && !errors.Is(err, apierr.ErrNotFound) && !errors.Is(err, apierr.ErrResourceDoesNotExist) {
		return c.fail("delete the deploy record "+p, err)
	}
	return nil
}

// drift lists the top-level settings changed in the workspace since the
// last deploy: different from the record (compared on the fields the
// record has), or set in the workspace and absent from the record.
func drift(last map[string]any, current jobs.JobSettings) []string {
	if last == nil {
		return nil
	}
	cur := settingsMap(current)
	var out []string
	for k, v := range cur {
		lv, ok := last[k]
		switch {
		case !ok:
			if !isEmptyValue(v) && !filledIn[k] {
				out = append(out, k)
			}
		case exactDrift[k] && !reflect.DeepEqual(v, lv), !reflect.DeepEqual(prune(v, lv), lv):
			out = append(out, k)
		}
	}
	for k, lv := range last {
		if _, ok := cur[k]; !ok && !isEmptyValue(lv) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// exactDrift are settings compared whole: a recipient or tag added in
// the workspace is drift, while inside tasks the workspace adds defaults
// (run_if, source, ...) that are not.
var exactDrift = map[string]bool{"tags": true, "email_notifications": true, "webhook_notifications": true,
	"notification_settings": true, "health": true, "run_as": true}

// filledIn are settings the workspace fills in itself when pipectl sets
// none.
var filledIn = map[string]bool{"format": true, "run_as": true, "deployment": true}
