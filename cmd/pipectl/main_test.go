package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plugin"
	"github.com/pipectl/pipectl/plugins/noop"
)

// futurePluginName is a test plugin that describes a protocol this pipectl
// does not speak. The test binary serves it when run under that name; it is
// not a testscript command, so that it is not on every script's PATH.
const futurePluginName = plugin.BinaryPrefix + "future"

// TestMain lets testscript run pipectl in process: scripts "exec pipectl",
// which re-runs this test binary as pipectl (so self-exec of built-in
// executors works too).
func TestMain(m *testing.M) {
	// Built-in executors started by in-process tests re-execute this test
	// binary with "__executor NAME": act as pipectl.
	if len(os.Args) > 1 && os.Args[1] == executorCommand {
		os.Exit(run(os.Args[1:]))
	}
	if filepath.Base(os.Args[0]) == futurePluginName {
		plugin.Serve(&futureExecutor{})
		os.Exit(0)
	}
	if filepath.Base(os.Args[0]) == leakyPluginName {
		serveLeaky()
		os.Exit(0)
	}
	testscript.Main(m, map[string]func(){
		"pipectl": func() { os.Exit(run(os.Args[1:])) },
	})
}

// leakyPluginName is a misbehaving third-party plugin: it leaves children
// holding its stdout and stderr open (see serveLeaky).
const leakyPluginName = plugin.BinaryPrefix + "leaky"

// serveLeaky starts two `sleep 300` children that inherit the plugin's
// stdout and stderr, one in its process group and one in a session of its
// own, writes their pids to leaky.pids beside the binary, and serves a
// noop executor named leaky.
func serveLeaky() {
	var pids []string
	for _, setsid := range []bool{false, true} {
		cmd := exec.Command("sleep", "300")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pids = append(pids, strconv.Itoa(cmd.Process.Pid))
	}
	pidFile := filepath.Join(filepath.Dir(os.Args[0]), "leaky.pids")
	if err := os.WriteFile(pidFile, []byte(strings.Join(pids, " ")+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	plugin.Serve(&leakyExecutor{})
}

type leakyExecutor struct{ noop.Executor }

func (leakyExecutor) Describe(context.Context) (executor.Info, error) {
	return executor.Info{Name: "leaky", Version: "0.0.1", Protocol: executor.ProtocolVersion}, nil
}

type futureExecutor struct{ noop.Executor }

func (futureExecutor) Describe(context.Context) (executor.Info, error) {
	return executor.Info{Name: "future", Version: "9.0.0", Protocol: executor.ProtocolVersion + 1}, nil
}

// TestScripts runs the golden scripts in testdata/script. Update their
// expected output with PIPECTL_UPDATE=1 go test ./cmd/pipectl -run
// TestScripts, then review the diff.
//
// Every script starts in $WORK with stub notebooks/*.py (so that small
// specs can use the default notebooks), a header-only raw.csv (a source
// that exists), $REPO set to the repository root
// and $HOME to $WORK/home.
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
			// Scripts that run against $REPO must not read or write the
			// repository's own .pipectl (a developer's runs and cache).
			env.Setenv("PIPECTL_STATE_DIR", filepath.Join(env.WorkDir, ".pipectl"))
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			// An empty raw.csv, so that small specs can name a local source
			// that exists (validate checks it); a script's own raw.csv wins.
			if raw := filepath.Join(env.WorkDir, "raw.csv"); !fileExists(raw) {
				if err := os.WriteFile(raw, []byte("Sentence,Sentiment\n"), 0o644); err != nil {
					return err
				}
			}
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
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"install-plugin": installPlugin,
			"encode":         encodeFile,
		},
	})
}

// installPlugin is the script command "install-plugin NAME DIR": it
// installs a test executor as DIR/pipectl-executor-NAME, "shell"
// (examples/executor-shell) or "future" (a plugin of a newer protocol).
func installPlugin(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: install-plugin shell|future DIR")
	}
	var src string
	switch args[0] {
	case "shell":
		src = shellExecutor(ts)
	case "future":
		exe, err := os.Executable()
		ts.Check(err)
		src = exe
	default:
		ts.Fatalf("unknown test plugin %q", args[0])
	}
	ts.Check(copyExecutable(src, filepath.Join(ts.MkAbs(args[1]), plugin.BinaryPrefix+args[0])))
}

// encodeFile is the script command "encode ENCODING SRC DST": it writes
// the UTF-8 text file SRC to DST in ENCODING (latin-1, cp1252, utf-8-sig,
// utf-16), since a .txtar holds UTF-8 text only.
func encodeFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: encode latin-1|cp1252|utf-8-sig|utf-16 SRC DST")
	}
	var enc encoding.Encoding
	switch args[0] {
	case "latin-1":
		enc = charmap.ISO8859_1
	case "cp1252":
		enc = charmap.Windows1252
	case "utf-8-sig":
		enc = unicode.UTF8BOM
	case "utf-16":
		enc = unicode.UTF16(unicode.LittleEndian, unicode.UseBOM)
	default:
		ts.Fatalf("unknown encoding %q", args[0])
	}
	b, err := enc.NewEncoder().Bytes([]byte(ts.ReadFile(args[1])))
	ts.Check(err)
	ts.Check(os.MkdirAll(filepath.Dir(ts.MkAbs(args[2])), 0o755))
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), b, 0o644))
}

var (
	shellOnce sync.Once
	shellPath string
	shellErr  error
)

type fataler interface{ Fatalf(string, ...any) }

// shellExecutor builds examples/executor-shell once per test binary, the
// way docs/PLUGINS.md tells a third party to: in its own module, against
// this checkout through its go.mod's replace directive.
func shellExecutor(t fataler) string {
	shellOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pipectl-shell-executor-")
		if err != nil {
			shellErr = err
			return
		}
		shellPath = filepath.Join(dir, plugin.BinaryPrefix+"shell")
		shellErr = buildOwnModule(filepath.Join("..", "..", "examples", "executor-shell"), shellPath, dir)
	})
	if shellErr != nil {
		t.Fatalf("%v", shellErr)
	}
	return shellPath
}

// buildOwnModule builds the main package of the module in src (which must
// have its own go.mod) into out.
func buildOwnModule(src, out, tmp string) error {
	cmd, err := ownModuleCommand(src, tmp, "build", "-o", out, ".")
	if err != nil {
		return err
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build in %s (its own module): %v\n%s", src, err, b)
	}
	return nil
}

// ownModuleCommand returns the go command that runs args in the module in
// src with -mod=mod, so that the module keeps building when pipectl's
// requirements move, against a copy of its go.mod and go.sum in tmp, so
// that the checkout is never modified. GOPROXY is the environment's:
// offline, the module cache must hold what pipectl itself requires.
func ownModuleCommand(src, tmp string, args ...string) (*exec.Cmd, error) {
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return nil, fmt.Errorf("%s is not a module of its own: %v", src, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command("go", append([]string{args[0], "-modfile", filepath.Join(tmp, "go.mod")}, args[1:]...)...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod "+os.Getenv("GOFLAGS"), "GOWORK=off")
	return cmd, nil
}

func copyExecutable(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
