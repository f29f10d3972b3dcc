"""pipectl process guard: run a command; stop its whole process group when pipectl goes away.

pipectl runs `python -I -S -c <this file> FD COMMAND [ARG]...` in a new process group and keeps
the write end of a pipe whose read end is FD. The kernel closes that write end when pipectl exits
for any reason, SIGKILL included; the guard then reads EOF and stops its process group (the command
and everything it started): SIGTERM, a grace period, SIGKILL. Standard library only, Python >= 3.8.
"""

import os
import signal
import subprocess
import sys
import threading
import time


def main() -> int:
    fd = int(sys.argv[1])
    grace = float(os.environ.pop("PIPECTL_GUARD_GRACE", "5"))
    # pipectl signals the whole group; the command handles the signal, the guard stays to report
    # the command's exit status. A handler (not SIG_IGN, which exec would inherit) does that.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        child = subprocess.Popen(sys.argv[2:])
    except OSError as exc:
        print(f"pipectl guard: cannot start {sys.argv[2]}: {exc}", file=sys.stderr)
        return 127
    done = threading.Event()
    stopping = threading.Event()

    def watch() -> None:
        try:
            while os.read(fd, 512):
                pass
        except OSError:
            pass
        stopping.set()
        group = os.getpgrp()
        os.killpg(group, signal.SIGTERM)
        done.wait(grace)
        os.killpg(group, signal.SIGKILL)  # the guard too: nobody is left to report to

    threading.Thread(target=watch, daemon=True).start()
    code = child.wait()
    done.set()
    if stopping.is_set():
        time.sleep(grace + 1)  # the watcher SIGKILLs the group, stragglers and this process included
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
