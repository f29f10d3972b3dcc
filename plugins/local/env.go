package local

import (
	"strings"
)

// scrubEnv drops from an environment what a local notebook or MLflow server
// must not see: credentials for remote services (the local executor never
// talks to Databricks or a remote tracking server, and a token in a
// notebook's environment can end up in a log or an MLflow param), settings
// that would point MLflow or Python elsewhere than the executor says.
func scrubEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if dropVar(name) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func dropVar(name string) bool {
	upper := strings.ToUpper(name)
	switch {
	case strings.HasPrefix(upper, "DATABRICKS_"),
		strings.HasPrefix(upper, "MLFLOW_TRACKING_"), // URI, token, username, password, TLS settings
		upper == "MLFLOW_REGISTRY_URI",
		upper == "PYTHONPATH", upper == "PYTHONHOME", upper == "PYTHONSTARTUP",
		upper == "VIRTUAL_ENV",
		upper == "PIPECTL_GUARD_GRACE":
		return true
	}
	return false
}
