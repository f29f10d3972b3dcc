"""The datasets the train stage logs to MLflow: exact row counts, schema from a sample."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd

from sentiment.stages import train


def version(tmp_path: Path) -> SimpleNamespace:
    manifest = {
        "data_name": "news",
        "data_version": "v1",
        "splits": {"train": {"file": "train.parquet", "sha256": "ab" * 32}},
    }
    return SimpleNamespace(manifest=manifest, path=tmp_path)


def test_logged_dataset_infers_its_schema_from_a_sample(tmp_path, monkeypatch):
    n = train.SCHEMA_SAMPLE_ROWS * 3
    df = pd.DataFrame(
        {"id": [str(i) for i in range(n)], "text": ["x"] * n, "label": ["pos", "neg"] * (n // 2)}
    )
    want = mlflow.data.from_pandas(df, targets="label")._to_mlflow_entity().schema

    import mlflow.data.pandas_dataset as pandas_dataset

    def whole_frame(frame):
        raise AssertionError(f"schema inferred from all {len(frame)} rows")

    monkeypatch.setattr(pandas_dataset, "_infer_schema", whole_frame)
    entity = train._dataset(mlflow, df, version(tmp_path), "train")._to_mlflow_entity()
    assert entity.schema == want
    assert '"num_rows": 3000' in entity.profile
    assert entity.digest == "ab" * 8
    assert entity.name == "news/v1/train"
