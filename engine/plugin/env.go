package plugin

import (
	"context"
	"slices"
	"strings"
)

// AllowedEnv lists the host variables every third-party executor gets: what
// a process needs to run, find programs, write temporary files and format
// text, and nothing that usually holds a credential. A name ending in "*"
// is a prefix. Anything else reaches a plugin only when the target names it
// in pass_env.
var AllowedEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR",
	"LANG", "LANGUAGE", "LC_*", "TZ", "TERM", "NO_COLOR",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	EnvLogLevel,
}

// PluginEnv returns the environment of an isolated (third-party) plugin:
// the variables of environ ("KEY=value" entries, usually os.Environ()) that
// AllowedEnv or passEnv names, in environ's order.
func PluginEnv(environ []string, passEnv []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if envAllowed(k) || slices.Contains(passEnv, k) {
			out = append(out, kv)
		}
	}
	return out
}

func envAllowed(name string) bool {
	for _, a := range AllowedEnv {
		if prefix, ok := strings.CutSuffix(a, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if name == a {
			return true
		}
	}
	return false
}

type passEnvKey struct{}

// WithPassEnv returns ctx carrying the names of the host variables a
// target passes to third-party executors (its pass_env). Open executors
// with it: the registry starts a plugin on first use, and its environment
// is fixed then.
func WithPassEnv(ctx context.Context, names []string) context.Context {
	return context.WithValue(ctx, passEnvKey{}, slices.Clone(names))
}

// PassEnv returns the names WithPassEnv put in ctx.
func PassEnv(ctx context.Context) []string {
	names, _ := ctx.Value(passEnvKey{}).([]string)
	return names
}
