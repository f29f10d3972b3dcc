"""B5's baseline: a bare `pipeline.predict` loop over the rows the inference stage scored, with
the model it used, in the managed venv — the practical limit of the stage's throughput.

    python bare_predict.py --state-dir STATE --model models:/NAME/VERSION \
        --rows DATA_VERSION_DIR/holdout.parquet [--batch-size 10000] --out baseline.json

The model is read from the run's MLflow store on disk (STATE/mlflow: the SQLite registry and the
artifact directory its server wrote), so no server is needed. Only the loop is timed; reading the
rows and loading the model are reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ARTIFACTS_SCHEME = "mlflow-artifacts:/"


def model_dir(state: Path, uri: str) -> Path:
    """The local directory of a registered model version's artifacts."""
    from mlflow.tracking import MlflowClient

    name, _, version = uri.removeprefix("models:/").partition("/")
    client = MlflowClient(tracking_uri=f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
    mv = client.get_model_version(name, version)
    # MLflow 3: the version's source is the logged model, models:/m-<id>.
    model_id = mv.model_id or mv.source.removeprefix("models:/")
    location = client.get_logged_model(model_id).artifact_location
    if not location.startswith(ARTIFACTS_SCHEME):
        raise SystemExit(f"bare_predict.py: unexpected artifact location {location} for {uri}")
    return state / "mlflow" / "artifacts" / location.removeprefix(ARTIFACTS_SCHEME)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--state-dir", type=Path, required=True)
    ap.add_argument("--model", required=True, help="models:/NAME/VERSION")
    ap.add_argument("--rows", type=Path, required=True, help="the Parquet split the stage scored")
    ap.add_argument("--batch-size", type=int, default=10000)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    import mlflow.sklearn
    import pandas as pd

    started = time.perf_counter()
    texts = pd.read_parquet(args.rows, columns=["text"])["text"].tolist()
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model = mlflow.sklearn.load_model(str(model_dir(args.state_dir, args.model)))
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    for start in range(0, len(texts), args.batch_size):
        model.predict(texts[start : start + args.batch_size])
    seconds = time.perf_counter() - started

    result = {
        "model": args.model,
        "rows": len(texts),
        "batch_size": args.batch_size,
        "seconds": round(seconds, 3),
        "rows_per_s": round(len(texts) / seconds, 1),
        "read_seconds": round(read_seconds, 3),
        "load_seconds": round(load_seconds, 3),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
