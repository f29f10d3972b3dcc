package emulator

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/files"
)

// ucName is a Unity Catalog identifier as the emulator accepts it.
var ucName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*$`)

// VolumePath returns where a /Volumes/<catalog>/<schema>/<volume>/...
// path lives on disk, e.g. for a test to put a raw CSV in place.
func (e *Emulator) VolumePath(p string) (string, error) {
	c := path.Clean(p)
	if slices.Contains(strings.Split(p, "/"), "..") {
		return "", fmt.Errorf("path %s must not contain '..'", p)
	}
	rest, ok := strings.CutPrefix(c, "/Volumes/")
	if !ok {
		return "", fmt.Errorf("path %s is not under /Volumes/<catalog>/<schema>/<volume>", p)
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 3 {
		return "", fmt.Errorf("path %s is not under /Volumes/<catalog>/<schema>/<volume>", p)
	}
	for _, n := range parts[:3] {
		if !ucName.MatchString(n) {
			return "", fmt.Errorf("path %s: %q is not a valid catalog, schema or volume name", p, n)
		}
	}
	return filepath.Join(e.opts.Dir, "volumes", filepath.FromSlash(rest)), nil
}

// filePath extracts the /Volumes path of a Files API request.
func (e *Emulator) filePath(w http.ResponseWriter, r *http.Request, prefix string) (string, string, bool) {
	p := strings.TrimPrefix(r.URL.Path, prefix)
	local, err := e.VolumePath(p)
	if err != nil {
		badRequest(w, "%v", err)
		return "", "", false
	}
	return p, local, true
}

func fileNotFound(w http.ResponseWriter, r *http.Request, p string) {
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("The file or directory %s does not exist.", p))
}

func (e *Emulator) filesUpload(w http.ResponseWriter, r *http.Request) {
	p, local, ok := e.filePath(w, r, "/api/2.0/fs/files")
	if !ok {
		return
	}
	overwrite, _ := strconv.ParseBool(r.URL.Query().Get("overwrite"))
	if fi, err := os.Stat(local); err == nil {
		if fi.IsDir() {
			writeError(w, http.StatusConflict, "ALREADY_EXISTS", fmt.Sprintf("%s is a directory.", p))
			return
		}
		if !overwrite {
			writeError(w, http.StatusConflict, "ALREADY_EXISTS", fmt.Sprintf("The file %s already exists; set overwrite=true to replace it.", p))
			return
		}
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "MALFORMED_REQUEST", err.Error())
		return
	}
	if err := writeFileAtomic(local, data); err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) fileStat(w http.ResponseWriter, r *http.Request) (string, os.FileInfo, bool) {
	p, local, ok := e.filePath(w, r, "/api/2.0/fs/files")
	if !ok {
		return "", nil, false
	}
	fi, err := os.Stat(local)
	if err != nil || fi.IsDir() {
		fileNotFound(w, r, p)
		return "", nil, false
	}
	return local, fi, true
}

func setFileHeaders(w http.ResponseWriter, fi os.FileInfo) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	w.Header().Set("Last-Modified", fi.ModTime().UTC().Format(http.TimeFormat))
}

func (e *Emulator) filesHead(w http.ResponseWriter, r *http.Request) {
	if _, fi, ok := e.fileStat(w, r); ok {
		setFileHeaders(w, fi)
		w.WriteHeader(http.StatusOK)
	}
}

func (e *Emulator) filesDownload(w http.ResponseWriter, r *http.Request) {
	local, fi, ok := e.fileStat(w, r)
	if !ok {
		return
	}
	f, err := os.Open(local)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	defer f.Close()
	setFileHeaders(w, fi)
	_, _ = io.Copy(w, f)
}

func (e *Emulator) filesDelete(w http.ResponseWriter, r *http.Request) {
	local, _, ok := e.fileStat(w, r)
	if !ok {
		return
	}
	if err := os.Remove(local); err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) dirStat(w http.ResponseWriter, r *http.Request) (string, string, bool) {
	p, local, ok := e.filePath(w, r, "/api/2.0/fs/directories")
	if !ok {
		return "", "", false
	}
	fi, err := os.Stat(local)
	if err != nil || !fi.IsDir() {
		fileNotFound(w, r, p)
		return "", "", false
	}
	return p, local, true
}

func (e *Emulator) dirsCreate(w http.ResponseWriter, r *http.Request) {
	p, local, ok := e.filePath(w, r, "/api/2.0/fs/directories")
	if !ok {
		return
	}
	if err := os.MkdirAll(local, 0o755); err != nil {
		// MkdirAll fails when a file is in the way (EEXIST or ENOTDIR).
		writeError(w, http.StatusConflict, "ALREADY_EXISTS", fmt.Sprintf("A file exists on the path of %s.", p))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) dirsHead(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := e.dirStat(w, r); ok {
		w.WriteHeader(http.StatusOK)
	}
}

func (e *Emulator) dirsList(w http.ResponseWriter, r *http.Request) {
	p, local, ok := e.dirStat(w, r)
	if !ok {
		return
	}
	entries, err := os.ReadDir(local)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	resp := files.ListDirectoryResponse{}
	for _, de := range entries {
		if strings.HasPrefix(de.Name(), ".") {
			continue // temporary files of atomic writes
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		entry := files.DirectoryEntry{Name: de.Name(), Path: path.Join(p, de.Name()), IsDirectory: de.IsDir(), LastModified: fi.ModTime().UnixMilli()}
		if !de.IsDir() {
			entry.FileSize = fi.Size()
		}
		resp.Contents = append(resp.Contents, entry)
	}
	writeJSON(w, resp)
}

func (e *Emulator) dirsDelete(w http.ResponseWriter, r *http.Request) {
	p, local, ok := e.dirStat(w, r)
	if !ok {
		return
	}
	entries, _ := os.ReadDir(local)
	if len(entries) > 0 {
		writeError(w, http.StatusConflict, "DIRECTORY_NOT_EMPTY", fmt.Sprintf("The directory %s is not empty.", p))
		return
	}
	if err := os.Remove(local); err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
