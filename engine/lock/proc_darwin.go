package lock

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// processStart returns the process's start time from the kernel's process
// table, or "" when unknown.
func processStart(pid int) string {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || kp.Proc.P_pid != int32(pid) {
		return ""
	}
	t := kp.Proc.P_starttime
	return fmt.Sprintf("darwin:%d.%06d", t.Sec, t.Usec)
}
