package databricks

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/files"

	"github.com/pipectl/pipectl/engine/executor"
)

var modelVersionURI = regexp.MustCompile(`^models:/([^/@]+)/(\d+)$`)

// CheckOutputs implements executor.Executor: a cached stage's data version
// directory and predictions (a file, or a Delta table's log) must still be
// in the Volume (Files API) and its registered model version in Unity
// Catalog.
func (e *Executor) CheckOutputs(ctx context.Context, req executor.CheckRequest) (executor.CheckResult, error) {
	cfg, c, err := e.connect(ctx, req.Task.Config)
	if err != nil {
		return executor.CheckResult{}, err
	}
	missing := func(what string, err error) (executor.CheckResult, error) {
		if errors.Is(err, apierr.ErrNotFound) {
			return executor.CheckResult{Exists: false, Reason: what + " no longer exists"}, nil
		}
		return executor.CheckResult{}, c.fail(fmt.Sprintf("check %s", what), err)
	}
	out := req.Outputs
	// Paths the notebooks reported: only ever checked inside the target's
	// Volume (a path elsewhere counts as missing, and the stage runs).
	for _, key := range []string{"data_path", "predictions_path"} {
		if p := out[key]; strings.HasPrefix(p, "/Volumes/") && !below(cfg.VolumeRoot(), p) {
			return executor.CheckResult{Exists: false, Reason: fmt.Sprintf("%s %s is not inside the target's Volume %s", key, p, cfg.VolumeRoot())}, nil
		}
	}
	if p := out["data_path"]; strings.HasPrefix(p, "/Volumes/") {
		if err := c.W.Files.GetDirectoryMetadata(ctx, files.GetDirectoryMetadataRequest{DirectoryPath: p}); err != nil {
			return missing("data version "+p, err)
		}
	}
	if p := out["predictions_path"]; strings.HasPrefix(p, "/Volumes/") {
		if executor.IsDeltaTable(p) {
			// A Delta table (engine "spark") is a directory; its log makes it one.
			log := strings.TrimRight(p, "/") + "/" + executor.DeltaLog
			if err := c.W.Files.GetDirectoryMetadata(ctx, files.GetDirectoryMetadataRequest{DirectoryPath: log}); err != nil {
				return missing("predictions table "+p, err)
			}
		} else if _, err := c.W.Files.GetMetadata(ctx, files.GetMetadataRequest{FilePath: p}); err != nil {
			return missing("predictions "+p, err)
		}
	}
	name, version := out["model_name"], out["model_version"]
	if m := modelVersionURI.FindStringSubmatch(out["model_uri"]); m != nil && (name == "" || version == "") {
		name, version = m[1], m[2]
	}
	if name != "" && version != "" && strings.Count(name, ".") == 2 {
		v, err := strconv.Atoi(version)
		if err != nil {
			return executor.CheckResult{Exists: false, Reason: fmt.Sprintf("model version %q is not a number", version)}, nil
		}
		mv, err := c.W.ModelVersions.Get(ctx, catalog.GetModelVersionRequest{FullName: name, Version: v})
		if err != nil {
			return missing(fmt.Sprintf("model version %s/%d", name, v), err)
		}
		if mv.Status != "" && mv.Status != catalog.ModelVersionInfoStatusReady {
			return executor.CheckResult{Exists: false, Reason: fmt.Sprintf("model version %s/%d is %s", name, v, mv.Status)}, nil
		}
		// A stage that moves an alias (evaluate's champion) decided from where
		// it pointed: its cached result stands only while the alias is still
		// on the version the stage left it on (as the local executor checks).
		if alias := req.Task.Params["alias"]; alias != "" {
			at, err := c.W.ModelVersions.GetByAlias(ctx, catalog.GetByAliasRequest{FullName: name, Alias: alias})
			if err != nil {
				return missing(fmt.Sprintf("alias %s@%s", name, alias), err)
			}
			if at.Version != v {
				return executor.CheckResult{Exists: false, Reason: fmt.Sprintf("%s@%s now points at version %d; the cached run left it on version %d", name, alias, at.Version, v)}, nil
			}
		}
	}
	return executor.CheckResult{Exists: true}, nil
}
