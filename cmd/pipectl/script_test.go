package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run this test binary as the pipectl command:
// `exec pipectl ...` in a script runs run() in a child process, exit codes
// and all.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"pipectl": func() { os.Exit(run(os.Args[1:])) },
	})
}

// TestScript runs the golden CLI tests in testdata/script. PIPECTL_UPDATE=1
// rewrites the expected output in place.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		UpdateScripts:       os.Getenv("PIPECTL_UPDATE") == "1",
	})
}
