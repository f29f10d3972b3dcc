package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pipectl/pipectl/engine/executor"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

// CheckOutputs implements executor.Executor. It starts no Python (a fully
// cached run must stay well under a second): data versions and predictions
// are files, and a model version is a row of the registry's SQLite database,
// read directly and read-only, whose artifacts must still exist.
func (e *Executor) CheckOutputs(ctx context.Context, req executor.CheckRequest) (executor.CheckResult, error) {
	out := req.Outputs
	// What is checked follows the outputs, not the stage type: a stage that
	// promises (or reports) a data version, predictions or a model version
	// must still have it.
	promised := func(key string) bool {
		return slices.Contains(req.Task.Outputs, key) || out[key] != ""
	}
	if promised("data_path") {
		p := out["data_path"]
		if p == "" {
			return missing("the cached run recorded no data_path"), nil
		}
		if _, err := os.Stat(filepath.Join(p, "manifest.json")); err != nil {
			return missing("data version %s is gone (no manifest.json)", p), nil
		}
	}
	if promised("predictions_path") {
		p := out["predictions_path"]
		if p == "" {
			return missing("the cached run recorded no predictions_path"), nil
		}
		if _, err := os.Stat(p); err != nil {
			return missing("predictions %s are gone", p), nil
		}
		if executor.IsDeltaTable(p) {
			if fi, err := os.Stat(filepath.Join(p, executor.DeltaLog)); err != nil || !fi.IsDir() {
				return missing("predictions %s are no Delta table (no %s)", p, executor.DeltaLog), nil
			}
		}
	}
	// A registered model is the stage's when it names one (train,
	// evaluate); inference only reports the version it used.
	if promised("model_name") {
		name, version := out["model_name"], out["model_version"]
		if name == "" || version == "" {
			return missing("the cached run recorded no model_name/model_version"), nil
		}
		store := NewStore(stateDir(req.Task))
		res, err := checkModelVersion(ctx, store, name, version)
		if err != nil || !res.Exists {
			return res, err
		}
		return checkAliasUnmoved(ctx, store, name, version, req.Task.Params["alias"])
	}
	return executor.CheckResult{Exists: true}, nil
}

// checkAliasUnmoved: a stage that moves an alias (its alias parameter, e.g.
// evaluate's champion) decided from where the alias pointed. Its cached
// result stands only while the alias still points at the version the stage
// left it on; moved since (by hand, or by another pipeline), the decision is
// stale and the stage runs again.
func checkAliasUnmoved(ctx context.Context, store Store, name, version, alias string) (executor.CheckResult, error) {
	if alias == "" {
		return executor.CheckResult{Exists: true}, nil
	}
	ref := "models:/" + name + "@" + alias
	_, resolved, detail, err := modelFingerprint(ctx, store, ref)
	if err != nil {
		return executor.CheckResult{}, err
	}
	if want := "models:/" + name + "/" + version; resolved != want {
		if resolved == "" {
			return missing("%s no longer resolves (%s); the cached run left it on version %s", ref, detail, version), nil
		}
		return missing("%s now points at %s; the cached run left it on version %s", ref, resolved, version), nil
	}
	return executor.CheckResult{Exists: true}, nil
}

func missing(format string, args ...any) executor.CheckResult {
	return executor.CheckResult{Exists: false, Reason: fmt.Sprintf(format, args...)}
}

// checkModelVersion looks a registered model version up in the store's
// database: present, not deleted, READY, with its artifacts on disk.
func checkModelVersion(ctx context.Context, store Store, name, version string) (executor.CheckResult, error) {
	v, err := strconv.Atoi(version)
	if err != nil {
		return missing("model version %q of %s is not a number", version, name), nil
	}
	if _, err := os.Stat(store.DB()); err != nil {
		return missing("no local MLflow store at %s", store.DB()), nil
	}
	// mode=ro: never create or migrate; busy_timeout: a running server may
	// be writing.
	dsn := (&url.URL{Scheme: "file", Path: store.DB(), RawQuery: "mode=ro&_pragma=busy_timeout(5000)"}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return executor.CheckResult{}, fmt.Errorf("open %s: %w", store.DB(), err)
	}
	defer db.Close()
	var stage, status, location sql.NullString
	err = db.QueryRowContext(ctx,
		`SELECT current_stage, status, storage_location FROM model_versions WHERE name = ? AND version = ?`,
		name, v).Scan(&stage, &status, &location)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return missing("model %s version %d is not in the registry at %s", name, v, store.DB()), nil
	case err != nil && strings.Contains(err.Error(), "no such table"):
		return missing("the MLflow store at %s has no registry yet", store.DB()), nil
	case err != nil:
		return executor.CheckResult{}, fmt.Errorf("query the MLflow registry %s: %w", store.DB(), err)
	}
	if stage.String == "Deleted_Internal" {
		return missing("model %s version %d was deleted", name, v), nil
	}
	if status.Valid && status.String != "READY" {
		return missing("model %s version %d is %s, not READY", name, v, status.String), nil
	}
	if dir, ok := artifactDir(store, location.String); ok {
		if _, err := os.Stat(dir); err != nil {
			return missing("the artifacts of model %s version %d are gone (%s)", name, v, dir), nil
		}
	}
	return executor.CheckResult{Exists: true}, nil
}

// artifactDir maps a model version's storage location to a local directory,
// when it is one: mlflow-artifacts:/ URIs live under the store's artifact
// directory, file: URIs and paths are themselves.
func artifactDir(store Store, location string) (string, bool) {
	switch {
	case strings.HasPrefix(location, "mlflow-artifacts:"):
		u, err := url.Parse(location)
		if err != nil {
			return "", false
		}
		return filepath.Join(store.Artifacts(), filepath.FromSlash(strings.TrimPrefix(u.Path, "/"))), true
	case strings.HasPrefix(location, "file:"):
		u, err := url.Parse(location)
		if err != nil {
			return "", false
		}
		return u.Path, true
	case filepath.IsAbs(location):
		return location, true
	}
	return "", false
}
