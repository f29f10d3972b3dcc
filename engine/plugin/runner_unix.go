//go:build unix

package plugin

import (
	"os/exec"
	"syscall"
)

// newGroup makes the plugin the leader of a process group of its own, so
// that what it leaves behind can be killed with it.
func newGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills every process of the group.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
