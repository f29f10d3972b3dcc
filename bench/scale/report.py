"""Summarise B5's runs (bench/scale/run.sh): a Markdown table on stdout, summary.json beside the
measurements.

    python report.py RESULTS_DIR [--rows N]

Per run: `run-N.events.jsonl` (`pipectl run --json`), `run-N.mem.json` (memwatch.py),
`run-N.baseline.json` (bare_predict.py), `run-N.load.json`. Values are medians over the runs with
min–max; ratios are taken per run (stage against its own baseline) before the median.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
from pathlib import Path

GIB = 1024**3
STAGES = ("data", "train_lr", "train_nb", "inference")
#: Goals from issue 7 (B5).
GOAL_SECONDS = 360
GOAL_MEMORY = 6 * GIB
GOAL_RATIO = 0.8


def _time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def load_run(results: Path, i: int) -> dict:
    events = [json.loads(line) for line in (results / f"run-{i}.events.jsonl").read_text().splitlines()]
    mem = json.loads((results / f"run-{i}.mem.json").read_text())
    baseline = json.loads((results / f"run-{i}.baseline.json").read_text())
    finished = {e["stage"]: e for e in events if e["type"] == "stage_finished"}
    started = {e["stage"]: e for e in events if e["type"] == "stage_started"}
    end = next(e for e in events if e["type"] == "run_finished")
    if end["status"] != "succeeded":
        raise SystemExit(f"report.py: run {i} did not succeed: {end.get('run_error')}")
    data = finished["data"]
    rows = {  # outputs reach the events as the strings downstream stages get
        "data": int(data["metrics"]["rows_raw"]),
        "train_lr": int(data["outputs"]["rows_train"]),
        "train_nb": int(data["outputs"]["rows_train"]),
        "inference": int(finished["inference"]["outputs"]["rows"]),
    }
    stages = {}
    for name in STAGES:
        seconds = finished[name]["duration_ms"] / 1000
        window = (_time(started[name]["time"]), _time(finished[name]["time"]))
        stages[name] = {
            "seconds": seconds,
            "rows": rows[name],
            "rows_per_s": rows[name] / seconds,
            "peak_rss": stage_peak(mem, name, window),
        }
    return {
        "wall_seconds": mem["seconds"],
        "pipectl_seconds": end["duration_ms"] / 1000,
        "peak_tree_rss": mem["peak_tree_rss"],
        "peak_tree_pss": mem["peak_tree_pss"],
        "stages": stages,
        "baseline": baseline,
        "ratio": stages["inference"]["rows_per_s"] / baseline["rows_per_s"],
        "metrics": {n: finished[n].get("metrics", {}) for n in ("train_lr", "train_nb", "inference")},
    }


def stage_peak(mem: dict, stage: str, window: tuple[float, float]) -> int:
    """The stage's peak RSS: its notebook process, found by command line or, for processes forked
    by the warm worker (no command line of their own), the largest of those that started and ended
    within the stage's window (a second of slack: sampling, clocks). The worker, the MLflow server
    and pipectl live through the whole run and are never inside one stage's window."""
    named = [p["hwm"] for p in mem["processes"] if p["role"] == stage]
    if named:
        return max(named)
    start, end = window
    inside = [
        p["hwm"]
        for p in mem["processes"]
        if p["started"] >= start - 1 and p.get("last_seen", p["started"]) <= end + 1
    ]
    return max(inside, default=0)


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = int(
            next(
                x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")
            ).split()[1]
        )
    except (OSError, StopIteration):
        mem = 0
    return (
        f"{os.cpu_count()} CPU {model}, {mem / 2**20:.0f} GiB RAM, {platform.system()} {platform.release()}"
    )


def spread(values: list[float], fmt: str) -> tuple[str, str]:
    med = statistics.median(values)
    return fmt.format(med), f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--rows", type=int, default=0)
    args = ap.parse_args(argv)
    n = len(list(args.results.glob("run-*.events.jsonl")))
    runs = [load_run(args.results, i) for i in range(1, n + 1)]
    loads = [json.loads((args.results / f"run-{i}.load.json").read_text()) for i in range(1, n + 1)]
    (args.results / "summary.json").write_text(json.dumps({"runs": runs, "load": loads}, indent=2) + "\n")

    def col(get, fmt):
        return spread([get(r) for r in runs], fmt)

    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    out = [
        f"B5 scale, {args.rows:,} generated rows, {n} run(s), {date}; machine: {machine()}; load "
        f"average (1/5/15 min) before each run: {', '.join(x['loadavg_before'] for x in loads)}",
        "",
        "| measure | median | min–max | goal | ratio to goal (median) |",
        "|---|---|---|---|---|",
    ]
    med, rng = col(lambda r: r["wall_seconds"], "{:.0f} s")
    ratio = statistics.median(r["wall_seconds"] for r in runs) / GOAL_SECONDS
    out.append(f"| end to end (`pipectl run`, wall) | {med} | {rng} | ≤ 360 s | {ratio:.2f} |")
    med, rng = col(lambda r: r["peak_tree_rss"] / GIB, "{:.2f} GiB")
    ratio = statistics.median(r["peak_tree_rss"] for r in runs) / GOAL_MEMORY
    out.append(
        f"| peak resident memory, whole process tree (RSS sum) | {med} | {rng} | ≤ 6 GiB | {ratio:.2f} |"
    )
    med, rng = col(lambda r: r["peak_tree_pss"] / GIB, "{:.2f} GiB")
    out.append(f"| same, PSS sum (shared pages split) | {med} | {rng} | | |")
    med, rng = col(lambda r: r["ratio"], "{:.2f}")
    to_goal = float(med) / GOAL_RATIO
    out.append(f"| inference throughput / bare predict loop | {med} | {rng} | ≥ 0.80 | {to_goal:.2f} |")
    out += ["", "| stage | wall | rows | rows/s | peak RSS |", "|---|---|---|---|---|"]
    for name in STAGES:
        sec_m, sec_r = col(lambda r, s=name: r["stages"][s]["seconds"], "{:.1f}")
        rps_m, rps_r = col(lambda r, s=name: r["stages"][s]["rows_per_s"], "{:,.0f}")
        rss_m, rss_r = col(lambda r, s=name: r["stages"][s]["peak_rss"] / GIB, "{:.2f}")
        rows = runs[0]["stages"][name]["rows"]
        out.append(f"| {name} | {sec_m} s ({sec_r}) | {rows:,} | {rps_m} ({rps_r}) | {rss_m} GiB ({rss_r}) |")
    b_m, b_r = col(lambda r: r["baseline"]["rows_per_s"], "{:,.0f}")
    out.append(
        f"| bare predict loop (baseline) | {col(lambda r: r['baseline']['seconds'], '{:.1f}')[0]} s | "
        f"{runs[0]['baseline']['rows']:,} | {b_m} ({b_r}) | |"
    )
    f1 = {
        s: statistics.median(r["metrics"][s].get("f1_macro", float("nan")) for r in runs)
        for s in ("train_lr", "train_nb")
    }
    out += ["", f"Test macro-F1 (median): train_lr {f1['train_lr']:.3f}, train_nb {f1['train_nb']:.3f}."]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
