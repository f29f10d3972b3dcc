//go:build unix

package lock

import (
	"errors"
	"syscall"
)

// pidAlive reports whether a process with pid exists (signal 0 checks
// without sending anything; EPERM means it exists but is not ours).
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
