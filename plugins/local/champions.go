package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Champion is a model version a registry alias points at, with what it was
// trained on: what pipectl gc must never delete.
type Champion struct {
	Model   string `json:"model"`
	Alias   string `json:"alias"`
	Version int    `json:"version"`
	// RunID is the pipectl run that trained it (MLflow tag pipectl.run_id),
	// DataName and DataVersion its training data (the run's params); empty
	// when the MLflow run does not say.
	RunID       string `json:"run_id,omitempty"`
	DataName    string `json:"data_name,omitempty"`
	DataVersion string `json:"data_version,omitempty"`
}

// Champions reads every aliased model version of the local registry in
// stateDir, read-only and without starting MLflow (as CheckOutputs does).
// No store, or a store without a registry yet, has none.
func Champions(ctx context.Context, stateDir string) ([]Champion, error) {
	store := NewStore(stateDir)
	if _, err := os.Stat(store.DB()); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	dsn := (&url.URL{Scheme: "file", Path: store.DB(), RawQuery: "mode=ro&_pragma=busy_timeout(5000)"}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", store.DB(), err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `
		SELECT a.name, a.alias, a.version, COALESCE(mv.run_id, ''),
			COALESCE((SELECT value FROM tags WHERE run_uuid = mv.run_id AND key = 'pipectl.run_id'), ''),
			COALESCE((SELECT value FROM params WHERE run_uuid = mv.run_id AND key = 'data_name'), ''),
			COALESCE((SELECT value FROM params WHERE run_uuid = mv.run_id AND key = 'data_version'), '')
		FROM registered_model_aliases a
		LEFT JOIN model_versions mv ON mv.name = a.name AND mv.version = a.version
		ORDER BY a.name, a.alias`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil
		}
		return nil, fmt.Errorf("read the registry aliases in %s: %w", store.DB(), err)
	}
	defer rows.Close()
	var out []Champion
	for rows.Next() {
		var c Champion
		var mlflowRun string
		if err := rows.Scan(&c.Model, &c.Alias, &c.Version, &mlflowRun, &c.RunID, &c.DataName, &c.DataVersion); err != nil {
			return nil, fmt.Errorf("read the registry aliases in %s: %w", store.DB(), err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
