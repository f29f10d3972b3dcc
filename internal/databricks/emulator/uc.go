package emulator

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// Unity Catalog's securables as the emulator keeps them: a catalog,
// schema or volume exists when its directory under Dir/volumes does
// (catalogs listed in Options.Catalogs are created at start). Files API
// calls do not check that the volume exists, so tests that never set one
// up keep working.

// DefaultUserName is the identity of the token unless Options.UserName or
// SetUser says otherwise.
const DefaultUserName = "pipectl-emulator@example.com"

// SetUser changes the identity SCIM /Me reports for the token, as if
// another developer's token were used.
func (e *Emulator) SetUser(userName string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.userName = userName
}

func (e *Emulator) me(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	name := e.userName
	e.mu.Unlock()
	local, _, _ := strings.Cut(name, "@")
	writeJSON(w, iam.User{Id: "1", UserName: name, DisplayName: local, Active: true,
		Emails: []iam.ComplexValue{{Value: name, Primary: true, Type: "work"}}})
}

// Writes returns how many requests changed (or tried to change) state:
// every call but GET and HEAD.
func (e *Emulator) Writes() int {
	n := 0
	for ep, c := range e.Calls() {
		if !strings.HasPrefix(ep, "GET ") && !strings.HasPrefix(ep, "HEAD ") {
			n += c
		}
	}
	return n
}

func (e *Emulator) ucDir(parts ...string) string {
	return filepath.Join(append([]string{e.opts.Dir, "volumes"}, parts...)...)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// ucParts splits a full name into n valid identifiers.
func ucParts(full string, n int) ([]string, bool) {
	parts := strings.Split(full, ".")
	if len(parts) != n {
		return nil, false
	}
	for _, p := range parts {
		if !ucName.MatchString(p) {
			return nil, false
		}
	}
	return parts, true
}

func (e *Emulator) getCatalog(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api/2.1/unity-catalog/catalogs/")
	if _, ok := ucParts(name, 1); !ok || !isDir(e.ucDir(name)) {
		writeError(w, http.StatusNotFound, "CATALOG_DOES_NOT_EXIST", fmt.Sprintf("Catalog '%s' does not exist.", name))
		return
	}
	writeJSON(w, catalog.CatalogInfo{Name: name, FullName: name, Owner: "account users", CatalogType: catalog.CatalogTypeManagedCatalog,
		MetastoreId: metastoreID, CreatedAt: e.created(e.ucDir(name))})
}

const metastoreID = "11111111-2222-3333-4444-555555555555"

func (e *Emulator) created(dir string) int64 {
	if fi, err := os.Stat(dir); err == nil {
		return fi.ModTime().UnixMilli()
	}
	return time.Now().UnixMilli()
}

func (e *Emulator) schemaInfo(c, s string) catalog.SchemaInfo {
	return catalog.SchemaInfo{CatalogName: c, Name: s, FullName: c + "." + s, Owner: e.currentUser(), MetastoreId: metastoreID,
		CreatedAt: e.created(e.ucDir(c, s))}
}

func (e *Emulator) currentUser() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.userName
}

func (e *Emulator) getSchema(w http.ResponseWriter, r *http.Request) {
	full := strings.TrimPrefix(r.URL.Path, "/api/2.1/unity-catalog/schemas/")
	p, ok := ucParts(full, 2)
	if !ok || !isDir(e.ucDir(p...)) {
		writeError(w, http.StatusNotFound, "SCHEMA_DOES_NOT_EXIST", fmt.Sprintf("Schema '%s' does not exist.", full))
		return
	}
	writeJSON(w, e.schemaInfo(p[0], p[1]))
}

func (e *Emulator) createSchema(w http.ResponseWriter, r *http.Request) {
	var req catalog.CreateSchema
	if !decode(w, r, &req) {
		return
	}
	if !ucName.MatchString(req.CatalogName) || !ucName.MatchString(req.Name) {
		badRequest(w, "Invalid catalog_name %q or name %q", req.CatalogName, req.Name)
		return
	}
	if !isDir(e.ucDir(req.CatalogName)) {
		writeError(w, http.StatusNotFound, "CATALOG_DOES_NOT_EXIST", fmt.Sprintf("Catalog '%s' does not exist.", req.CatalogName))
		return
	}
	dir := e.ucDir(req.CatalogName, req.Name)
	if isDir(dir) {
		writeError(w, http.StatusConflict, "SCHEMA_ALREADY_EXISTS", fmt.Sprintf("Schema '%s' already exists", req.Name))
		return
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	info := e.schemaInfo(req.CatalogName, req.Name)
	info.Comment = req.Comment
	writeJSON(w, info)
}

func (e *Emulator) volumeInfo(c, s, v string) catalog.VolumeInfo {
	return catalog.VolumeInfo{CatalogName: c, SchemaName: s, Name: v, FullName: c + "." + s + "." + v,
		VolumeType: catalog.VolumeTypeManaged, Owner: e.currentUser(), MetastoreId: metastoreID,
		StorageLocation: "s3://emulator-metastore/" + c + "/" + s + "/" + v, CreatedAt: e.created(e.ucDir(c, s, v))}
}

func (e *Emulator) readVolume(w http.ResponseWriter, r *http.Request) {
	full := strings.TrimPrefix(r.URL.Path, "/api/2.1/unity-catalog/volumes/")
	p, ok := ucParts(full, 3)
	if !ok || !isDir(e.ucDir(p...)) {
		writeError(w, http.StatusNotFound, "VOLUME_DOES_NOT_EXIST", fmt.Sprintf("Volume '%s' does not exist.", full))
		return
	}
	writeJSON(w, e.volumeInfo(p[0], p[1], p[2]))
}

func (e *Emulator) createVolume(w http.ResponseWriter, r *http.Request) {
	var req catalog.CreateVolumeRequestContent
	if !decode(w, r, &req) {
		return
	}
	for _, n := range []string{req.CatalogName, req.SchemaName, req.Name} {
		if !ucName.MatchString(n) {
			badRequest(w, "Invalid name %q", n)
			return
		}
	}
	if req.VolumeType != catalog.VolumeTypeManaged && req.VolumeType != catalog.VolumeTypeExternal {
		badRequest(w, "volume_type must be MANAGED or EXTERNAL")
		return
	}
	if req.VolumeType == catalog.VolumeTypeExternal {
		badRequest(w, "The emulator has no external locations: create a MANAGED volume")
		return
	}
	if !isDir(e.ucDir(req.CatalogName, req.SchemaName)) {
		writeError(w, http.StatusNotFound, "SCHEMA_DOES_NOT_EXIST", fmt.Sprintf("Schema '%s.%s' does not exist.", req.CatalogName, req.SchemaName))
		return
	}
	dir := e.ucDir(req.CatalogName, req.SchemaName, req.Name)
	if isDir(dir) {
		writeError(w, http.StatusConflict, "VOLUME_ALREADY_EXISTS", fmt.Sprintf("Volume '%s' already exists", req.Name))
		return
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	info := e.volumeInfo(req.CatalogName, req.SchemaName, req.Name)
	info.Comment = req.Comment
	writeJSON(w, info)
}

// Job permissions (/api/2.0/permissions/jobs/{id}): the creator owns a new
// job; PUT replaces the direct permissions (keeping the owner when none
// is given), PATCH adds to them.

func (e *Emulator) jobPermissionsID(w http.ResponseWriter, r *http.Request) (*job, bool) {
	id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/api/2.0/permissions/jobs/"), 10, 64)
	if err != nil {
		badRequest(w, "Invalid job id")
		return nil, false
	}
	j, ok := e.jobs[id]
	if !ok {
		writeError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Job %d does not exist.", id))
		return nil, false
	}
	return j, true
}

func (j *job) permissionsResponse() jobs.JobPermissions {
	out := jobs.JobPermissions{ObjectId: "/jobs/" + strconv.FormatInt(j.id, 10), ObjectType: "job"}
	for _, a := range j.acl {
		out.AccessControlList = append(out.AccessControlList, jobs.JobAccessControlResponse{UserName: a.UserName,
			GroupName: a.GroupName, ServicePrincipalName: a.ServicePrincipalName,
			AllPermissions: []jobs.JobPermission{{PermissionLevel: a.PermissionLevel}}})
	}
	// Workspace admins always manage every job (inherited).
	out.AccessControlList = append(out.AccessControlList, jobs.JobAccessControlResponse{GroupName: "admins",
		AllPermissions: []jobs.JobPermission{{PermissionLevel: jobs.JobPermissionLevelCanManage, Inherited: true,
			InheritedFromObject: []string{"/jobs/"}}}})
	return out
}

func (e *Emulator) getJobPermissions(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.jobPermissionsID(w, r)
	if !ok {
		return
	}
	writeJSON(w, j.permissionsResponse())
}

var jobLevels = []jobs.JobPermissionLevel{jobs.JobPermissionLevelCanView, jobs.JobPermissionLevelCanManageRun,
	jobs.JobPermissionLevelCanManage, jobs.JobPermissionLevelIsOwner}

func (e *Emulator) setJobPermissions(w http.ResponseWriter, r *http.Request) {
	var req jobs.JobPermissionsRequest
	if !decode(w, r, &req) {
		return
	}
	owners := 0
	for _, a := range req.AccessControlList {
		principals := 0
		for _, p := range []string{a.UserName, a.GroupName, a.ServicePrincipalName} {
			if p != "" {
				principals++
			}
		}
		if principals != 1 {
			badRequest(w, "Each access control entry names exactly one of user_name, group_name and service_principal_name")
			return
		}
		if !slices.Contains(jobLevels, a.PermissionLevel) {
			badRequest(w, "Permission level %q is not valid for jobs", a.PermissionLevel)
			return
		}
		if a.PermissionLevel == jobs.JobPermissionLevelIsOwner {
			if a.GroupName != "" {
				badRequest(w, "A group cannot own a job")
				return
			}
			owners++
		}
	}
	if owners > 1 {
		badRequest(w, "The job must have exactly one owner.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.jobPermissionsID(w, r)
	if !ok {
		return
	}
	acl := req.AccessControlList
	if r.Method == http.MethodPatch {
		acl = append(slices.Clone(j.acl), acl...)
	} else if owners == 0 {
		for _, a := range j.acl {
			if a.PermissionLevel == jobs.JobPermissionLevelIsOwner {
				acl = append([]jobs.JobAccessControlRequest{a}, acl...)
			}
		}
	}
	j.acl = acl
	writeJSON(w, j.permissionsResponse())
}

// jobsUpdate is a partial update, as the workspace UI makes: top-level
// fields of new_settings replace the job's, fields_to_remove are cleared.
func (e *Emulator) jobsUpdate(w http.ResponseWriter, r *http.Request) {
	var req jobs.UpdateJob
	if !decode(w, r, &req) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.jobs[req.JobId]
	if !ok {
		jobNotExist(w, req.JobId)
		return
	}
	var merged map[string]any
	if err := convert(j.settings, &merged); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if req.NewSettings != nil {
		var patch map[string]any
		if err := convert(req.NewSettings, &patch); err != nil {
			badRequest(w, "%v", err)
			return
		}
		for k, v := range patch {
			merged[k] = v
		}
	}
	for _, f := range req.FieldsToRemove {
		delete(merged, f)
	}
	var settings jobs.JobSettings
	if err := convert(merged, &settings); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if err := validateSettings(&settings); err != nil {
		badRequest(w, "%v", err)
		return
	}
	j.settings = settings
	writeJSON(w, struct{}{})
}
