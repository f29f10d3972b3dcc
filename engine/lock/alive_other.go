//go:build !unix

package lock

// pidAlive cannot check here; a lock's owner counts as alive and only the
// file lock decides.
func pidAlive(pid int) bool { return true }
