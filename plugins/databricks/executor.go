package databricks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
)

// Name is the executor's name in specs.
const Name = "databricks"

// Executor runs stages as Databricks Jobs runs. It is safe for concurrent
// use; parallel stages share clients and code uploads.
type Executor struct {
	// Env reads the environment (credentials, DATABRICKS_HOST, GITHUB_*).
	Env Env
	// Version is reported by Describe.
	Version string
	// Transport is the HTTP transport under the retry layer; nil uses
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Poll is the polling schedule; zero values use DefaultPoll.
	Poll Poll
	// Stderr receives progress lines while an unreachable workspace is
	// retried (nil: none).
	Stderr io.Writer

	mu      sync.Mutex
	clients map[string]*Client
	// unreachable remembers, for a minute, a workspace that did not
	// answer: the run's later stages fail at once instead of waiting again.
	unreachable map[string]unreachableAt
	uploads     uploads
}

var _ executor.Executor = (*Executor)(nil)

// New returns a databricks executor reading the environment through env.
func New(env Env) *Executor { return &Executor{Env: env, Version: "builtin", Stderr: os.Stderr} }

// Describe implements executor.Executor.
func (e *Executor) Describe(ctx context.Context) (executor.Info, error) {
	return executor.Info{Name: Name, Version: e.Version, Protocol: executor.ProtocolVersion,
		Description: "runs the stages of a pipeline run as one Databricks Jobs run (runs/submit, a notebook task per stage; resume repairs it)",
		Groups:      true}, nil
}

// Validate implements executor.Executor: the target's databricks block, the
// environment it needs and the notebooks, without calling Databricks.
func (e *Executor) Validate(ctx context.Context, req executor.ValidateRequest) (diag.Diagnostics, error) {
	field := fmt.Sprintf("pipelines.%s.targets.%s.databricks", req.Pipeline, req.Target)
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return diag.Diagnostics{diag.Errorf(diag.Pos{}, field, "%v", err)}, nil
	}
	var notebooks []string
	for _, st := range req.Stages {
		notebooks = append(notebooks, st.Notebook)
	}
	return cfg.Validate(e.Env, field, req.ProjectRoot, notebooks), nil
}

// client returns a client for cfg's workspace, built once per host/profile.
func (e *Executor) client(cfg *Config) (*Client, error) {
	key := cfg.Host + "|" + cfg.Profile
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[key]; ok {
		return c, nil
	}
	if u, ok := e.unreachable[key]; ok && time.Since(u.at) < time.Minute {
		return nil, u.err
	}
	c, err := newClient(cfg, e.Env, newRetryTransport(e.Transport), progressTo(e.Stderr))
	var ue *unreachableError
	if errors.As(err, &ue) {
		if e.unreachable == nil {
			e.unreachable = map[string]unreachableAt{}
		}
		e.unreachable[key] = unreachableAt{err: err, at: time.Now()}
	}
	if err != nil {
		return nil, err
	}
	if e.clients == nil {
		e.clients = map[string]*Client{}
	}
	e.clients[key] = c
	return c, nil
}

type unreachableAt struct {
	err error
	at  time.Time
}

// connect parses a target's config, returns the client for its workspace
// and applies per-user mode (Personalize): the one way from a task's
// config to the names it uses.
func (e *Executor) connect(ctx context.Context, raw json.RawMessage) (*Config, *Client, error) {
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, nil, err
	}
	c, err := e.client(cfg)
	if err != nil {
		return nil, nil, err
	}
	if cfg, err = Personalize(ctx, c, cfg); err != nil {
		return nil, c, err
	}
	return cfg, c, nil
}

// failure is a non-retryable failed result.
func failure(format string, args ...any) executor.Result {
	return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: fmt.Sprintf(format, args...)}}
}

// prepared is what a run needs before its submit: the client, the
// (personalized) target, where the notebooks are, the libraries and the
// commit.
type prepared struct {
	cfg    *Config
	c      *Client
	loc    codeLocation
	reqs   []string
	commit string
	// ctx carries the retry notices and the SDK's log for the run's calls.
	ctx context.Context
}

// prepare readies a run of the given notebooks, alone or in a group: one
// place for what every submit needs (client and identity, code import,
// wheel and libraries). emit reports to the stage(s); a failure is the
// result to report.
func (e *Executor) prepare(ctx context.Context, first executor.Task, notebooks []string, emit func(executor.EventKind, string)) (*prepared, *executor.Result) {
	fail := func(r executor.Result) (*prepared, *executor.Result) { return nil, &r }
	cfg, c, err := e.connect(ctx, first.Config)
	if err != nil {
		// Already in pipectl's words (and redacted); reading the identity
		// may fail for a while like any call.
		return fail(executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: err.Error(), Retryable: c != nil && transient(err)}})
	}
	ctx = withSDKLog(ctx, c, func(s string) { emit(executor.EventLog, s) })
	ctx = withRetryNotice(ctx, func(status int, wait time.Duration) {
		emit(executor.EventLog, fmt.Sprintf("databricks: the workspace answered %d %s; retrying in %s", status, http.StatusText(status), wait))
	})
	loc, err := e.locate(ctx, c, cfg, first.ProjectRoot, notebooks, emit)
	if err != nil {
		if ctx.Err() != nil {
			return fail(executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "cancelled while importing the notebooks"}})
		}
		return fail(e.apiFailure(c, "prepare the notebooks", err))
	}
	reqs, _, err := libraries(ctx, c, cfg, first.ProjectRoot, &e.uploads, false, func(s string) { emit(executor.EventLog, s) })
	if err != nil {
		if ctx.Err() != nil {
			return fail(executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "cancelled while uploading the wheel"}})
		}
		return fail(e.apiFailure(c, "prepare the libraries", err))
	}
	commit := first.GitCommit
	if loc.Git != nil && loc.Git.Commit != "" {
		commit = loc.Git.Commit
	}
	return &prepared{cfg: cfg, c: c, loc: loc, reqs: reqs, commit: commit, ctx: ctx}, nil
}

// redactorFor is the redactor of a target's client, when there is one
// already (messages before the client exists hold no secret of it).
func (e *Executor) redactorFor(raw json.RawMessage) *redactor {
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil
	}
	key := cfg.Host + "|" + cfg.Profile
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[key]; ok {
		return c.red
	}
	return nil
}

// Run implements executor.Executor: submit, report the run page, poll
// until the run terminates, read the exit value.
func (e *Executor) Run(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
	emit := func(kind executor.EventKind, text string) {
		if red := e.redactorFor(task.Config); red != nil {
			text = red.String(text)
		}
		sink(executor.Event{Time: time.Now(), Kind: kind, Stream: "stderr", Text: text})
	}
	pr, bad := e.prepare(ctx, task, []string{task.Notebook}, emit)
	if bad != nil {
		return *bad, nil
	}
	ctx, cfg, c, loc, reqs, commit := pr.ctx, pr.cfg, pr.c, pr.loc, pr.reqs, pr.commit
	sub, err := submitRequest{cfg: cfg, loc: loc, reqs: reqs, pipeline: task.Pipeline, target: task.Target, stage: task.Stage,
		notebook: task.Notebook, params: task.Params, runID: task.RunID, attempt: task.Attempt, timeout: task.Timeout, commit: commit}.build()
	if err != nil {
		return failure("%v", err), nil
	}
	resp, err := c.W.Jobs.Submit(ctx, sub)
	if err != nil && ctx.Err() != nil {
		// Cancelled during the call: Databricks may have started the run
		// all the same (the answer was lost, not the request). The same
		// idempotency token gets that run, or starts one, so that it can
		// be cancelled below instead of left running unknown.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitAfterCancel)
		resp, err = c.W.Jobs.Submit(sctx, sub)
		cancel()
		if err != nil {
			return executor.Result{Status: executor.Cancelled, Error: &executor.Failure{
				Message: fmt.Sprintf("cancelled before the run was submitted (last error: %v)", c.red.err(err))}}, nil
		}
	}
	if err != nil {
		return e.apiFailure(c, "submit the run", err), nil
	}
	return e.follow(ctx, c, task, resp.RunId, sink, emit), nil
}

// submitAfterCancel bounds the submit that learns the run a cancelled
// submit may have started.
const submitAfterCancel = 30 * time.Second

// locate makes the notebooks reachable: imports the code bundle (workspace
// source) or resolves the git source.
func (e *Executor) locate(ctx context.Context, c *Client, cfg *Config, root string, notebooks []string, emit func(executor.EventKind, string)) (codeLocation, error) {
	if cfg.Source.Kind == SourceGit {
		g, err := cfg.GitSource(e.Env)
		if err != nil {
			return codeLocation{}, err
		}
		return codeLocation{Git: &g}, nil
	}
	b, err := collectCode(ctx, root, notebooks)
	if err != nil {
		return codeLocation{}, err
	}
	folder, uploaded, err := e.uploads.ensureCode(ctx, c, cfg.WorkspaceRoot, b)
	if err != nil {
		return codeLocation{}, err
	}
	if uploaded {
		emit(executor.EventLog, fmt.Sprintf("databricks: imported %d files into %s", len(b.Files), folder))
	}
	return codeLocation{Folder: folder}, nil
}

// apiFailure turns an error from the API into a failed result: client
// errors are final, rate limits, unavailability and broken connections
// may pass.
func (e *Executor) apiFailure(c *Client, what string, err error) executor.Result {
	msg := c.fail("could not "+what+" on Databricks", err).Error()
	return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: msg, Retryable: transient(err)}}
}

// transient reports whether an API error may pass on its own: rate
// limits, server errors and broken connections, never a client error.
func transient(err error) bool {
	var ae *apierr.APIError
	if errors.As(err, &ae) {
		return ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded)
}
