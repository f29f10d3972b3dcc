//go:build !unix

package plugin

import "os/exec"

// Without process groups (Windows) a plugin's children are not killed with
// it; pipectl still stops reading their output after the pipe delay.
func newGroup(*exec.Cmd) {}

func killGroup(int) {}
