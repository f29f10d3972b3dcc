"""pipectl: a warm process that starts the local executor's stages (plugins/local/worker.go).

A stage's `python -m pipectl_runner ...` spends seconds before its notebook does anything useful:
starting Python, then importing pandas, scikit-learn and MLflow. This process pays that once per
pipectl run: it imports those libraries (one module at a time, serving requests in between), then
forks a fresh process for every stage. Each stage still runs in a process of its own, with its own
environment, working directory, process group and output; nothing a stage does reaches this process
or another stage (they share only the modules imported here, copy-on-write).

Usage: python -c <this file> SOCKET. pipectl connects to the Unix socket SOCKET (in a directory only
its user can enter) once per stage and sends one JSON line {"argv", "env", "cwd", "grace",
"after_preload"}, argv being the interpreter's arguments (-m pipectl_runner ...), with the stage's
stdout and stderr attached (SCM_RIGHTS). This process forks the stage's leader (with after_preload,
once everything is imported), which takes over the connection:

  leader -> pipectl  {"pid": N}      N is also the new process group's id
  pipectl -> leader  "go"            (pipectl may have given up waiting: then nothing runs)
  leader             forks the stage: -m pipectl_runner in a child, in the group
  leader -> pipectl  {"exit": CODE}  when the stage ends (128+n for signal n, as guard.py)

The leader then kills what is left of its group, itself included. Like guard.py it ignores
SIGTERM/SIGINT (pipectl signals the whole group; the stage handles them) and, when the connection
ends before the stage does (pipectl died), stops the group: SIGTERM, the grace period, SIGKILL.
"""

import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
import warnings

# What the notebooks import (notebooks/requirements.txt). The first few (every stage reads data) are
# imported before the worker takes requests: the run's first stage would otherwise import them
# itself at the same time. The rest, one module at a time between requests: a data stage that
# arrives meanwhile gets what is loaded by then and imports what it lacks itself.
PRELOAD_FIRST = ("numpy", "pandas", "pyarrow", "pyarrow.parquet")
PRELOAD = (
    "sklearn",
    "sklearn.base",
    "sklearn.pipeline",
    "sklearn.feature_extraction.text",
    "sklearn.linear_model",
    "sklearn.naive_bayes",
    "sklearn.svm",
    "sklearn.calibration",
    "sklearn.metrics",
    "sklearn.model_selection",
    "mlflow",
    "mlflow.sklearn",
    "mlflow.tracking",
    "mlflow.models",
    "matplotlib",
    "matplotlib.figure",
)

# Python 3.12+ warns about fork() in a process with threads of its own; the only ones here are
# native thread pools (OpenBLAS), which re-initialise in the child (pthread_atfork). Python threads
# would not: the worker refuses to fork once one exists (see preload).
warnings.filterwarnings("ignore", message=r".*fork\(\) may lead to deadlocks", category=DeprecationWarning)


def log(message):
    print(f"pipectl-worker: {message}", file=sys.stderr, flush=True)


def main():
    path = sys.argv[1]
    # As the runner does: no MLflow telemetry (whose client would start a thread at import).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    def stop(*_):
        cleanup(path)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    for name in PRELOAD_FIRST:
        preload(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    print("pipectl-worker: listening", flush=True)
    pending = list(PRELOAD)
    while True:
        for _ in sel.select(0 if pending else 1.0):
            serve(listener, sel, preloading=bool(pending))
        reap()
        if pending:
            preload(pending.pop(0))
            if not pending:
                print(f"pipectl-worker: preloaded in {time.monotonic() - started:.1f}s", flush=True)
                while WAITING:
                    fork_stage(listener, sel, *WAITING.pop(0))


def cleanup(path):
    for f in (lambda: os.unlink(path), lambda: os.rmdir(os.path.dirname(path))):
        with contextlib.suppress(OSError):
            f()


def preload(name):
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - an optimisation: the stage imports it, or fails, itself
        log(f"preload {name}: {type(exc).__name__}: {exc}")
    if threading.active_count() > 1:
        # Forking now could copy a lock another thread holds: give up, pipectl starts stages as
        # plain processes.
        names = ", ".join(t.name for t in threading.enumerate() if t is not threading.main_thread())
        log(f"importing {name} started a thread ({names}): stages cannot be forked from here")
        sys.exit(3)
    # Keep what is loaded out of the garbage collector's way: fewer pages copied in the children.
    gc.freeze()


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# Requests that asked to start once everything is preloaded ("after_preload": stages that use
# MLflow would otherwise import it themselves, while this process does too): (conn, req, fds).
WAITING = []


def serve(listener, sel, preloading):
    """Fork a leader for every request waiting (or keep it for after the preload)."""
    while True:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        got = read_request(conn)
        if got is None:
            continue
        if preloading and got[1].get("after_preload"):
            WAITING.append(got)
        else:
            fork_stage(listener, sel, *got)


def read_request(conn):
    fds = []
    try:
        conn.setblocking(True)
        conn.settimeout(30)
        data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
        while not data.endswith(b"\n"):
            more = conn.recv(1 << 16)
            if not more:
                raise EOFError("connection closed mid-request")
            data += more
        req = json.loads(data)
        if len(fds) != 2:
            raise ValueError(f"expected 2 file descriptors (stdout, stderr), got {len(fds)}")
    except (OSError, ValueError, EOFError) as exc:
        log(f"bad request: {exc}")
        for fd in fds:
            os.close(fd)
        conn.close()
        return None
    return conn, req, fds


def fork_stage(listener, sel, conn, req, fds):
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 127
        try:
            sel.close()
            listener.close()
            for other, _, other_fds in WAITING:  # other stages' requests
                other.close()
                for fd in other_fds:
                    os.close(fd)
            conn.settimeout(None)
            code = lead(conn, req, fds)
        except BaseException:  # noqa: BLE001 - the leader never returns into the worker's loop
            traceback.print_exc()
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    conn.close()


def send(conn, obj):
    conn.sendall(json.dumps(obj).encode() + b"\n")


def lead(conn, req, fds):
    """The stage's process group leader: guard.py's job, in a fork of the worker."""
    # A handler, not SIG_IGN, which the stage would inherit.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    os.setpgid(0, 0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    for fd in (devnull, *fds):
        os.close(fd)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(kv.split("=", 1) for kv in req["env"] if "=" in kv)
    grace = float(req.get("grace") or 5)
    send(conn, {"pid": os.getpid()})
    answer = b""
    while len(answer) < 3:
        more = conn.recv(3 - len(answer))
        if not more:
            break
        answer += more
    if answer != b"go\n":
        return 0  # pipectl gave up on this stage: run nothing
    child = os.fork()
    if child == 0:
        conn.close()
        run_stage(req["argv"])  # never returns
    done = threading.Event()
    stopping = threading.Event()

    def watch():
        try:
            while conn.recv(512):
                pass
        except OSError:
            pass
        if done.is_set():
            return
        stopping.set()
        os.killpg(0, signal.SIGTERM)
        done.wait(grace)
        os.killpg(0, signal.SIGKILL)  # this process too: nobody is left to report to

    threading.Thread(target=watch, daemon=True).start()
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    done.set()
    if stopping.is_set():
        time.sleep(grace + 1)  # the watcher kills the group, this process included
    code = 128 - code if code < 0 else code
    with contextlib.suppress(OSError):
        send(conn, {"exit": code})
    # Whatever the stage left in its group goes too, and this process with it.
    os.killpg(0, signal.SIGKILL)
    return code


def name_process(argv):
    """Show the notebook's file name as this process's name (`ps -o comm`, `top`): its command
    line is the worker's, which says nothing about the stage."""
    if len(argv) > 2:
        with contextlib.suppress(OSError), open("/proc/self/comm", "w") as f:
            f.write(os.path.basename(argv[2])[:15])


def run_stage(argv):
    """`python ARGV` for ARGV = -m pipectl_runner ..., in this (forked) interpreter."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 1
    try:
        # A fresh process seeds numpy's global generator from the OS; `random` reseeds itself.
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        if len(argv) < 2 or argv[0] != "-m":
            raise ValueError(f"the worker runs `-m MODULE ...` only, not {argv[:2]}")
        import runpy

        name_process(argv)
        # As `python -m`: the working directory first on sys.path, argv[0] set by runpy.
        sys.path[0] = os.getcwd()
        sys.argv = ["-m", *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - as the interpreter would: print it, exit 1
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
