package local

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/pipectl/pipectl/internal/proc"
)

// Store is the local MLflow store: one SQLite database for tracking and
// the registry, and an artifact directory, under <state>/mlflow.
type Store struct {
	Dir string
}

// NewStore returns the store of a pipectl state directory.
func NewStore(stateDir string) Store { return Store{Dir: filepath.Join(stateDir, "mlflow")} }

// DB is the SQLite database file.
func (s Store) DB() string { return filepath.Join(s.Dir, "mlflow.db") }

// Artifacts is where the server puts artifacts (proxied uploads).
func (s Store) Artifacts() string { return filepath.Join(s.Dir, "artifacts") }

// URI is the SQLAlchemy URI of the database.
func (s Store) URI() string { return "sqlite:///" + s.DB() }

// readyMarker exists once a server has created the store's schema.
func (s Store) readyMarker() string { return filepath.Join(s.Dir, ".initialized") }

// initialized reports whether the schema was created (and the database
// not removed since).
func (s Store) initialized() bool {
	for _, f := range []string{s.readyMarker(), s.DB()} {
		if _, err := os.Stat(f); err != nil {
			return false
		}
	}
	return true
}

// launcher runs `mlflow server` with its uvicorn child in the same process
// (see mlflow_server.py): half the start-up.
//
//go:embed mlflow_server.py
var launcherSource string

// launcher is mlflow_server.py without its docstring, for a readable `ps`.
var launcher = "# pipectl: mlflow server in one process (plugins/local/mlflow_server.py)\n" +
	launcherSource[strings.Index(launcherSource[3:], `"""`)+6:]

// inProcessServer selects the launcher; false runs `python -m mlflow server`
// (benchmarks compare the two).
var inProcessServer = true

// serverArgs is the interpreter's arguments for `mlflow server ...` on
// host:port (through the launcher). Artifacts are
// proxied (mlflow-artifacts:/ URIs, stored under Artifacts), so what a
// notebook logs lands in the store whatever its working directory, and the
// store still works if the project directory moves.
func (s Store) serverArgs(host string, port int) []string {
	args := []string{"-m", "mlflow", "server"}
	if inProcessServer {
		args = []string{"-c", launcher}
	}
	return append(args,
		"--backend-store-uri", s.URI(),
		"--registry-store-uri", s.URI(),
		"--serve-artifacts",
		"--artifacts-destination", s.Artifacts(),
		"--host", host,
		"--port", strconv.Itoa(port),
		"--workers", "1",
		"--uvicorn-opts", "--no-access-log",
	)
}

// serverEnv is the environment of an MLflow server: no job execution (it
// would start a job runner and a handful of huey consumers per server).
func serverEnv(base []string) []string {
	return append(scrubEnv(base), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false", "PYTHONUNBUFFERED=1")
}

// server is an MLflow server process for one executor.
type server struct {
	store   Store
	python  string
	env     []string
	timeout time.Duration
	// fixedPort: a port taken is an error, not a reason to move.
	fixedPort bool

	// port and url are fixed before the server is ready (data stages get
	// the URL without waiting); a port taken meanwhile moves the server.
	mu   sync.Mutex
	port int
	url  string
	p    *proc.Process

	ready     chan struct{}
	err       error // set before ready is closed
	stopCtx   context.Context
	stop      context.CancelFunc
	logs      *ring
	startedAt time.Time
	readyAt   time.Time
}

// startServer starts an MLflow server on store in the background, on port
// or, when port is 0, a free one.
func startServer(store Store, python string, env []string, timeout time.Duration, port int) *server {
	s := &server{store: store, python: python, env: serverEnv(env), timeout: timeout, fixedPort: port != 0,
		ready: make(chan struct{}), logs: newRing(200), startedAt: time.Now()}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.port = port
	if port == 0 {
		s.port, s.err = freePort()
	}
	s.url = "http://127.0.0.1:" + strconv.Itoa(s.port)
	if s.err != nil {
		close(s.ready)
		return s
	}
	go func() {
		s.err = s.run()
		s.readyAt = time.Now()
		close(s.ready)
	}()
	return s
}

// URL is the server's address (maybe not ready yet).
func (s *server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Wait waits until the server answers or failed to start.
func (s *server) Wait(ctx context.Context) (string, error) {
	select {
	case <-s.ready:
		if s.err != nil {
			return "", s.err
		}
		return s.URL(), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Alive reports whether the server started and is still running.
func (s *server) Alive() bool {
	select {
	case <-s.ready:
	default:
		return true // still starting
	}
	if s.err != nil {
		return false
	}
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	select {
	case <-p.Exited():
		return false
	default:
		return true
	}
}

// Close stops the server (and a start in progress).
func (s *server) Close() {
	s.stop()
	<-s.ready
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	if p != nil {
		p.Stop()
		p.Wait()
	}
}

func (s *server) run() error {
	// Owner-only: the store holds every run's parameters, metrics and
	// models. Stores made by older versions are tightened too.
	if err := os.MkdirAll(s.store.Artifacts(), 0o700); err != nil {
		return fmt.Errorf("MLflow store: %w", err)
	}
	if err := os.Chmod(s.store.Dir, 0o700); err != nil {
		return fmt.Errorf("MLflow store: %w", err)
	}
	// The first server on a fresh store creates its schema (seconds of
	// migrations); two pipectl processes must not do that at once.
	if !s.store.initialized() {
		lock := flock.New(filepath.Join(s.store.Dir, "init.lock"))
		if _, err := lock.TryLockContext(s.stopCtx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("lock the MLflow store: %w", err)
		}
		defer lock.Unlock()
	}
	ctx, cancel := context.WithTimeout(s.stopCtx, s.timeout)
	defer cancel()
	const attempts = 3
	for attempt := 1; ; attempt++ {
		err := s.startOnce(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, errPortTaken) && s.fixedPort {
			return fmt.Errorf("port %d is in use on 127.0.0.1: choose another", s.port)
		}
		if !errors.Is(err, errPortTaken) || attempt == attempts {
			return err
		}
		port, perr := freePort()
		if perr != nil {
			return perr
		}
		s.mu.Lock()
		s.port, s.url = port, "http://127.0.0.1:"+strconv.Itoa(port)
		s.mu.Unlock()
	}
	if err := os.WriteFile(s.store.readyMarker(), nil, 0o600); err != nil {
		return err
	}
	// SQLite creates the database with the server's umask.
	return os.Chmod(s.store.DB(), 0o600)
}

var errPortTaken = errors.New("port taken")

func (s *server) startOnce(ctx context.Context) error {
	s.mu.Lock()
	port, url := s.port, s.url
	s.mu.Unlock()
	if s.fixedPort {
		// Another server on the port would answer our health checks.
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return errPortTaken
		}
		l.Close()
	}
	p, err := proc.Start(proc.Cmd{Path: s.python, Args: s.store.serverArgs("127.0.0.1", port), Env: s.env,
		Guard: s.python, Stdout: s.logs.add, Stderr: s.logs.add, Dir: s.store.Dir})
	if err != nil {
		return fmt.Errorf("start the MLflow server: %w", err)
	}
	s.mu.Lock()
	s.p = p
	s.mu.Unlock()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.Exited():
			st, _ := p.Wait()
			if strings.Contains(s.logs.text(), "ddress already in use") {
				return errPortTaken
			}
			return fmt.Errorf("the MLflow server exited during start-up (%s):\n%s", st, s.logs.tail(30))
		case <-ctx.Done():
			p.Stop()
			p.Wait()
			if s.stopCtx.Err() != nil {
				return errors.New("the MLflow server was stopped during start-up")
			}
			return fmt.Errorf("the MLflow server did not answer within %s:\n%s", s.timeout, s.logs.tail(30))
		case <-tick.C:
			resp, err := client.Get(url + "/health")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
	}
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port for the MLflow server: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ring keeps the last lines of a stream.
type ring struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func newRing(max int) *ring { return &ring{max: max} }

func (r *ring) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
	if len(r.lines) > r.max {
		r.lines = r.lines[len(r.lines)-r.max:]
	}
}

func (r *ring) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// tail returns the last n lines.
func (r *ring) tail(n int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	lines := r.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
