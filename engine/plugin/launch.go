package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/pipectl/pipectl/engine/executor"
	pb "github.com/pipectl/pipectl/engine/plugin/proto/executor/v1"
)

// DefaultStartTimeout bounds a plugin's start-up: exec, handshake and
// Describe.
const DefaultStartTimeout = 30 * time.Second

// Config says how to start an executor plugin.
type Config struct {
	// Name is the executor's name; the plugin must describe itself so.
	Name string
	// Path is the plugin binary and Args its arguments (for pipectl's own
	// built-ins: "__executor", NAME).
	Path string
	Args []string
	// Isolated starts the plugin without the host's environment
	// (go-plugin's SkipHostEnv): it sees only Env. Otherwise Env is added
	// to the inherited environment.
	Isolated bool
	Env      []string
	// Checksum, when set, is the SHA-256 the binary must have; a binary
	// that differs is refused before it runs.
	Checksum []byte
	// AutoMTLS authenticates the connection both ways with one-time
	// certificates, so no other process can talk to the plugin.
	AutoMTLS bool
	// Logger is the host's logger; the client names it after the
	// executor. The plugin's log lines (JSON on its stderr) and anything it
	// writes to stdout or stderr after the handshake go through it.
	Logger hclog.Logger
	// StartTimeout defaults to DefaultStartTimeout, CancelGrace to
	// DefaultCancelGrace.
	StartTimeout time.Duration
	CancelGrace  time.Duration
	// PipeDelay defaults to DefaultPipeDelay: how long stdout and stderr
	// are read after the plugin exits, for a child it left holding them.
	PipeDelay time.Duration
}

// Problem classifies why an executor could not be started, for listings.
type Problem string

const (
	ProblemWrongProtocol   Problem = "wrong protocol version"
	ProblemHandshake       Problem = "handshake failed"
	ProblemChecksum        Problem = "checksum mismatch"
	ProblemNotExecutable   Problem = "not executable"
	ProblemDescribe        Problem = "describe failed"
	ProblemNameMismatch    Problem = "name mismatch"
	ProblemDuplicate       Problem = "duplicate"
	ProblemInvalidName     Problem = "invalid name"
	ProblemShadowsBuiltin  Problem = "name of a built-in"
	ProblemChecksumsFile   Problem = "bad SHA256SUMS"
	ProblemNotListedInSums Problem = "not in SHA256SUMS"
)

// StartError says why an executor plugin could not be started.
type StartError struct {
	Executor string
	Path     string
	Problem  Problem
	// Reason is the problem in words, including how to fix it where known.
	Reason string
}

func (e *StartError) Error() string {
	return fmt.Sprintf("cannot start executor %q (%s): %s: %s", e.Executor, e.Path, e.Problem, e.Reason)
}

// Start starts the plugin, performs the handshake and checks what it
// describes; ctx bounds the start-up only, not the plugin's life. The
// caller must Close the client; clients are also managed by go-plugin, so
// goplugin.CleanupClients stops any left over.
func Start(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.CancelGrace == 0 {
		cfg.CancelGrace = DefaultCancelGrace
	}
	if cfg.PipeDelay == 0 {
		cfg.PipeDelay = DefaultPipeDelay
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	log := cfg.Logger.Named(cfg.Name)
	c := &Client{name: cfg.Name, log: log, cancelGrace: cfg.CancelGrace}
	c.start = func(ctx context.Context) (*process, error) { return startProcess(ctx, cfg, log) }
	p, err := startProcess(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	c.proc = p
	return c, nil
}

// process is one running plugin.
type process struct {
	gp     *goplugin.Client // nil for in-process connections (tests)
	cmd    *exec.Cmd
	runner *processRunner // nil until go-plugin starts the process
	rpc    pb.ExecutorClient
	info   executor.Info
	stderr *tailBuffer
	quiet  atomic.Bool
}

func startProcess(ctx context.Context, cfg Config, log hclog.Logger) (*process, error) {
	p := &process{stderr: &tailBuffer{max: 4096}}
	fail := func(problem Problem, reason string) (*process, error) {
		// The error says it all; go-plugin's warnings about killing what
		// never started would only repeat it.
		p.quiet.Store(true)
		if p.gp != nil {
			p.gp.Kill()
		}
		return nil, &StartError{Executor: cfg.Name, Path: cfg.Path, Problem: problem, Reason: reason}
	}
	// go-plugin checks a checksum only on a command it runs itself.
	if len(cfg.Checksum) > 0 {
		secure := &goplugin.SecureConfig{Checksum: cfg.Checksum, Hash: sha256.New()}
		if ok, err := secure.Check(cfg.Path); err != nil {
			return fail(ProblemNotExecutable, err.Error())
		} else if !ok {
			return fail(ProblemChecksum, checksumMismatch)
		}
	}
	quietLog := &quietLogger{Logger: log, quiet: &p.quiet}
	p.gp = goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: versionedPlugins(protocolVersion, &grpcPlugin{}),
		// go-plugin passes its command template (its environment and
		// stdin) to our runner, which runs the plugin binary.
		RunnerFunc: func(_ hclog.Logger, tmpl *exec.Cmd, _ string) (runner.Runner, error) {
			cmd := exec.Command(cfg.Path, cfg.Args...)
			// The environment is built here, not by go-plugin (which would
			// append the host's after ours, so that ours could not
			// override it).
			if !cfg.Isolated {
				cmd.Env = os.Environ()
			}
			cmd.Env = append(append(cmd.Env, cfg.Env...), tmpl.Env...)
			cmd.Stdin = tmpl.Stdin
			p.cmd = cmd
			p.runner = newProcessRunner(quietLog, cmd, cfg.PipeDelay)
			return p.runner, nil
		},
		Managed:          true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           quietLog,
		// Output after the handshake is not data: pipectl's stdout belongs
		// to the user (tables, --json). Stages report output as events.
		SyncStdout:   &lineLogger{log: log, stream: "stdout"},
		SyncStderr:   &lineLogger{log: log, stream: "stderr"},
		Stderr:       p.stderr,
		SkipHostEnv:  true,
		AutoMTLS:     cfg.AutoMTLS,
		StartTimeout: cfg.StartTimeout,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize))},
	})
	rpcClient, err := p.gp.Client()
	if err != nil {
		problem, reason := p.explainStartError(err)
		return fail(problem, reason)
	}
	raw, err := rpcClient.Dispense(pluginName)
	if err != nil {
		return fail(ProblemHandshake, err.Error())
	}
	p.rpc = raw.(pb.ExecutorClient)

	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	resp, err := p.rpc.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return fail(ProblemDescribe, err.Error())
	}
	if e := resp.GetError(); e != nil {
		return fail(ProblemDescribe, e.GetMessage())
	}
	p.info = infoFromProto(resp.GetInfo())
	if p.info.Protocol != protocolVersion {
		return fail(ProblemWrongProtocol, fmt.Sprintf("it describes protocol %d, pipectl speaks %d; use a build of the executor for this pipectl", p.info.Protocol, protocolVersion))
	}
	if cfg.Name != "" && p.info.Name != cfg.Name {
		return fail(ProblemNameMismatch, fmt.Sprintf("it describes itself as %q; name the binary pipectl-executor-%s or fix its Describe", p.info.Name, p.info.Name))
	}
	return p, nil
}

const checksumMismatch = "the binary's SHA-256 differs from its SHA256SUMS entry; reinstall it or update SHA256SUMS"

var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// explainStartError turns go-plugin's start errors into a problem and a
// reason a person can act on.
func (p *process) explainStartError(err error) (Problem, string) {
	msg := err.Error()
	var execErr *exec.Error
	switch {
	case errors.Is(err, goplugin.ErrChecksumsDoNotMatch):
		return ProblemChecksum, checksumMismatch
	case strings.Contains(msg, "incompatible API version"):
		theirs := "another version"
		if m := pluginVersionRE.FindStringSubmatch(msg); m != nil {
			theirs = "protocol " + m[1]
		}
		return ProblemWrongProtocol, fmt.Sprintf("it speaks %s, pipectl speaks protocol %d; use a build of the executor for this pipectl", theirs, protocolVersion)
	case strings.Contains(msg, "Unrecognized remote plugin message: \n"):
		// Its stdout closed without a line: it exited (or closed stdout).
		p.waitExited(time.Second)
		return ProblemHandshake, p.exitedBeforeHandshake()
	case strings.Contains(msg, "Unrecognized remote plugin message"):
		line := strings.TrimPrefix(msg, "Unrecognized remote plugin message: ")
		line, _, _ = strings.Cut(line, "\n")
		return ProblemHandshake, fmt.Sprintf("it printed %q instead of the plugin handshake; an executor must call plugin.Serve and print nothing to stdout before it", line)
	case strings.Contains(msg, "exited before we could connect"):
		return ProblemHandshake, p.exitedBeforeHandshake()
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return ProblemHandshake, "no handshake before the start timeout; is it a pipectl executor?"
	case errors.As(err, &execErr), strings.Contains(msg, "permission denied"), strings.Contains(msg, "exec format error"):
		return ProblemNotExecutable, msg
	}
	return ProblemHandshake, msg
}

func (p *process) exitedBeforeHandshake() string {
	reason := "it exited before the handshake"
	if st := p.exitState(); st != "" {
		reason += " (" + st + ")"
	}
	// go-plugin copies the plugin's stderr in a goroutine that may still be
	// reading the pipe after the exit was seen: give its last words a moment
	// (a loaded machine lost them: TestStartFailuresSayWhy failed in CI).
	tail := p.stderr.lastLines(3)
	for deadline := time.Now().Add(stderrDrain); tail == "" && time.Now().Before(deadline); tail = p.stderr.lastLines(3) {
		time.Sleep(10 * time.Millisecond)
	}
	if tail != "" {
		reason += "; it said: " + tail
	}
	return reason
}

// stderrDrain bounds the wait for an exited plugin's stderr to arrive.
const stderrDrain = time.Second

func (p *process) describe(ctx context.Context, c *Client) (executor.Info, error) {
	resp, err := p.rpc.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return executor.Info{}, c.rpcError(ctx, p, "describing itself", err)
	}
	if e := resp.GetError(); e != nil {
		return executor.Info{}, fmt.Errorf("executor %q: %s", c.name, e.GetMessage())
	}
	return infoFromProto(resp.GetInfo()), nil
}

func (p *process) exited() bool { return p.runner != nil && p.runner.exited() }

// waitExited waits up to d for the process to exit: a broken connection
// usually means it is exiting, and its exit status makes a better error.
func (p *process) waitExited(d time.Duration) bool {
	if p.runner == nil {
		return false
	}
	select {
	case <-p.runner.done:
		return true
	case <-time.After(d):
		return false
	}
}

// exitState says how the process ended ("signal: killed", "exit status
// 2"), or "" while it runs. The runner closes done only after Wait
// returned, so ProcessState is safe to read then.
func (p *process) exitState() string {
	if p == nil || !p.exited() || p.cmd.ProcessState == nil {
		return ""
	}
	return p.cmd.ProcessState.String()
}

func (p *process) kill() {
	if p.gp != nil {
		p.gp.Kill()
	}
}

// tailBuffer keeps the last bytes written to it: a plugin's stderr, for
// errors about plugins that died before the handshake.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

// lastLines returns up to n last non-empty lines, joined by " / ".
func (t *tailBuffer) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(string(t.buf), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// quietLogger is go-plugin's logger: while quiet is set its warnings and
// errors are demoted to debug.
type quietLogger struct {
	hclog.Logger
	quiet *atomic.Bool
}

func (l *quietLogger) Warn(msg string, args ...any) {
	if l.quiet.Load() {
		l.Logger.Debug(msg, args...)
		return
	}
	l.Logger.Warn(msg, args...)
}

func (l *quietLogger) Error(msg string, args ...any) {
	if l.quiet.Load() {
		l.Logger.Debug(msg, args...)
		return
	}
	l.Logger.Error(msg, args...)
}

// lineLogger logs what a plugin writes to its stdout or stderr after the
// handshake, one log line per line of output.
type lineLogger struct {
	mu     sync.Mutex
	log    hclog.Logger
	stream string
	buf    []byte
}

func (w *lineLogger) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.log.Info("plugin output", "stream", w.stream, "line", string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}
