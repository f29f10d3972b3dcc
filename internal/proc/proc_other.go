//go:build !unix

package proc

import (
	"os"
	"os/exec"
)

// Without process groups and signals (Windows), a stopped process is killed
// at once, its children are not, and there is no guard: pipectl builds
// here, but the local executor is only supported on Unix.
const guardSupported = false

func newGroup(*exec.Cmd) {}

func terminateGroup(_ int, p *os.Process) {
	if p != nil {
		_ = p.Kill()
	}
}

func killGroup(int) {}
