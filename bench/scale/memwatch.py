"""Run a command and measure the memory of its whole process tree (Linux /proc).

    python memwatch.py --out mem.json [--interval 0.2] -- COMMAND [ARG...]

Every `interval` seconds the tree rooted at COMMAND's process is listed (children found through
/proc/*/stat) and, per process, VmRSS and VmHWM are read from /proc/PID/status and Pss from
/proc/PID/smaps_rollup. The output JSON has:

- `peak_tree_rss` / `peak_tree_pss`: the largest sum over the tree at one sample (RSS counts pages
  shared between processes, e.g. libraries, once per process: an upper bound; PSS splits them).
  PSS is read every `pss_every` samples only: the kernel walks the page tables of the whole
  process for smaps_rollup (tens of ms for a process of a few GB, holding its memory map lock),
  which would slow down what is measured;
- `processes`: per process its role (the pipectl stage from `--param pipectl_stage=...`, `mlflow`
  for the tracking server, else the program name), `hwm`, its exact peak RSS as the kernel
  counted it (VmHWM, last read before it exited), and `started`/`last_seen` (Unix seconds), so
  a process forked without its own command line (a warm worker's child) can be matched to a
  stage by time;
- `by_role`: the largest `hwm` per role;
- `tree_cpu_seconds`: user + system CPU time of every process of the tree, each as last read
  (/proc/PID/stat), summed: a lower bound that misses at most one interval per process.

Sampling can miss a peak shorter than the interval; VmHWM cannot. stdout and stderr of COMMAND
pass through; the exit code is COMMAND's. Bytes throughout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name in parentheses, which may contain spaces.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _tree(root: int) -> list[int]:
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _status_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _pss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def _started(pid: int, boot: float) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    ticks = int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22, starttime
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14, 15


def _role(pid: int) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in args if a]
    for i, w in enumerate(words):
        if w.startswith("pipectl_stage="):
            return w.split("=", 1)[1]
        if w == "--param" and i + 1 < len(words) and words[i + 1].startswith("pipectl_stage="):
            return words[i + 1].split("=", 1)[1]
    text = " ".join(words)
    if "mlflow" in text and ("server" in text or "uvicorn" in text):
        return "mlflow"
    return Path(words[0]).name if words else "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument(
        "--pss-every",
        type=int,
        default=10,
        help="read PSS every N samples (default 10)",
    )
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given")

    proc = subprocess.Popen(command)
    # Forward Ctrl-C/SIGTERM to the command (pipectl cancels its stages) instead of dying first.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: proc.send_signal(s))
    processes: dict[int, dict] = {}
    boot = _boot_time()
    peak_rss = peak_pss = 0
    peak_at = 0.0
    samples = 0
    started = time.monotonic()
    while proc.poll() is None:
        rss_sum = pss_sum = 0
        read_pss = samples % args.pss_every == 0
        for pid in _tree(proc.pid):
            try:
                status = _status_kb(pid)
                pss = _pss(pid) if read_pss else 0
                p = processes.get(pid)
                if p is None:
                    p = {
                        "pid": pid,
                        "role": _role(pid),
                        "hwm": 0,
                        "started": round(_started(pid, boot), 2),
                    }
                    processes[pid] = p
            except (OSError, ValueError):
                continue  # exited meanwhile
            p["hwm"] = max(p["hwm"], status.get("VmHWM", 0))
            p["cpu"] = _cpu_seconds(pid) or p.get("cpu", 0.0)
            p["last_seen"] = round(time.time(), 2)
            rss_sum += status.get("VmRSS", 0)
            pss_sum += pss
        samples += 1
        if rss_sum > peak_rss:
            peak_rss, peak_at = rss_sum, time.monotonic() - started
        if read_pss:
            peak_pss = max(peak_pss, pss_sum)
        time.sleep(args.interval)

    by_role: dict[str, int] = {}
    for p in processes.values():
        by_role[p["role"]] = max(by_role.get(p["role"], 0), p["hwm"])
    result = {
        "command": command,
        "exit_code": proc.returncode,
        "seconds": round(time.monotonic() - started, 3),
        "interval": args.interval,
        "samples": samples,
        "peak_tree_rss": peak_rss,
        "peak_tree_rss_at": round(peak_at, 1),
        "peak_tree_pss": peak_pss,
        "by_role": by_role,
        "tree_cpu_seconds": round(sum(p.get("cpu", 0.0) for p in processes.values()), 2),
        "processes": sorted(processes.values(), key=lambda p: -p["hwm"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
