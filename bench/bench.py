#!/usr/bin/env python3
"""pipectl's benchmark suite: `make bench` (full sizes) and `make bench-smoke` (seconds-long sizes that
only keep the suite from rotting). Method and results: docs/BENCHMARKS.md.

Every number is the median over several runs with min-max, and every comparison is a ratio against a
baseline run in the same invocation, interleaved with it (this machine is shared and noisy). Processes
are measured with /usr/bin/time -v (wall time also with a monotonic clock around it): wall, CPU
(user + system) and peak RSS, the largest resident set of any one process of the tree.

Usage: bench/bench.py [--smoke] [--only B1,B3] [--runs N] [--data CSV] [--state DIR] [--out DIR]
Standard library only (Python 3.10+); needs Go and the project's Python (pipectl builds its venv).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "financial_news.csv"
DATA_CANDIDATES = [
    ROOT.parent / "shared" / "data" / "financial-sentiment" / "data.csv",
    ROOT.parent.parent / "shared" / "data" / "financial-sentiment" / "data.csv",
]

FULL = {"b1": 3, "b2": 5, "b3": 7, "b4": 5, "b4_stages": 50, "b6": 5}
SMOKE = {"b1": 1, "b2": 1, "b3": 1, "b4": 1, "b4_stages": 10, "b6": 1}


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Sample:
    wall: float  # seconds, monotonic clock around the process
    cpu: float  # user + system seconds of the process tree
    rss_mib: float  # peak resident set of the largest process of the tree
    extra: dict = field(default_factory=dict)


TIME_FIELDS = {
    "User time (seconds)": "user",
    "System time (seconds)": "sys",
    "Maximum resident set size (kbytes)": "rss_kb",
}


def timed(
    argv: list[str], *, env: dict | None = None, cwd: Path = ROOT, output: Path | None = None
) -> Sample:
    """Run argv to completion under /usr/bin/time -v; fail loudly when it fails."""
    out = open(output, "w") if output else subprocess.DEVNULL  # noqa: SIM115
    try:
        if Path("/usr/bin/time").exists():
            with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
                started = time.perf_counter()
                code = subprocess.call(
                    ["/usr/bin/time", "-v", "-o", tf.name, *argv], env=env, cwd=cwd, stdout=out, stderr=out
                )
                wall = time.perf_counter() - started
                report = {}
                for line in tf.read().splitlines():
                    name, _, value = line.strip().rpartition(": ")
                    if name in TIME_FIELDS:
                        report[TIME_FIELDS[name]] = float(value)
            cpu, rss_kb = report.get("user", 0) + report.get("sys", 0), report.get("rss_kb", 0)
        else:  # the same numbers, from wait4 directly
            started = time.perf_counter()
            p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=out)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - started
            p.returncode = code = os.waitstatus_to_exitcode(status)
            cpu, rss_kb = ru.ru_utime + ru.ru_stime, ru.ru_maxrss
    finally:
        if output:
            out.close()
    if code != 0:
        tail = Path(output).read_text(errors="replace")[-3000:] if output else ""
        raise SystemExit(f"bench: {' '.join(map(str, argv))} failed with exit code {code}\n{tail}")
    return Sample(wall=wall, cpu=cpu, rss_mib=rss_kb / 1024)


@dataclass
class Series:
    name: str
    samples: list[Sample] = field(default_factory=list)
    unit_scale: float = 1.0  # samples in seconds; per-stage series are scaled

    def stat(self, attr: str = "wall") -> tuple[float, float, float]:
        xs = [getattr(s, attr) for s in self.samples]
        return statistics.median(xs), min(xs), max(xs)


def interleaved(runs: int, variants: dict[str, callable]) -> dict[str, Series]:
    """Run each variant `runs` times, rotating the order every round."""
    series = {name: Series(name) for name in variants}
    names = list(variants)
    for i in range(runs):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            s = variants[name](i)
            series[name].samples.append(s)
            log(f"  {name} #{i + 1}: {s.wall:.3f}s wall, {s.cpu:.2f}s CPU, {s.rss_mib:.0f} MiB")
    return series


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


# --- the suite ---------------------------------------------------------------------------------


class Suite:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = dict(SMOKE if args.smoke else FULL)
        if args.runs:
            for k in ("b1", "b2", "b3", "b4", "b6"):
                self.sizes[k] = args.runs
        self.state = Path(args.state).resolve()
        self.state.mkdir(parents=True, exist_ok=True)
        self.stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        self.results: dict = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "smoke": args.smoke,
            "machine": machine(),
            "benchmarks": {},
        }
        self.pipectl = str(self.state / "bin" / "pipectl")
        self.data = self.pick_data()
        self.b1_version: str | None = None
        self.created_versions: list[str] = []

    def pick_data(self) -> Path:
        if self.args.data:
            return Path(self.args.data).resolve()
        if self.args.smoke:
            return SAMPLE
        for c in DATA_CANDIDATES:
            if c.exists():
                return c.resolve()
        raise SystemExit(
            "bench: the financial-sentiment data (../shared/data/financial-sentiment/data.csv) is not "
            "here: pass --data CSV, or run `make bench-smoke` (the bundled sample)"
        )

    def pipectl_argv(self, *args: str) -> list[str]:
        return [self.pipectl, "--state-dir", str(self.state), *args]

    def setup(self) -> None:
        log(f"building pipectl into {self.pipectl}")
        subprocess.check_call(["go", "build", "-o", self.pipectl, "./cmd/pipectl"], cwd=ROOT)
        log("the venv (pipectl dev python; built once, then reused)")
        self.python = (
            subprocess.check_output(self.pipectl_argv("dev", "python"), cwd=ROOT, text=True)
            .strip()
            .splitlines()[-1]
        )

    def record(
        self, key: str, title: str, series: dict[str, Series], rows: list[dict], notes: list[str]
    ) -> None:
        self.results["benchmarks"][key] = {
            "title": title,
            "rows": rows,
            "notes": notes,
            "samples": {n: [asdict(x) for x in s.samples] for n, s in series.items()},
        }

    # B1 and B2 -----------------------------------------------------------------------------------

    def b1(self) -> None:
        runs = self.sizes["b1"]
        log(
            f"B1 end to end: pipectl run sentiment on {self.data} vs its notebooks by hand ({runs} runs each)"
        )
        plan = self.state / "bench-plan.json"
        plan.write_text(
            subprocess.check_output(
                self.pipectl_argv("plan", "sentiment", "--json", "--set", f"data.source={self.data}"),
                cwd=ROOT,
                text=True,
            )
        )
        logs = self.state / "bench-logs"
        logs.mkdir(exist_ok=True)
        if not (self.state / "mlflow" / "mlflow.db").exists():
            # The first server on a new store spends seconds creating its schema: not what B1 measures.
            log("  warm-up: a first run creates pipectl's MLflow store (not measured)")
            self.run_pipectl(f"bench-warmup-{self.stamp}", SAMPLE, logs / "warmup.log", {})
        stage_times: dict[str, list[dict]] = {}

        def by_hand(i: int) -> Sample:
            version = f"bench-hand-{self.stamp}-{i}"
            self.created_versions.append(version)
            with mlflow_server(
                self.python, self.state / "by-hand-mlflow", logs / "by-hand-server.log"
            ) as url:
                timings = logs / f"by-hand-{i}.json"
                s = timed(
                    [
                        sys.executable,
                        str(ROOT / "bench" / "by_hand.py"),
                        "--plan",
                        str(plan),
                        "--python",
                        self.python,
                        "--tracking-uri",
                        url,
                        "--run-id",
                        f"by-hand-{self.stamp}-{i}",
                        "--set",
                        f"data.data_version={version}",
                        "--logs",
                        str(logs),
                        "--timings",
                        str(timings),
                    ],
                    output=logs / f"by-hand-{i}.log",
                )
            s.extra["stages"] = json.loads(timings.read_text())
            stage_times.setdefault("by hand", []).append(s.extra["stages"])
            return s

        def pipectl(worker: bool):
            def run(i: int) -> Sample:
                version = f"bench-{'w' if worker else 'p'}-{self.stamp}-{i}"
                s = self.run_pipectl(
                    version,
                    self.data,
                    logs / f"pipectl-{version}.log",
                    {} if worker else {"PIPECTL_LOCAL_WORKER": "0"},
                    no_cache=True,
                )
                if worker:
                    self.b1_version = version
                return s

            return run

        variants = {"by hand (baseline)": by_hand, "pipectl run": pipectl(True)}
        if not self.args.smoke:
            variants["pipectl run, no stage worker"] = pipectl(False)
        series = interleaved(runs, variants)
        base = series["by hand (baseline)"].stat()[0]
        rows = []
        for name, s in series.items():
            med = s.stat()[0]
            goal = "" if name.startswith("by hand") else "≤ 0.8 × baseline"
            rows.append(
                row(name, s, goal=goal, ratio=med / base, met=None if not goal else med / base <= 0.8)
            )
        notes = [
            f"data: {self.data} ({count_rows(self.data)} rows); venv pre-built and shared; each run a new "
            "data version, pipectl with --no-cache; the by-hand notebooks against an MLflow server started "
            "before the clock (untimed).",
            "stage wall times (median, s): " + stage_table(series),
        ]
        self.record(
            "B1", "end to end: pipectl run sentiment vs the same notebooks by hand", series, rows, notes
        )

    def run_pipectl(
        self, version: str, source: Path, output: Path, env_extra: dict, no_cache: bool = True
    ) -> Sample:
        self.created_versions.append(version)
        argv = self.pipectl_argv(
            "run", "sentiment", "--set", f"data.source={source}", "--set", f"data.data_version={version}"
        )
        if no_cache:
            argv.append("--no-cache")
        s = timed(argv, env={**os.environ, **env_extra}, output=output)
        record = self.latest_run()
        s.extra["stages"] = {k: v["duration_ms"] / 1000 for k, v in record["stages"].items()}
        s.extra["run_id"] = record["id"]
        return s

    def latest_run(self) -> dict:
        return json.loads(
            subprocess.check_output(self.pipectl_argv("runs", "show", "latest", "--json"), cwd=ROOT)
        )

    def b2(self) -> None:
        runs = self.sizes["b2"]
        if self.b1_version is None:
            self.b1_version = f"bench-w-{self.stamp}-setup"
            log("B2 needs a run of B1 to re-run: one now (not measured)")
            self.run_pipectl(self.b1_version, self.data, self.state / "bench-logs" / "b2-setup.log", {})
        log(f"B2 fully cached re-run of B1 ({runs} runs)")

        def cached(i: int) -> Sample:
            s = timed(
                self.pipectl_argv(
                    "run",
                    "sentiment",
                    "--set",
                    f"data.source={self.data}",
                    "--set",
                    f"data.data_version={self.b1_version}",
                )
            )
            statuses = {k: v["status"] for k, v in self.latest_run()["stages"].items()}
            if set(statuses.values()) != {"cached"}:
                raise SystemExit(f"bench: B2's re-run was not fully cached: {statuses}")
            return s

        series = interleaved(
            runs,
            {
                "pipectl version (baseline)": lambda i: timed(self.pipectl_argv("version")),
                "pipectl run, all 6 stages cached": cached,
            },
        )
        base = series["pipectl version (baseline)"].stat()[0]
        med = series["pipectl run, all 6 stages cached"].stat()[0]
        rows = [
            row("pipectl version (baseline)", series["pipectl version (baseline)"], ratio=1.0),
            row(
                "pipectl run, all 6 stages cached",
                series["pipectl run, all 6 stages cached"],
                goal="≤ 1 s",
                ratio=med / base,
                met=med <= 1.0,
            ),
        ]
        self.record(
            "B2",
            "fully cached re-run of B1",
            series,
            rows,
            [
                "baseline: `pipectl version`, the cost of starting the binary; the ratio says how much "
                "more a cached run costs."
            ],
        )

    # B3 ------------------------------------------------------------------------------------------

    def b3(self) -> None:
        runs = self.sizes["b3"]
        log(f"B3 pipectl validate and pipectl plan sentiment ({runs} runs)")
        series = interleaved(
            runs,
            {
                "pipectl version (baseline)": lambda i: timed(self.pipectl_argv("version")),
                "pipectl validate": lambda i: timed(self.pipectl_argv("validate")),
                "pipectl plan sentiment": lambda i: timed(self.pipectl_argv("plan", "sentiment")),
            },
        )
        base = series["pipectl version (baseline)"].stat()[0]
        rows = []
        for name, s in series.items():
            med = s.stat()[0]
            goal = "" if "baseline" in name else "≤ 150 ms"
            rows.append(row(name, s, goal=goal, ratio=med / base, met=None if not goal else med <= 0.150))
        self.record(
            "B3",
            "pipectl validate, pipectl plan sentiment",
            series,
            rows,
            [
                f"the repository's specs/ ({len(list((ROOT / 'specs').glob('*.cue')))} files); "
                "baseline `pipectl version`."
            ],
        )

    # B4 ------------------------------------------------------------------------------------------

    def b4(self) -> None:
        runs, n = self.sizes["b4"], self.sizes["b4_stages"]
        log(f"B4 dispatch overhead: {n} noop stages in a chain through go-plugin vs 1 ({runs} runs)")
        with tempfile.TemporaryDirectory(prefix="pipectl-bench-b4-") as tmp:
            project = Path(tmp)
            (project / "specs").mkdir()
            (project / "notebooks").mkdir()
            (project / "notebooks" / "c.py").write_text("# Databricks notebook source\n")
            (project / "specs" / "chain.cue").write_text(chain_spec({"chain1": 1, f"chain{n}": n}))

            def chain(k: int):
                def run(i: int) -> Sample:
                    s = timed([self.pipectl, "run", f"chain{k}", "--no-cache"], cwd=project)
                    rec = json.loads(
                        subprocess.check_output(
                            [self.pipectl, "runs", "show", "latest", "--json"], cwd=project
                        )
                    )
                    done = [v["status"] for v in rec["stages"].values()]
                    if len(done) != k or set(done) != {"succeeded"}:
                        raise SystemExit(f"bench: chain{k} did not run every stage: {done}")
                    return s

                return run

            series = interleaved(runs, {"1 stage (baseline)": chain(1), f"{n} stages": chain(n)})
        log("  and one Run through go-plugin vs in process (go test -bench DispatchNoop)")
        go = go_bench("./cmd/pipectl", "^BenchmarkDispatchNoop(InProcess)?$", runs, "ns/op")
        series["in process (Go)"] = go["BenchmarkDispatchNoopInProcess"]
        series["through go-plugin (Go)"] = go["BenchmarkDispatchNoop"]
        one, many = series["1 stage (baseline)"].stat()[0], series[f"{n} stages"].stat()[0]
        per_stage = (many - one) / (n - 1)
        rows = [
            row("1 stage (baseline)", series["1 stage (baseline)"], ratio=1.0),
            row(f"{n} stages", series[f"{n} stages"], ratio=many / one),
            {
                "variant": "per stage: (median of n − median of 1) / (n − 1)",
                "runs": runs,
                "median": per_stage,
                "min": None,
                "max": None,
                "cpu": None,
                "rss": None,
                "goal": "≤ 20 ms",
                "ratio": None,
                "met": per_stage <= 0.020,
            },
            row(
                "one Run in process (Go benchmark, baseline)", series["in process (Go)"], ratio=1.0, cpu=False
            ),
            row(
                "one Run through go-plugin (Go benchmark)",
                series["through go-plugin (Go)"],
                goal="≤ 20 ms",
                ratio=series["through go-plugin (Go)"].stat()[0] / series["in process (Go)"].stat()[0],
                met=series["through go-plugin (Go)"].stat()[0] <= 0.020,
                cpu=False,
            ),
        ]
        self.record(
            "B4",
            f"dispatch overhead: {n} noop stages through go-plugin",
            series,
            rows,
            [
                "a chain (each stage needs the previous one), --no-cache: pipectl start, spec, plan, "
                "the noop plugin "
                "(self-exec'd, gRPC), per stage a Run, its events and the run record.",
                "Go benchmarks: cmd/pipectl BenchmarkDispatchNoop (one Run of a noop stage through a running "
                "`pipectl __executor noop`: gRPC stream, a log event, the result) against "
                "BenchmarkDispatchNoopInProcess (the same Run, no plugin); one sample per -count.",
            ],
        )

    # B6 ------------------------------------------------------------------------------------------

    def b6(self) -> None:
        count = self.sizes["b6"]
        log(
            f"B6 Python start-up: stage worker vs plain process (go test -bench StageStartup, "
            f"{count} samples each)"
        )
        env = {**os.environ, "PIPECTL_TEST_STATE": str(self.state)}
        series = go_bench("./plugins/local", "^BenchmarkStageStartup$", count, "ms/*", env=env)
        rows = []
        for what, label in (
            ("first-cell", "dispatch → first cell"),
            ("imports", "dispatch → end of imports"),
            ("run", "dispatch → stage finished"),
        ):
            plain, worker = series[f"ms/{what}-plain"], series[f"ms/{what}-worker"]
            pm, wm = plain.stat()[0], worker.stat()[0]
            rows.append(row(f"{label}, plain process (baseline)", plain, ratio=1.0, cpu=False))
            rows.append(row(f"{label}, stage worker", worker, ratio=wm / pm, cpu=False))
        self.record(
            "B6",
            "Python start-up: from a stage's dispatch to its first cell and to the end of its imports",
            series,
            rows,
            [
                "plugins/local BenchmarkStageStartup: testdata/notebooks/startup.py imports mlflow, sklearn "
                "(linear_model, feature_extraction.text) and pandas in its second cell; the two modes "
                "alternate; "
                "the worker has finished preloading, as for every stage of a run but the first."
            ],
        )

    def cleanup(self) -> None:
        root = ROOT / ".pipectl" / "data" / "financial_news"
        for v in self.created_versions:
            shutil.rmtree(root / v, ignore_errors=True)


def go_bench(pkg: str, pattern: str, count: int, *units: str, env: dict | None = None) -> dict[str, Series]:
    """Run Go benchmarks (-benchtime 1x for custom metrics, else the default) and return, per
    benchmark and unit, the samples in seconds (one per -count)."""
    argv = ["go", "test", pkg, "-run", "^$", "-bench", pattern, "-count", str(count), "-timeout", "60m"]
    if any(u != "ns/op" for u in units):
        argv += ["-benchtime", "1x"]
    out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    series: dict[str, Series] = {}
    for line in out.stdout.splitlines():
        m = re.match(r"(Benchmark\w+?)(-\d+)?\s+\d+\s+(.*)", line)
        if not m:
            continue
        for value, unit in re.findall(r"([\d.]+) ([\w/-]+)", m.group(3)):
            if unit in units or (unit.startswith("ms/") and "ms/*" in units):
                scale = 1e-9 if unit == "ns/op" else 1e-3
                key = m.group(1) if unit == "ns/op" else unit
                series.setdefault(key, Series(key)).samples.append(Sample(float(value) * scale, 0, 0))
    return series


def chain_spec(chains: dict[str, int]) -> str:
    out = ["package pipelines", ""]
    for name, n in chains.items():
        out.append(
            f'pipelines: {name}: {{\n\tdescription: "{n} noop stages in a chain"\n'
            '\ttargets: local: executor: "noop"\n\tstages: {'
        )
        for i in range(n):
            ref = f', in: "${{stages.s{i - 1}.outputs.out}}"' if i else ""
            needs = f', needs: ["s{i - 1}"]' if i else ""
            out.append(
                f'\t\ts{i}: {{type: "custom", notebook: "notebooks/c.py", outputs: ["out"], '
                f'params: {{noop_output_out: "{i}"{ref}}}{needs}}}'
            )
        out.append("\t}\n}")
    return "\n".join(out) + "\n"


@contextlib.contextmanager
def mlflow_server(python: str, store: Path, logfile: Path):
    """`mlflow server` on a store of its own, as someone running notebooks by hand would start it."""
    (store / "artifacts").mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = f"sqlite:///{store / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(logfile, "a") as out:
        p = subprocess.Popen(
            [
                python,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                db,
                "--registry-store-uri",
                db,
                "--serve-artifacts",
                "--artifacts-destination",
                str(store / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
            if p.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: the by-hand MLflow server did not start (see {logfile})")
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, 15)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()


def count_rows(path: Path) -> str:
    try:
        import csv

        with open(path, newline="", encoding="utf-8") as fh:
            return f"{sum(1 for _ in csv.reader(fh)) - 1:,}"
    except OSError:
        return "?"


def row(
    name: str,
    s: Series,
    *,
    goal: str = "",
    ratio: float | None = None,
    met: bool | None = None,
    cpu: bool = True,
) -> dict:
    med, lo, hi = s.stat()
    return {
        "variant": name,
        "runs": len(s.samples),
        "median": med,
        "min": lo,
        "max": hi,
        "cpu": s.stat("cpu")[0] if cpu else None,
        "rss": s.stat("rss_mib")[0] if cpu else None,
        "goal": goal,
        "ratio": ratio,
        "met": met,
    }


def stage_table(series: dict[str, Series]) -> str:
    parts = []
    for name, s in series.items():
        stages = [x.extra.get("stages") for x in s.samples if x.extra.get("stages")]
        if not stages:
            continue
        med = {k: statistics.median(st[k] for st in stages if k in st) for k in stages[0]}
        parts.append(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))
    return "; ".join(parts)


def machine() -> dict:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    go = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
    return {
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "go": go,
        "python": platform.python_version(),
        "load_at_start": loadavg(),
    }


# --- report --------------------------------------------------------------------------------------


def fmt_time(x: float | None) -> str:
    if x is None:
        return ""
    if abs(x) < 0.001:
        return f"{x * 1e6:.1f} µs"
    if abs(x) < 0.01:
        return f"{x * 1000:.2f} ms"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Run {results['date']}{' (smoke sizes)' if results['smoke'] else ''} on {m['os']}, {m['cpu']}, "
        f"{m['cores']} cores, {m['memory']}; {m['go']}, Python {m['python']}; "
        f"load average {m['load_at_start']} "
        f"at the start, {m.get('load_at_end', '?')} at the end.",
        "",
    ]
    for key, b in results["benchmarks"].items():
        lines += [
            f"#### {key}: {b['title']}",
            "",
            "| variant | runs | median | min–max | CPU (median) | peak RSS (median) | goal "
            "| ratio to baseline | goal met |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in b["rows"]:
            span = f"{fmt_time(r['min'])}–{fmt_time(r['max'])}" if r["min"] is not None else ""
            cpu = fmt_time(r["cpu"]) if r["cpu"] is not None else ""
            rss = f"{r['rss']:.0f} MiB" if r["rss"] else ""
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
            met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
            lines.append(
                f"| {r['variant']} | {r['runs']} | {fmt_time(r['median'])} | {span} | {cpu} | {rss} "
                f"| {r['goal']} | {ratio} | {met} |"
            )
        lines.append("")
        lines += [f"- {n}" for n in b["notes"]] + [""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--smoke", action="store_true", help="reduced sizes: checks that the suite runs, measures little"
    )
    p.add_argument("--only", help="comma-separated benchmarks, e.g. B1,B3 (default: all of B1-B4, B6)")
    p.add_argument("--runs", type=int, help="runs of each variant (default: 3 for B1, 5-7 for the others)")
    p.add_argument(
        "--data", help="B1's CSV (default: ../shared/data/financial-sentiment/data.csv; smoke: the sample)"
    )
    p.add_argument(
        "--state",
        default=str(ROOT / ".pipectl" / "bench"),
        help="pipectl state directory (venv, MLflow store, runs)",
    )
    p.add_argument("--out", help="results directory (default: STATE/results)")
    args = p.parse_args()
    only = {x.strip().upper() for x in args.only.split(",")} if args.only else {"B1", "B2", "B3", "B4", "B6"}
    suite = Suite(args)
    suite.setup()
    started = time.monotonic()
    try:
        for key in ("B1", "B2", "B3", "B4", "B6"):
            if key in only:
                getattr(suite, key.lower())()
    finally:
        suite.cleanup()
    suite.results["machine"]["load_at_end"] = loadavg()
    suite.results["seconds"] = round(time.monotonic() - started)
    out = Path(args.out) if args.out else suite.state / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = f"bench-{suite.stamp}{'-smoke' if args.smoke else ''}"
    (out / f"{name}.json").write_text(json.dumps(suite.results, indent=1) + "\n")
    md = markdown(suite.results)
    (out / f"{name}.md").write_text(md)
    print(md)
    log(f"done in {suite.results['seconds']}s; results in {out / name}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
