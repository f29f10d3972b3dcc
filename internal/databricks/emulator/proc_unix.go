//go:build !windows

package emulator

import (
	"os/exec"
	"syscall"
)

// inOwnGroup makes cmd the leader of a new process group, so that
// cancelling a task stops every process the notebook started.
func inOwnGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func terminateGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
