"""B7: batch inference on Spark local[2] against the pandas engine (docs/BENCHMARKS.md, "B7").

    python3 bench/spark/b7.py --python "$(make -s python-spark)" --rows 20000,1000000

Once (never measured): the rows are generated (`generate.py`, from the financial-sentiment data's
vocabulary, fixed seed) as a data version `b7/<rows>` with one split, and a model is trained and
registered on the financial-sentiment data with the sentiment pipeline's logistic regression
(word 1-2 and char_wb 2-5 TF-IDF, C 10, balanced) in a SQLite MLflow store under the state
directory. Then, per size, each engine runs the inference stage (`sentiment.stages.inference.run`,
the code the notebook runs) in a fresh process under `bench/scale/memwatch.py` (peak RSS of the
whole process tree: the Python driver, the JVM, Spark's Python workers; CPU time of the tree),
the engines interleaved run by run. The stage reports its own wall time (from its call to its
return: Spark's session start, reading, model load, scoring, writing, metrics).

Spark's event log (written through a spark-defaults.conf in SPARK_CONF_DIR, so the session is the
one get_spark() makes) gives the bytes read, shuffled and written per run, for the projection.
Results: `<state>/results/<time>/` (results.json, summary.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NOTEBOOKS = REPO / "notebooks"
MEMWATCH = REPO / "bench" / "scale" / "memwatch.py"
MODEL_NAME = "b7_lr"
LR = {
    "model_type": "logistic_regression",
    "model_params": json.dumps({"C": 10, "class_weight": "balanced"}),
    "features": json.dumps({"word_ngram": [1, 2], "char_ngram": [2, 5], "max_features": None}),
}


def context(state: Path) -> dict[str, str]:
    uri = f"sqlite:///{state / 'mlflow.db'}"
    return {
        "data_root": str(state / "data"),
        "output_root": str(state / "predictions"),
        "project_root": str(REPO),
        "mlflow_tracking_uri": uri,
        "mlflow_registry_uri": uri,
    }


def setup_model(state: Path, source: Path) -> str:
    """(In the child.) Data version of the financial-sentiment data, the LR trained on it."""
    sys.path.insert(0, str(NOTEBOOKS))
    from sentiment.stages import data, train

    os.chdir(state)
    ctx = context(state)
    data.run(
        {
            **ctx,
            "source": str(source),
            "data_name": "financial_news",
            "data_version": "v1",
        }
    )
    res = train.run(
        {
            **ctx,
            **LR,
            "data_name": "financial_news",
            "data_version": "v1",
            "model_name": MODEL_NAME,
            "pipectl_run_id": "b7",
        }
    )
    return res.outputs["model_uri"]


def stage(state: Path, kind: str, engine: str, rows: int, model: str, run_id: str, out: Path) -> None:
    """(In the child.) One inference (or data) stage, timed from its call to its return."""
    sys.path.insert(0, str(NOTEBOOKS))
    from sentiment.stages import data, inference

    os.chdir(state)
    if kind == "data":
        # A new data version per run: the CSV of the same rows, cleaned and split.
        params = {
            **context(state),
            "source": str(csv_of(state, rows)),
            "data_name": f"b7data-{rows}",
            "data_version": run_id,
            "engine": engine,
        }
        started = time.perf_counter()
        res = data.run(params)
    else:
        params = {
            **context(state),
            "model": model,
            "data_name": "b7",
            "data_version": str(rows),
            "split": "holdout",
            "engine": engine,
            "pipectl_run_id": run_id,
        }
        started = time.perf_counter()
        res = inference.run(params)
    seconds = time.perf_counter() - started
    out.write_text(json.dumps({"seconds": seconds, **res.exit_value()}) + "\n")


def csv_of(state: Path, rows: int) -> Path:
    """The generated rows as the CSV the data stage reads (Sentence, Sentiment), made once."""
    path = state / "data" / "b7" / str(rows) / "raw.csv"
    if not path.exists():
        import pyarrow.csv as pc
        import pyarrow.parquet as pq

        table = pq.read_table(path.with_name("holdout.parquet"), columns=["text", "label"])
        tmp = path.with_name(".raw.csv.tmp")
        pc.write_csv(table.rename_columns(["Sentence", "Sentiment"]), tmp)
        os.replace(tmp, path)
    return path


def event_log_totals(directory: Path) -> dict[str, int]:
    """Bytes read, shuffled and written, and tasks, summed over an application's event log."""
    totals = {
        "input_bytes": 0,
        "shuffle_write_bytes": 0,
        "shuffle_read_bytes": 0,
        "output_bytes": 0,
        "tasks": 0,
    }
    for log in sorted(p for p in directory.rglob("*") if p.is_file()):
        with log.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"SparkListenerTaskEnd"' not in line:
                    continue
                m = json.loads(line).get("Task Metrics") or {}
                totals["tasks"] += 1
                totals["input_bytes"] += (m.get("Input Metrics") or {}).get("Bytes Read", 0)
                totals["output_bytes"] += (m.get("Output Metrics") or {}).get("Bytes Written", 0)
                totals["shuffle_write_bytes"] += (m.get("Shuffle Write Metrics") or {}).get(
                    "Shuffle Bytes Written", 0
                )
                sr = m.get("Shuffle Read Metrics") or {}
                totals["shuffle_read_bytes"] += sr.get("Remote Bytes Read", 0) + sr.get("Local Bytes Read", 0)
    return totals


def measure(
    python: str, state: Path, kind: str, engine: str, rows: int, model: str, run: int, results: Path
) -> dict:
    tag = f"{kind}-{engine}-{rows}-{run}"
    out, mem = results / f"{tag}.stage.json", results / f"{tag}.mem.json"
    env = dict(
        os.environ,
        PYTHONPATH=str(NOTEBOOKS),
        PIPECTL_STATE_DIR=str(state / "spark-state"),
    )
    env.setdefault("PIPECTL_SPARK_MASTER", "local[2]")
    events = results / f"{tag}.events"
    if engine == "spark":
        conf = results / f"{tag}.conf"
        events.mkdir(parents=True, exist_ok=True)
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "spark-defaults.conf").write_text(
            f"spark.eventLog.enabled true\nspark.eventLog.compress false\nspark.eventLog.dir file://{events}\n"
        )
        env["SPARK_CONF_DIR"] = str(conf)
    cmd = [
        sys.executable,
        str(MEMWATCH),
        "--out",
        str(mem),
        "--",
        python,
        str(Path(__file__).resolve()),
        "_stage",
        "--kind",
        kind,
        "--state",
        str(state),
        "--engine",
        engine,
        "--rows",
        str(rows),
        "--model",
        model,
        "--run-id",
        f"b7-{tag}-{int(time.time())}",
        "--result",
        str(out),
    ]
    started = time.monotonic()
    with (results / f"{tag}.log").open("w") as log:
        code = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.monotonic() - started
    m = json.loads(mem.read_text())
    rec = {
        "kind": kind,
        "engine": engine,
        "rows": rows,
        "run": run,
        "exit_code": code,
        "process_seconds": round(wall, 2),
        "peak_tree_rss": m["peak_tree_rss"],
        "tree_cpu_seconds": m["tree_cpu_seconds"],
    }
    if code == 0:
        s = json.loads(out.read_text())
        rec.update(
            stage_seconds=round(s["seconds"], 2),
            outputs=s["outputs"],
            metrics=s["metrics"],
        )
    if engine == "spark" and events.exists():
        rec["spark"] = event_log_totals(events)
    print(json.dumps({k: v for k, v in rec.items() if k != "outputs"}), file=sys.stderr)
    return rec


def summary(records: list[dict], load: list[str]) -> str:
    cores = {"pandas": 1, "spark": 2}
    lines = [
        (
            "| engine | rows | stage wall (median) | rows/s | rows/s per core | rows per CPU-second | "
            "peak RSS, tree | bytes read / shuffled / written | accuracy |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["engine"], r["rows"]) for r in records}, key=lambda k: (k[1], k[0]))
    for engine, rows in keys:
        rs = [r for r in records if r["engine"] == engine and r["rows"] == rows]
        ok = [r for r in rs if r["exit_code"] == 0]
        if not ok:
            lines.append(
                f"| {engine} | {rows:,} | failed (exit {rs[0]['exit_code']}) | | | | "
                f"{max(r['peak_tree_rss'] for r in rs) / 2**30:.2f} GiB | | |"
            )
            continue
        sec = statistics.median(r["stage_seconds"] for r in ok)
        cpu = statistics.median(r["tree_cpu_seconds"] for r in ok)
        rss = statistics.median(r["peak_tree_rss"] for r in ok)
        io = ""
        if engine == "spark" and "spark" in ok[0]:
            t = ok[0]["spark"]
            io = " / ".join(
                f"{t[k] / 2**20:,.0f} MiB" for k in ("input_bytes", "shuffle_write_bytes", "output_bytes")
            )
        lo, hi = min(r["stage_seconds"] for r in ok), max(r["stage_seconds"] for r in ok)
        acc = ok[0]["metrics"].get("accuracy", float("nan"))
        lines.append(
            f"| {engine} | {rows:,} | {sec:.1f} s ({lo:.1f}-{hi:.1f}) | {rows / sec:,.0f} | "
            f"{rows / sec / cores[engine]:,.0f} | {rows / cpu:,.0f} | {rss / 2**30:.2f} GiB | {io} | "
            f"{acc:.4f} |"
        )
    return "\n".join(lines) + "\n\nload average before each run: " + "; ".join(load) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    st = sub.add_parser("_stage")
    st.add_argument("--state", type=Path, required=True)
    st.add_argument("--engine", required=True)
    st.add_argument("--kind", default="inference")
    st.add_argument("--rows", type=int, required=True)
    st.add_argument("--model", required=True)
    st.add_argument("--run-id", required=True)
    st.add_argument("--result", type=Path, required=True)
    se = sub.add_parser("_setup")
    se.add_argument("--state", type=Path, required=True)
    se.add_argument("--source", type=Path, required=True)
    ap.add_argument("--python", help="the Spark venv's interpreter (make -s python-spark)")
    ap.add_argument("--rows", default="20000,1000000")
    ap.add_argument("--engines", default="pandas,spark")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--kind", choices=["inference", "data"], default="inference", help="the stage measured")
    ap.add_argument("--state", type=Path, default=REPO / ".pipectl" / "bench" / "spark")
    args = ap.parse_args()

    if args.cmd == "_stage":
        stage(args.state, args.kind, args.engine, args.rows, args.model, args.run_id, args.result)
        return 0
    if args.cmd == "_setup":
        print(json.dumps({"model_uri": setup_model(args.state, args.source)}))
        return 0
    if not args.python:
        ap.error("--python is required")
    sys.path.insert(0, str(HERE))
    from generate import default_source

    state = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    model_file = state / "model.json"
    if not model_file.exists():
        out = subprocess.run(
            [args.python, __file__, "_setup", "--state", str(state), "--source", str(default_source())],
            env=dict(os.environ, PYTHONPATH=str(NOTEBOOKS)),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        model_file.write_text(out.strip().splitlines()[-1] + "\n")
    model = json.loads(model_file.read_text())["model_uri"]
    sizes = [int(r) for r in args.rows.split(",")]
    engines = args.engines.split(",")
    for rows in sizes:
        subprocess.run(
            [
                args.python,
                str(HERE / "generate.py"),
                "--rows",
                str(rows),
                "--root",
                str(state / "data"),
            ],
            check=True,
        )
    results = state / "results" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results.mkdir(parents=True)
    records, load = [], []
    for rows in sizes:
        for run in range(args.runs):
            order = engines if run % 2 == 0 else engines[::-1]
            for engine in order:
                load.append(f"{engine} {rows:,}: " + " ".join(Path("/proc/loadavg").read_text().split()[:3]))
                records.append(measure(args.python, state, args.kind, engine, rows, model, run, results))
                (results / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    text = summary(records, load)
    (results / "summary.md").write_text(text)
    print(text)
    print(f"results in {results}", file=sys.stderr)
    return 0 if all(r["exit_code"] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
