package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/executor"
)

var (
	modelVersionURI = regexp.MustCompile(`^models:/([^/@]+)/(\d+)$`)
	modelAliasURI   = regexp.MustCompile(`^models:/([^/@]+)@([A-Za-z0-9_-]+)$`)
	modelLatestURI  = regexp.MustCompile(`^models:/([^/@]+)/latest$`)
)

// Fingerprint implements executor.Fingerprinter, starting no Python: a
// file or directory by the SHA-256 of its content (cache.Digests, memoised
// under the state directory by path, size, mtime, ctime and inode), a
// model reference by the registry row of the concrete version it names,
// read from the store's SQLite database like CheckOutputs. An alias or
// models:/NAME/latest resolves to models:/NAME/VERSION, which the notebook
// then receives. Paths are relative to the project root, as the notebooks
// read them.
func (e *Executor) Fingerprint(ctx context.Context, req executor.FingerprintRequest) (executor.FingerprintResult, error) {
	state := stateDir(req.Task)
	digests := cache.DigestsIn(state)
	store := NewStore(state)
	var out executor.FingerprintResult
	for _, in := range req.Inputs {
		f := executor.Fingerprint{Param: in.Param}
		switch in.Kind {
		case executor.InputFile:
			sum, detail, err := digests.Sum(ProjectPath(req.Task.ProjectRoot, in.Ref))
			if err != nil {
				f.Detail = err.Error()
			} else {
				f.Value, f.Detail = sum, detail
			}
		case executor.InputModel:
			var err error
			f.Value, f.Resolved, f.Detail, err = modelFingerprint(ctx, store, in.Ref)
			if err != nil {
				return executor.FingerprintResult{}, err
			}
		default:
			f.Detail = fmt.Sprintf("unknown input kind %q", in.Kind)
		}
		out.Fingerprints = append(out.Fingerprints, f)
	}
	return out, nil
}

// ProjectPath is where a notebook finds a path from the spec: ~ is the
// home directory, relative paths are relative to the project root
// (sentiment/context.py Context.resolve).
func ProjectPath(root, p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[1:])
		}
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(root, filepath.FromSlash(p))
}

// modelFingerprint resolves a model reference in the local registry: the
// value names the version and the run it came from (a store deleted and
// recreated numbers its versions from 1 again).
func modelFingerprint(ctx context.Context, store Store, ref string) (value, resolved, detail string, err error) {
	if strings.HasPrefix(ref, "runs:/") {
		return "run:" + ref, "", "a run's artifacts", nil
	}
	var name, query string
	var args []any
	switch {
	case modelVersionURI.MatchString(ref):
		m := modelVersionURI.FindStringSubmatch(ref)
		name = m[1]
		query, args = `SELECT version, run_id, creation_time FROM model_versions WHERE name = ? AND version = ? AND current_stage != 'Deleted_Internal'`, []any{m[1], m[2]}
	case modelAliasURI.MatchString(ref):
		m := modelAliasURI.FindStringSubmatch(ref)
		name = m[1]
		query = `SELECT v.version, v.run_id, v.creation_time FROM registered_model_aliases a
			JOIN model_versions v ON v.name = a.name AND v.version = a.version
			WHERE a.name = ? AND a.alias = ? AND v.current_stage != 'Deleted_Internal'`
		args = []any{m[1], m[2]}
	case modelLatestURI.MatchString(ref):
		m := modelLatestURI.FindStringSubmatch(ref)
		name = m[1]
		query = `SELECT version, run_id, creation_time FROM model_versions
			WHERE name = ? AND current_stage != 'Deleted_Internal' ORDER BY version DESC LIMIT 1`
		args = []any{m[1]}
	default:
		return "", "", "not a model URI pipectl can resolve (models:/NAME@ALIAS, models:/NAME/latest, models:/NAME/VERSION, runs:/ID/model)", nil
	}
	if _, err := os.Stat(store.DB()); err != nil {
		return "", "", "no local MLflow registry yet at " + store.DB(), nil
	}
	dsn := (&url.URL{Scheme: "file", Path: store.DB(), RawQuery: "mode=ro&_pragma=busy_timeout(5000)"}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return "", "", "", fmt.Errorf("open %s: %w", store.DB(), err)
	}
	defer db.Close()
	var version int
	var runID sql.NullString
	var created sql.NullInt64
	err = db.QueryRowContext(ctx, query, args...).Scan(&version, &runID, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", "", ref + " is not in the registry at " + store.DB(), nil
	case err != nil && strings.Contains(err.Error(), "no such table"):
		return "", "", "the MLflow store at " + store.DB() + " has no registry yet", nil
	case err != nil:
		return "", "", "", fmt.Errorf("query the MLflow registry %s: %w", store.DB(), err)
	}
	concrete := fmt.Sprintf("models:/%s/%d", name, version)
	if concrete == ref {
		resolved = ""
	} else {
		resolved = concrete
	}
	return fmt.Sprintf("mlflow:%s,run=%s,created=%d", concrete, runID.String, created.Int64), resolved, fmt.Sprintf("version %d", version), nil
}
