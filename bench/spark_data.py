"""The data stage on both engines: wall time per run, and the local Spark session's start.

Run it with the Spark venv's Python (`make python-spark`): python bench/spark_data.py CSV [CSV...]
Prints a Markdown table. Each engine runs `--runs` times into a fresh data root; the spark runs
share one session (started first, its start timed on its own)."""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "notebooks"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("csv", nargs="+", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from sentiment.spark import get_spark
    from sentiment.stages import data

    t = time.perf_counter()
    spark = get_spark(app_name="pipectl bench")
    start = time.perf_counter() - t
    rows = [
        f"| Spark session start ({spark.conf.get('spark.master')}, Delta jars cached) | {start:.1f} s | |"
    ]
    for csv in args.csv:
        times: dict[str, list[float]] = {"pandas": [], "spark": []}
        for _ in range(args.runs):
            for engine in times:
                root = Path(tempfile.mkdtemp(prefix="pipectl-bench-"))
                t = time.perf_counter()
                data.run(
                    {"source": str(csv), "engine": engine, "data_root": str(root), "project_root": str(REPO)}
                )
                times[engine].append(time.perf_counter() - t)
                shutil.rmtree(root)
        p, s = statistics.median(times["pandas"]), statistics.median(times["spark"])
        rows.append(
            f"| data stage on {csv.name}: pandas / spark (median of {args.runs}) | {p:.2f} s | {s:.2f} s |"
        )
    print("| measurement | pandas | spark |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
