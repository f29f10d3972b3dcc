package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run pipectl in process: scripts "exec pipectl",
// which re-runs this test binary as pipectl (so self-exec of built-in
// executors works too).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"pipectl": func() { os.Exit(run(os.Args[1:])) },
	})
}

// TestScripts runs the golden scripts in testdata/script. Update their
// expected output with PIPECTL_UPDATE=1 go test ./cmd/pipectl -run
// TestScripts, then review the diff.
//
// Every script starts in $WORK with stub notebooks/*.py (so that small
// specs can use the default notebooks) and $REPO set to the repository
// root.
func TestScripts(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       os.Getenv("PIPECTL_UPDATE") == "1",
		Setup: func(env *testscript.Env) error {
			env.Setenv("REPO", repo)
			for _, nb := range []string{"create_data", "train_model", "evaluate_models", "run_inference"} {
				path := filepath.Join(env.WorkDir, "notebooks", nb+".py")
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(path, []byte("# Databricks notebook source\n"), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
	})
}
