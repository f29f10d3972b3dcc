package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/pipectl/pipectl/engine/executor"
)

// version is set at release builds with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints "pipectl VERSION (COMMIT) GO executor-protocol vN".
func (c *VersionCmd) Run(app *App) error {
	fmt.Fprintf(app.Stdout, "pipectl %s (%s) %s executor-protocol v%d\n", version, buildCommit(), runtime.Version(), executor.ProtocolVersion)
	return nil
}

// buildCommit returns the VCS revision stamped by go build, or "unknown".
func buildCommit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
