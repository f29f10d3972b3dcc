//go:build !linux && !darwin

package lock

// processStart is unknown here: liveness falls back to the PID alone.
func processStart(pid int) string { return "" }
