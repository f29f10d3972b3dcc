//go:build unix

package proc

import (
	"os"
	"os/exec"
	"syscall"
)

// guardSupported: the guard needs process groups.
const guardSupported = true

// newGroup makes the command the leader of a new process group.
func newGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// terminateGroup asks every process of the group to stop.
func terminateGroup(pgid int, _ *os.Process) { _ = syscall.Kill(-pgid, syscall.SIGTERM) }

// killGroup kills every process of the group.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
