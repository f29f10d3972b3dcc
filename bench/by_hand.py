#!/usr/bin/env python3
"""B1's baseline: a pipeline's notebooks run by hand, one after another, without pipectl.

What someone would type: `python -m pipectl_runner NOTEBOOK --param ...` for each stage in the
order of the plan, each with the parameters pipectl would pass (the stage's own, upstream outputs
substituted, and the context parameters of docs/STAGES.md), against an MLflow server that is
already running. Standard library only; bench/bench.py runs it under /usr/bin/time.

Usage: by_hand.py --plan PLAN.json --python VENV_PYTHON --tracking-uri URL --run-id ID
                  [--set STAGE.PARAM=VALUE]... [--logs DIR] [--timings OUT.json]
PLAN.json is `pipectl plan PIPELINE --json`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = re.compile(r"\$\$\{|\$\{(stages\.([^.}]+)\.outputs\.([^}]+)|run\.(id|date))\}")
# What the local executor removes from a notebook's environment (plugins/local/env.go).
SCRUB = re.compile(
    r"^(DATABRICKS_|MLFLOW_TRACKING_|MLFLOW_REGISTRY_URI$|PYTHONPATH$|PYTHONHOME$|PYTHONSTARTUP$|VIRTUAL_ENV$)",
    re.I,
)


def substitute(value: str, outputs: dict[str, dict[str, str]], run: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        if m.group(4):
            return run[m.group(4)]
        return outputs[m.group(2)][m.group(3)]

    return REF.sub(one, value)


def stringify(value: object) -> str:
    """As the executor renders outputs for downstream parameters (plugins/local/result.go)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plan", required=True)
    p.add_argument("--python", required=True)
    p.add_argument("--tracking-uri", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--set", action="append", default=[], metavar="STAGE.PARAM=VALUE")
    p.add_argument("--data-root", default=str(ROOT / ".pipectl" / "data"))
    p.add_argument("--output-root", default=str(ROOT / ".pipectl" / "predictions"))
    p.add_argument("--logs", help="directory for each stage's output (default: discarded)")
    p.add_argument("--timings", help="write each stage's wall time (seconds) here as JSON")
    args = p.parse_args()

    plan = json.loads(Path(args.plan).read_text(encoding="utf-8"))
    sets: dict[str, dict[str, str]] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        stage, _, param = key.partition(".")
        sets.setdefault(stage, {})[param] = value
    run = {"id": args.run_id, "date": time.strftime("%Y-%m-%d", time.gmtime())}
    env = {k: v for k, v in os.environ.items() if not SCRUB.match(k)}
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT / "notebooks"),
        MLFLOW_TRACKING_URI=args.tracking_uri,
        MLFLOW_REGISTRY_URI=args.tracking_uri,
    )
    outputs: dict[str, dict[str, str]] = {}
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pipectl-by-hand-") as tmp:
        for stage in [s for layer in plan["layers"] for s in layer]:
            spec = plan["stages"][stage]
            params = {
                "pipectl_run_id": args.run_id,
                "pipectl_pipeline": plan["pipeline"],
                "pipectl_stage": stage,
                "pipectl_target": plan["target"],
                "data_root": args.data_root,
                "output_root": args.output_root,
                "project_root": str(ROOT),
                "mlflow_tracking_uri": args.tracking_uri,
                "mlflow_registry_uri": args.tracking_uri,
                "experiment_root": "",
                "uc_catalog": "",
                "uc_schema": "",
                "git_commit": "",
            }
            own = {**spec["params"], **sets.get(stage, {})}
            for name in sorted(own):
                if name not in params:
                    params[name] = substitute(own[name], outputs, run)
            result = Path(tmp) / f"{stage}.json"
            argv = [args.python, "-m", "pipectl_runner", spec["notebook"]]
            for name, value in params.items():
                argv += ["--param", f"{name}={value}"]
            argv += ["--output", str(result)]
            log = open(Path(args.logs) / f"{stage}.log", "w") if args.logs else subprocess.DEVNULL  # noqa: SIM115
            started = time.perf_counter()
            try:
                code = subprocess.call(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            finally:
                if args.logs:
                    log.close()
            timings[stage] = time.perf_counter() - started
            if code != 0:
                print(f"by_hand: {stage} ({spec['notebook']}) failed with exit code {code}", file=sys.stderr)
                return 1
            value = json.loads(result.read_text(encoding="utf-8"))
            outputs[stage] = {k: stringify(v) for k, v in (value.get("outputs") or {}).items()}
    if args.timings:
        Path(args.timings).write_text(json.dumps(timings, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
