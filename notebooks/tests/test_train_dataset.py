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


def test_logged_dataset_infers_its_schema_from_a_sample(tmp_path):
    n = train.SCHEMA_SAMPLE_ROWS * 3
    # Strings in the sample, numbers after it: MLflow's inference over the whole frame finds no
    # schema, so a schema says that only the sample was read. Public attributes only.
    ids = [str(i) if i < train.SCHEMA_SAMPLE_ROWS else i for i in range(n)]
    df = pd.DataFrame({"id": ids, "text": ["x"] * n, "label": ["pos", "neg"] * (n // 2)})
    assert mlflow.data.from_pandas(df, targets="label").schema is None
    want = mlflow.data.from_pandas(df.head(train.SCHEMA_SAMPLE_ROWS), targets="label").schema
    assert want is not None

    dataset = train._dataset(mlflow, df, version(tmp_path), "train")
    assert dataset.schema == want
    assert dataset.profile["num_rows"] == n
    assert dataset.digest == "ab" * 8
    assert dataset.name == "news/v1/train"
