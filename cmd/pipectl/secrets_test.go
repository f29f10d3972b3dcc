package main

import (
	"bytes"
	"fmt"
	"os"

	"path/filepath"
	"strings"
	"testing"

	"github.com/pipectl/pipectl/internal/databricks/emulator"
)

// secretsSpec runs data, a training and inference on a Databricks target
// whose credentials come from ~/.databrickscfg.
const secretsSpec = `package pipelines

pipelines: sec: {
	description:    "a small pipeline on Databricks"
	default_target: "dev"
	targets: dev: {
		executor: "databricks"
		databricks: {
			catalog:         "dev"
			schema:          "sentiment"
			volume:          "pipectl"
			workspace_root:  "/Workspace/Shared/pipectl/dev"
			experiment_root: "/Shared/pipectl/dev"
		}
	}
	stages: {
		data: {type: "data", params: {data_name: "news", data_version: "v1", source: "/Volumes/dev/sentiment/pipectl/raw/news.csv"}}
		train: {type: "train", params: _fromData & {model_name: "sec_clf", model_type: "naive_bayes", features: {char_ngram: null, max_features: 300}}}
		inference: {type: "inference", params: _fromData & {model: "${stages.train.outputs.model_uri}", split: "holdout", output_name: "preds"}}
	}
}

_fromData: {
	data_name:    "${stages.data.outputs.data_name}"
	data_version: "${stages.data.outputs.data_version}"
}
`

// TestSecretsNeverWrittenOnDatabricks runs a pipeline on the Databricks
// emulator with the token read from a ~/.databrickscfg profile (the file
// also holds a service principal's client secret and another profile's
// token), with debug logging; then a run whose profile's token is refused,
// and a deploy. No secret may appear in pipectl's output (stdout, stderr,
// --json), its run records and logs, the emulator's state (workspace,
// Volumes, task logs, the MLflow store with its params and tags) or what
// the notebooks printed. TestSentimentRunOnEmulator does the same for a
// token in DATABRICKS_TOKEN; TestLocalRunSurvivesKill9 for a local run.
func TestSecretsNeverWrittenOnDatabricks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs notebooks on the emulator")
	}
	python := mlPython(t)
	token := "dapi" + strings.Repeat("cfgt0ken", 4)
	wrongToken := "dapi" + strings.Repeat("wr0ng", 6)
	clientSecret := "dose" + strings.Repeat("spc1ient", 4)
	secrets := []string{token, wrongToken, clientSecret}

	emuDir := t.TempDir()
	e, err := emulator.Start(emulator.Options{Dir: emuDir, Token: token, Python: python})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	p := &localProject{dir: filepath.Join(t.TempDir(), "project"), state: filepath.Join(t.TempDir(), "state")}
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	if err := os.CopyFS(filepath.Join(p.dir, "notebooks"), os.DirFS(filepath.Join(repo, "notebooks"))); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(p.dir, "specs"), 0o755)
	if err := os.WriteFile(filepath.Join(p.dir, "specs", "p.cue"), []byte(secretsSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := e.VolumePath("/Volumes/dev/sentiment/pipectl/raw/news.csv")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(raw), 0o755)
	sample, err := os.ReadFile(filepath.Join(repo, "data", "sample", "financial_news.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(raw, sample, 0o644); err != nil {
		t.Fatal(err)
	}

	home := filepath.Join(t.TempDir(), "home")
	os.MkdirAll(home, 0o700)
	cfg := fmt.Sprintf("[DEFAULT]\nhost = %s\ntoken = %s\n\n[sp]\nhost = %s\nclient_id = 1234\nclient_secret = %s\n\n[wrong]\nhost = %s\ntoken = %s\n",
		e.URL, token, e.URL, clientSecret, e.URL, wrongToken)
	if err := os.WriteFile(filepath.Join(home, ".databrickscfg"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.env = []string{"HOME=" + home, "PIPECTL_LOG_LEVEL=debug", "DATABRICKS_HOST=", "DATABRICKS_TOKEN=",
		"DATABRICKS_CONFIG_PROFILE=", "DATABRICKS_CONFIG_FILE=", "DATABRICKS_CLIENT_ID=", "DATABRICKS_CLIENT_SECRET="}

	var outputs []string
	ok := p.run(t, "run", "sec", "--target", "dev", "--json")
	outputs = append(outputs, ok.stdout, ok.stderr)
	if ok.code != 0 {
		t.Fatalf("run: exit %d\n%s", ok.code, tail(ok.stderr, 60))
	}
	for stage, status := range finished(t, ok.stdout) {
		if status != "succeeded" {
			t.Errorf("%s %s", stage, status)
		}
	}

	// The profile's token is refused: the error says so, without it.
	p.env = append(p.env, "DATABRICKS_CONFIG_PROFILE=wrong")
	bad := p.run(t, "run", "sec", "--target", "dev", "--no-cache")
	outputs = append(outputs, bad.stdout, bad.stderr)
	if bad.code != 1 || !strings.Contains(bad.stdout+bad.stderr, "403") {
		t.Errorf("run with a refused token: exit %d, want 1 and the 403 named\n%s", bad.code, tail(bad.stderr, 30))
	}
	dep := p.run(t, "deploy", "sec", "--target", "dev", "--json")
	outputs = append(outputs, dep.stdout, dep.stderr)
	p.env = p.env[:len(p.env)-1]
	dep = p.run(t, "deploy", "sec", "--target", "dev", "--json")
	outputs = append(outputs, dep.stdout, dep.stderr)
	if dep.code != 0 {
		t.Errorf("deploy: exit %d\n%s", dep.code, tail(dep.stderr, 30))
	}
	for _, args := range [][]string{{"runs", "--json"}, {"runs", "show", "latest", "--json"}, {"logs", "latest", "data"}} {
		r := p.run(t, args...)
		outputs = append(outputs, r.stdout, r.stderr)
	}
	for _, rid := range e.RunIDs() {
		for _, tid := range e.TaskRunIDs(rid) {
			outputs = append(outputs, e.TaskLog(tid))
		}
	}
	// The MLflow store holds what the notebooks logged: params, tags.
	if !bytes.Contains(mustRead(t, emuDir), []byte("sec_clf")) {
		t.Error("the emulator's files do not hold the trained model's name: the scan would not see MLflow's params")
	}
	if n := scanForSecrets(t, secrets, []string{p.state, emuDir}, outputs...); n < 20 {
		t.Errorf("scanned only %d files", n)
	}
}

// mustRead concatenates every regular file under dir.
func mustRead(t *testing.T, dir string) []byte {
	t.Helper()
	var all bytes.Buffer
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			all.Write(b)
		}
		return nil
	})
	return all.Bytes()
}
