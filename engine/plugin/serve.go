package plugin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/pipectl/pipectl/engine/executor"
)

// EnvLogLevel names the variable that carries pipectl's log level to
// plugins (trace, debug, info, warn, error, off).
const EnvLogLevel = "PIPECTL_LOG_LEVEL"

// DefaultShutdownGrace is how long a plugin that is shutting down gives its
// running stages to stop before it closes the executor and exits.
const DefaultShutdownGrace = 30 * time.Second

// ErrNotLaunched is returned by ServeWithOptions when the process was not
// started by pipectl.
var ErrNotLaunched = errors.New("this program is a pipectl executor plugin: pipectl starts it when a pipeline's target names it; it is not meant to be run by hand")

// ServeOptions adjusts Serve. The zero value is what Serve uses.
type ServeOptions struct {
	// Logger receives the plugin's own log lines. The default writes JSON
	// to stderr at the level pipectl passes in PIPECTL_LOG_LEVEL, which
	// pipectl parses and shows through its logger.
	Logger hclog.Logger
	// Getenv reads the environment; default os.Getenv.
	Getenv func(string) string
	// ShutdownGrace defaults to DefaultShutdownGrace.
	ShutdownGrace time.Duration

	// protocol overrides the protocol version served (tests).
	protocol int
	// test serves in-process (go-plugin's test mode).
	test *goplugin.ServeTestConfig
	// parentPollInterval is how often the plugin checks that pipectl is
	// still its parent (default 500ms).
	parentPollInterval time.Duration
}

// Serve serves e to pipectl and returns when pipectl is done with it. Call
// it from main; a complete executor is a type with the four methods of
// executor.Executor and
//
//	func main() { plugin.Serve(&myExecutor{}) }
//
// Print nothing to stdout before Serve: pipectl reads the handshake there.
// When started by hand, Serve explains that on stderr and exits with
// status 1.
func Serve(e executor.Executor) {
	if err := ServeWithOptions(e, ServeOptions{}); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(1)
	}
}

// NewLogger returns the logger Serve uses by default: JSON lines on w at
// level ("" means info).
func NewLogger(w io.Writer, level string) hclog.Logger {
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		lvl = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{Output: w, Level: lvl, JSONFormat: true})
}

// ServeWithOptions is Serve with options; it returns errors instead of
// exiting.
func ServeWithOptions(e executor.Executor, opts ServeOptions) error {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.test == nil && !LaunchedByPipectl(opts.Getenv) {
		return ErrNotLaunched
	}
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = DefaultShutdownGrace
	}
	if opts.protocol == 0 {
		opts.protocol = protocolVersion
	}
	if opts.parentPollInterval == 0 {
		opts.parentPollInterval = 500 * time.Millisecond
	}
	// go-plugin replaces os.Stdout and os.Stderr with pipes after the
	// handshake; the logger keeps the real stderr, and both are restored
	// when serving ends.
	stdout, stderr := os.Stdout, os.Stderr
	defer func() { os.Stdout, os.Stderr = stdout, stderr }()
	if opts.Logger == nil {
		opts.Logger = NewLogger(stderr, opts.Getenv(EnvLogLevel))
	}
	log := opts.Logger

	srv := newServer(e, log)
	var grpcServer atomic.Pointer[grpc.Server]
	cfg := &goplugin.ServeConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: versionedPlugins(opts.protocol, &grpcPlugin{server: srv}),
		GRPCServer: func(o []grpc.ServerOption) *grpc.Server {
			s := goplugin.DefaultGRPCServer(append(o, grpc.MaxRecvMsgSize(maxMessageSize), grpc.MaxSendMsgSize(maxMessageSize)))
			grpcServer.Store(s)
			return s
		},
		Logger: log,
		Test:   opts.test,
	}

	// Stop serving when pipectl goes away without saying so (it was killed
	// with SIGKILL and cannot shut us down: go-plugin issue #210), or on
	// SIGTERM. Stopping the gRPC server cancels every running stage.
	quit := make(chan struct{})
	defer close(quit)
	if opts.test == nil {
		terms := make(chan os.Signal, 1)
		signal.Notify(terms, syscall.SIGTERM)
		defer signal.Stop(terms)
		go watchParent(os.Getppid(), opts.parentPollInterval, terms, quit, func(why string) {
			// Cancel the running stages first and let them report how they
			// ended while the connection (if any) still works.
			log.Info("shutting down", "reason", why)
			srv.cancelAll(errors.New(why))
			srv.waitRunning(opts.ShutdownGrace)
			if s := grpcServer.Load(); s != nil {
				stopServer(s, time.Second)
			}
		})
	}

	goplugin.Serve(cfg)

	if grpcServer.Load() == nil {
		return errors.New("the plugin server did not start (see the log above)")
	}
	// Serving ended: pipectl shut us down, or we stopped above. Let stages
	// still running (their contexts are cancelled) finish cleaning up.
	srv.cancelAll(errors.New("the executor is shutting down"))
	if !srv.waitRunning(opts.ShutdownGrace) {
		log.Warn("stages still running after the shutdown grace; exiting anyway", "grace", opts.ShutdownGrace)
	}
	if c, ok := e.(io.Closer); ok {
		if err := c.Close(); err != nil {
			log.Error("closing the executor", "error", err)
			return fmt.Errorf("close executor: %w", err)
		}
	}
	return nil
}

// stopServer stops s gracefully, so that results already sent reach the
// client, but waits at most d: go-plugin's stdio stream never ends on its
// own.
func stopServer(s *grpc.Server, d time.Duration) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		s.Stop()
	}
}

// watchParent calls stop once, when the parent process changes (pipectl
// died and the plugin was re-parented) or a SIGTERM arrives, unless quit
// closes first.
func watchParent(ppid int, every time.Duration, terms <-chan os.Signal, quit <-chan struct{}, stop func(why string)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-quit:
			return
		case <-terms:
			stop("received SIGTERM")
			return
		case <-tick.C:
			if os.Getppid() != ppid {
				stop("pipectl (the parent process) is gone")
				return
			}
		}
	}
}
