package emulator

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/workspace"
)

// maxImportBytes is the workspace import limit (10 MB of content).
const maxImportBytes = 10 << 20

// notebookHeader starts every Python notebook in source format.
const notebookHeader = "# Databricks notebook source"

// object is a workspace object. Notebooks and files keep their content on
// disk under Dir/workspace (notebooks with a .py suffix, so the runner can
// execute them and import the modules beside them).
type object struct {
	path     string
	typ      workspace.ObjectType
	language workspace.Language
	id       int64
	created  int64
	modified int64
	size     int64
}

func (e *Emulator) initWorkspace() {
	now := time.Now().UnixMilli()
	for _, p := range []string{"/", "/Users", "/Shared", "/Repos"} {
		e.objects[p] = &object{path: p, typ: workspace.ObjectTypeDirectory, id: e.id(), created: now, modified: now}
		_ = os.MkdirAll(e.diskPath(p, workspace.ObjectTypeDirectory), 0o755)
	}
}

// normPath validates a workspace path and strips the /Workspace prefix
// (the FUSE view of the same tree).
func normPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("Path must be specified")
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("Path (%s) must be absolute", p)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return "", fmt.Errorf("Path (%s) must not contain '..'", p)
	}
	c := path.Clean(p)
	if c == "/Workspace" {
		return "/", nil
	}
	if rest, ok := strings.CutPrefix(c, "/Workspace/"); ok {
		c = "/" + rest
	}
	return c, nil
}

// diskPath is where an object's content lives on disk.
func (e *Emulator) diskPath(p string, typ workspace.ObjectType) string {
	d := filepath.Join(e.opts.Dir, "workspace", filepath.FromSlash(p))
	if typ == workspace.ObjectTypeNotebook {
		d += ".py"
	}
	return d
}

func notExist(w http.ResponseWriter, p string) {
	writeError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Path (%s) doesn't exist.", p))
}

func (o *object) info(display string) workspace.ObjectInfo {
	info := workspace.ObjectInfo{Path: display, ObjectType: o.typ, ObjectId: o.id, CreatedAt: o.created, ModifiedAt: o.modified,
		ResourceId: fmt.Sprint(o.id)}
	if o.typ == workspace.ObjectTypeNotebook {
		info.Language = o.language
	}
	if o.typ == workspace.ObjectTypeFile || o.typ == workspace.ObjectTypeNotebook {
		info.Size = o.size
	}
	return info
}

// displayPath renders p the way the caller wrote its prefix.
func displayPath(asked, p string) string {
	if asked == "/Workspace" || strings.HasPrefix(asked, "/Workspace/") {
		if p == "/" {
			return "/Workspace"
		}
		return "/Workspace" + p
	}
	return p
}

// mkdirsLocked creates p and its parents; callers hold e.mu.
func (e *Emulator) mkdirsLocked(p string) error {
	var parts []string
	for q := p; q != "/"; q = path.Dir(q) {
		parts = append(parts, q)
	}
	now := time.Now().UnixMilli()
	for i := len(parts) - 1; i >= 0; i-- {
		q := parts[i]
		if o, ok := e.objects[q]; ok {
			if o.typ != workspace.ObjectTypeDirectory {
				return fmt.Errorf("Cannot create directory %s because %s is an existing %s.", p, q, strings.ToLower(string(o.typ)))
			}
			continue
		}
		if err := os.MkdirAll(e.diskPath(q, workspace.ObjectTypeDirectory), 0o755); err != nil {
			return err
		}
		e.objects[q] = &object{path: q, typ: workspace.ObjectTypeDirectory, id: e.id(), created: now, modified: now}
	}
	return nil
}

func (e *Emulator) workspaceMkdirs(w http.ResponseWriter, r *http.Request) {
	var req workspace.Mkdirs
	if !decode(w, r, &req) {
		return
	}
	p, err := normPath(req.Path)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.mkdirsLocked(p); err != nil {
		writeError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", err.Error())
		return
	}
	writeJSON(w, struct{}{})
}

func (e *Emulator) workspaceImport(w http.ResponseWriter, r *http.Request) {
	var req workspace.Import
	if !decode(w, r, &req) {
		return
	}
	p, err := normPath(req.Path)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	content, err := base64.StdEncoding.DecodeString(req.Content)
	if err != nil {
		badRequest(w, "content must be base64 encoded: %v", err)
		return
	}
	if len(content) > maxImportBytes {
		writeError(w, http.StatusBadRequest, "MAX_NOTEBOOK_SIZE_EXCEEDED", fmt.Sprintf("File size imported is (%d bytes), exceeded max size (%d bytes)", len(content), maxImportBytes))
		return
	}
	typ := workspace.ObjectTypeFile
	lang := req.Language
	switch req.Format {
	case workspace.ImportFormatSource:
		if lang == "" {
			badRequest(w, "Language must be specified for SOURCE format import of %s", req.Path)
			return
		}
		if lang != workspace.LanguagePython {
			badRequest(w, "the emulator imports Python notebooks only, not %s", lang)
			return
		}
		typ = workspace.ObjectTypeNotebook
	case workspace.ImportFormatAuto, "":
		if strings.HasSuffix(p, ".py") && bytes.HasPrefix(content, []byte(notebookHeader)) {
			typ, lang = workspace.ObjectTypeNotebook, workspace.LanguagePython
			p = strings.TrimSuffix(p, ".py")
		}
	case workspace.ImportFormatRaw:
	default:
		badRequest(w, "the emulator does not import format %s (use SOURCE, AUTO or RAW)", req.Format)
		return
	}
	if typ == workspace.ObjectTypeNotebook && !bytes.HasPrefix(content, []byte(notebookHeader)) {
		content = append([]byte(notebookHeader+"\n"), content...)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	parent := path.Dir(p)
	if po, ok := e.objects[parent]; !ok || po.typ != workspace.ObjectTypeDirectory {
		writeError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("The parent folder (%s) does not exist.", displayPath(req.Path, parent)))
		return
	}
	if twin := e.diskTwin(p, typ); twin != "" {
		writeError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("Path (%s) clashes with %s: the emulator keeps notebooks on disk as <name>.py", displayPath(req.Path, p), twin))
		return
	}
	old, exists := e.objects[p]
	if exists && (old.typ == workspace.ObjectTypeDirectory || !req.Overwrite) {
		writeError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("Path (%s) already exists.", displayPath(req.Path, p)))
		return
	}
	if exists && old.typ != typ {
		_ = os.Remove(e.diskPath(p, old.typ))
	}
	if err := writeFileAtomic(e.diskPath(p, typ), content); err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	now := time.Now().UnixMilli()
	o := &object{path: p, typ: typ, language: lang, id: e.id(), created: now, modified: now, size: int64(len(content))}
	if exists {
		o.id, o.created = old.id, old.created
	}
	e.objects[p] = o
	writeJSON(w, struct{}{})
}

func (e *Emulator) workspaceGetStatus(w http.ResponseWriter, r *http.Request) {
	asked := r.URL.Query().Get("path")
	p, err := normPath(asked)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.objects[p]
	if !ok {
		notExist(w, asked)
		return
	}
	writeJSON(w, o.info(displayPath(asked, p)))
}

func (e *Emulator) workspaceList(w http.ResponseWriter, r *http.Request) {
	asked := r.URL.Query().Get("path")
	p, err := normPath(asked)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.objects[p]
	if !ok {
		notExist(w, asked)
		return
	}
	resp := workspace.ListResponse{}
	if o.typ != workspace.ObjectTypeDirectory {
		resp.Objects = []workspace.ObjectInfo{o.info(displayPath(asked, p))}
	} else {
		for q, c := range e.objects {
			if q != "/" && path.Dir(q) == p {
				resp.Objects = append(resp.Objects, c.info(displayPath(asked, q)))
			}
		}
		slices.SortFunc(resp.Objects, func(a, b workspace.ObjectInfo) int { return strings.Compare(a.Path, b.Path) })
	}
	writeJSON(w, resp)
}

func (e *Emulator) workspaceExport(w http.ResponseWriter, r *http.Request) {
	asked := r.URL.Query().Get("path")
	p, err := normPath(asked)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	e.mu.Lock()
	o, ok := e.objects[p]
	e.mu.Unlock()
	if !ok {
		notExist(w, asked)
		return
	}
	if o.typ == workspace.ObjectTypeDirectory {
		badRequest(w, "Path (%s) is a directory; export it in DBC format, which the emulator does not support.", asked)
		return
	}
	data, err := os.ReadFile(e.diskPath(p, o.typ))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	ft := "py"
	if o.typ == workspace.ObjectTypeFile {
		ft = strings.TrimPrefix(path.Ext(p), ".")
	}
	writeJSON(w, workspace.ExportResponse{Content: base64.StdEncoding.EncodeToString(data), FileType: ft})
}

func (e *Emulator) workspaceDelete(w http.ResponseWriter, r *http.Request) {
	var req workspace.Delete
	if !decode(w, r, &req) {
		return
	}
	p, err := normPath(req.Path)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.objects[p]
	if !ok {
		notExist(w, req.Path)
		return
	}
	if p == "/" {
		badRequest(w, "The root folder cannot be deleted.")
		return
	}
	var children []string
	for q := range e.objects {
		if strings.HasPrefix(q, p+"/") {
			children = append(children, q)
		}
	}
	if o.typ == workspace.ObjectTypeDirectory && len(children) > 0 && !req.Recursive {
		writeError(w, http.StatusBadRequest, "DIRECTORY_NOT_EMPTY", fmt.Sprintf("Folder (%s) is not empty", req.Path))
		return
	}
	for _, q := range children {
		delete(e.objects, q)
	}
	delete(e.objects, p)
	_ = os.RemoveAll(e.diskPath(p, o.typ))
	writeJSON(w, struct{}{})
}

// diskTwin reports an object that would share p's file on disk: notebook
// "x" and file "x.py". Callers hold e.mu.
func (e *Emulator) diskTwin(p string, typ workspace.ObjectType) string {
	twin := p + ".py"
	if typ != workspace.ObjectTypeNotebook {
		var ok bool
		if twin, ok = strings.CutSuffix(p, ".py"); !ok {
			return ""
		}
	}
	o, ok := e.objects[twin]
	if ok && (typ == workspace.ObjectTypeNotebook || o.typ == workspace.ObjectTypeNotebook) {
		return twin
	}
	return ""
}

// notebookFile returns the file to execute for a workspace notebook path.
func (e *Emulator) notebookFile(p string) (string, error) {
	np, err := normPath(p)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.objects[np]
	if !ok {
		return "", fmt.Errorf("Unable to access the notebook %q in the workspace: it does not exist", p)
	}
	if o.typ != workspace.ObjectTypeNotebook {
		return "", fmt.Errorf("%s is a %s, not a notebook", p, strings.ToLower(string(o.typ)))
	}
	return e.diskPath(np, o.typ), nil
}

// writeFileAtomic writes data to name through a temporary file and rename.
func writeFileAtomic(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), name)
}
