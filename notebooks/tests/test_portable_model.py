"""Registered models hold stock scikit-learn: they load without the `sentiment` package.

The default features are scikit-learn's `TfidfVectorizer`s; the fast counting path
(`features.fast_vectorizer`, sentiment/ngrams.py) keeps its fitted state in stock vectorizers,
which replace it before the model is saved. The load checks run in a separate, isolated Python
where `sentiment` cannot be imported, recording every class the pickle names.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_CSV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from sentiment.features import build_features, resolve_features
from sentiment.models import build_pipeline, finish_fitted, pickled_by_value
from sentiment.params import ParamError

# Loads a pickled model in a Python that cannot import `sentiment` (-I: no PYTHONPATH, no
# current directory; run from a temporary one), records the modules of the classes it names and
# prints them with the model's probabilities for the texts given.
LOADER = r"""
import importlib.util, json, pickle, sys
assert importlib.util.find_spec("sentiment") is None, "sentiment is importable"
named = set()
class Recording(pickle.Unpickler):
    def find_class(self, module, name):
        named.add(module)
        return super().find_class(module, name)
path, texts = sys.argv[1], json.loads(sys.argv[2])
if path.endswith(".pkl"):
    with open(path, "rb") as fh:
        model = Recording(fh).load()
else:  # an MLflow model directory
    import mlflow.sklearn
    model = mlflow.sklearn.load_model(path)
print(json.dumps({"modules": sorted(named), "proba": model.predict_proba(texts).tolist()}))
"""


def load_elsewhere(path: Path, texts: list[str], cwd: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-I", "-c", LOADER, str(path), json.dumps(texts)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def sample() -> tuple[list[str], list[str]]:
    df = pd.read_csv(SAMPLE_CSV, keep_default_na=False)
    return df["Sentence"].tolist(), df["Sentiment"].tolist()


def test_default_features_are_stock_scikit_learn():
    for features in ({}, {"char_ngram": None}):
        union = build_features(features)
        assert type(union) is FeatureUnion
        assert all(type(v) is TfidfVectorizer for _, v in union.transformer_list)


def test_the_fast_path_is_not_tied_to_a_scikit_learn_version(monkeypatch):
    """It uses public scikit-learn API only: no version gate (docs/BENCHMARKS.md)."""
    import sklearn

    monkeypatch.setattr(sklearn, "__version__", "2.0.0")
    assert resolve_features({"fast_vectorizer": True})["fast_vectorizer"] is True
    assert resolve_features({})["fast_vectorizer"] is False
    with pytest.raises(ParamError, match="fast_vectorizer must be true or false"):
        resolve_features({"fast_vectorizer": "yes"})


@pytest.mark.parametrize("model_type", ["logistic_regression", "naive_bayes"])
def test_a_fast_path_model_is_saved_as_stock_scikit_learn_and_loads_without_the_package(tmp_path, model_type):
    texts, labels = sample()
    later = [*texts[::9], "Profit of $ACME rose 12% to EUR 3.5 mn, see https://x.example"]
    fast = build_pipeline(model_type, {}, {"fast_vectorizer": True}, 42).fit(texts, labels)
    want = fast.predict_proba(later)
    finish_fitted(fast)
    union = fast.named_steps["features"]
    assert type(union) is FeatureUnion
    assert all(type(v) is TfidfVectorizer for _, v in union.transformer_list)
    # The same model as the stock path fits, and as the fast path before the swap.
    stock = build_pipeline(model_type, {}, {}, 42).fit(texts, labels)
    assert np.array_equal(fast.predict_proba(later), want)
    assert np.array_equal(stock.predict_proba(later), want)

    import cloudpickle

    with pickled_by_value():
        (tmp_path / "model.pkl").write_bytes(cloudpickle.dumps(fast))
    got = load_elsewhere(tmp_path / "model.pkl", later, tmp_path)
    assert not [m for m in got["modules"] if m.startswith("sentiment")]
    assert np.allclose(got["proba"], want, rtol=0, atol=1e-12)


def test_the_logged_model_loads_without_the_package(tmp_path):
    """The train stage end to end (real MLflow store): the registered model, loaded by MLflow in
    another Python, names no `sentiment` class and predicts as in training."""
    from sentiment.stages import data, train

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ctx = {
        "data_root": str(tmp_path / "data"),
        "mlflow_tracking_uri": uri,
        "mlflow_registry_uri": uri,
        "model_name": "portable",
    }
    data.run({**ctx, "source": str(SAMPLE_CSV)})
    result = train.run(
        {
            **ctx,
            "model_type": "naive_bayes",
            "features": '{"char_ngram": null, "fast_vectorizer": true}',
        }
    )
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    local = Path(
        mlflow.artifacts.download_artifacts(result.outputs["model_uri"], dst_path=str(tmp_path / "m"))
    )
    assert not (local / "code").exists()  # no package shipped beside the model
    texts = sample()[0][:20]
    by_mlflow = load_elsewhere(local, texts, tmp_path)
    raw = load_elsewhere(local / "model.pkl", texts, tmp_path)
    assert not [m for m in raw["modules"] if m.startswith("sentiment")]
    assert by_mlflow["proba"] == raw["proba"]
    from sentiment.tracking import load_model

    assert np.allclose(load_model(result.outputs["model_uri"]).predict_proba(texts), raw["proba"], atol=1e-12)
