package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUIServesAndStopsOnCtrlC runs `pipectl ui --port N` in a project whose
// .pipectl is the venv and store shared with plugins/local's tests, checks
// the line it prints and that the MLflow UI answers, then "presses Ctrl-C".
func TestUIServesAndStopsOnCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a venv and runs MLflow (skipped with -short)")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	state := sharedTestState(t)
	root := t.TempDir()
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(state, filepath.Join(root, ".pipectl")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"requirements.txt", "pipectl_runner/__main__.py"} {
		b, err := os.ReadFile(filepath.Join(repo, "notebooks", f))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, "notebooks", f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	app := &App{Ctx: ctx, Stdout: &stdout, Stderr: &stderr, Getenv: os.Getenv}
	code := make(chan int, 1)
	go func() { code <- runApp(app, []string{"-C", root, "ui", "--port", strconv.Itoa(port)}) }()

	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	want := fmt.Sprintf("pipectl: MLflow UI at %s (store .pipectl/mlflow); Ctrl-C stops it\n", url)
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.HasSuffix(stderr.String(), want) {
		select {
		case c := <-code:
			t.Fatalf("pipectl ui exited with %d:\n%s", c, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line after 5 minutes:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := stderr.String(); got != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
	}
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(bytes.ToLower(body), []byte("<html")) {
		t.Errorf("GET / = %d: %.200s", resp.StatusCode, body)
	}

	cancel() // Ctrl-C: run's signal context ends
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d after Ctrl-C, want 0:\n%s", c, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pipectl ui did not stop after Ctrl-C")
	}
	if stdout.String() != "" {
		t.Errorf("stdout: %q, want nothing", stdout.String())
	}
	if _, err := http.Get(url + "/"); err == nil {
		t.Error("the UI still answers after pipectl ui returned")
	}
}
