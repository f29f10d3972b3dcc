"""All four notebooks end to end through the runner's command line, against a temporary local
MLflow store (sqlite, artifacts in a temporary directory): on the bundled sample and on the shared
real dataset. Real MLflow, real scikit-learn, no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import NOTEBOOKS, REPO, SAMPLE_CSV, SHARED_CSV

pytestmark = pytest.mark.integration

# Small, fast models: these tests check the plumbing, not the tuning.
FAST = {
    # The original notebook's TF-IDF(max_features=100) + MultinomialNB: a clearly weaker model.
    "naive_bayes": ({"variant": "multinomial"}, {"char_ngram": None, "max_features": 100}),
    "logistic_regression": ({"C": 5, "class_weight": "balanced"}, {"char_ngram": None}),
    "linear_svc": ({"C": 0.3, "calibration_cv": 3}, {"char_ngram": [3, 4], "min_df": 2}),
}


class Store:
    """A temporary MLflow store plus data and output roots; runs notebooks against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.context = {
            "data_root": str(root / "data"),
            "output_root": str(root / "predictions"),
            "project_root": str(REPO),
            "mlflow_tracking_uri": self.uri,
            "mlflow_registry_uri": self.uri,
            "git_commit": "0123456789abcdef",
            "pipectl_pipeline": "it",
        }
        self.count = 0

    def run(self, notebook: str, expect_ok: bool = True, **params: Any) -> dict[str, Any]:
        self.count += 1
        out = self.root / f"out-{self.count}.json"
        err = self.root / f"err-{self.count}.json"
        tv = self.root / f"tv-{self.count}.json"
        args = [
            sys.executable,
            "-m",
            "pipectl_runner",
            str(NOTEBOOKS / notebook),
            "--output",
            str(out),
            "--task-values-out",
            str(tv),
            "--error-output",
            str(err),
        ]
        merged = {**self.context, "pipectl_run_id": f"it-{self.count}", **params}
        for name, value in merged.items():
            text = value if isinstance(value, str) else json.dumps(value)
            args += ["--param", f"{name}={text}"]
        # cwd = the store: MLflow puts a sqlite store's artifacts under ./mlruns.
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=600,
            env={**os.environ, "PYTHONPATH": str(NOTEBOOKS)},
        )
        if not expect_ok:
            assert proc.returncode == 1, proc.stdout + proc.stderr
            return {"stderr": proc.stderr, "error": json.loads(err.read_text())}
        assert proc.returncode == 0, f"{notebook} failed:\n{proc.stdout}\n{proc.stderr}"
        result = json.loads(out.read_text())
        assert json.loads(tv.read_text()) == result["outputs"]  # every output is a task value
        assert not err.exists()
        return result

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)


def pipeline(
    store: Store, source: str, data_name: str, model_name: str, weakest_first: bool = False
) -> dict[str, Any]:
    """data -> three trains -> evaluate -> inference. With `weakest_first`, the weakest model is
    made champion first and a min_delta the others cannot clear keeps it, so the final evaluate
    exercises promotion."""
    data = store.run("create_data.py", data_name=data_name, data_version="v1", source=source)
    out = data["outputs"]
    assert out["rows_train"] + out["rows_test"] + out["rows_holdout"] == data["metrics"]["rows_clean"]
    trains = {}
    for model_type, (model_params, features) in FAST.items():
        trains[model_type] = store.run(
            "train_model.py",
            data_name=data_name,
            data_version=out["data_version"],
            model_name=model_name,
            model_type=model_type,
            model_params=model_params,
            features=features,
        )
    uris = [t["outputs"]["model_uri"] for t in trains.values()]
    steps = {}
    if weakest_first:
        weakest = min(trains.values(), key=lambda t: t["metrics"]["f1_macro"])["outputs"]["model_uri"]
        steps["first"] = store.run("evaluate_models.py", candidates=[weakest], data_name=data_name)
        steps["kept"] = store.run("evaluate_models.py", candidates=uris, data_name=data_name, min_delta=0.5)
    evaluation = store.run("evaluate_models.py", candidates=uris, data_name=data_name, data_version="v1")
    inference = store.run(
        "run_inference.py",
        model=f"models:/{model_name}@champion",
        data_name=data_name,
        data_version="v1",
        split="holdout",
        write_csv=True,
    )
    return {"data": data, "trains": trains, "evaluate": evaluation, "inference": inference, "steps": steps}


def check_pipeline(store: Store, res: dict[str, Any], model_name: str) -> None:
    client = store.client()
    data_out = res["data"]["outputs"]
    versions = set()
    for model_type, train in res["trains"].items():
        o, m = train["outputs"], train["metrics"]
        assert o["model_name"] == model_name and o["model_type"] == model_type
        assert o["model_uri"] == f"models:/{model_name}/{o['model_version']}"
        assert set(m) == {
            "accuracy",
            "f1_macro",
            "f1_weighted",
            "precision_macro",
            "recall_macro",
            "roc_auc_ovr",
        }
        assert all(0 <= v <= 1 for v in m.values())
        run = client.get_run(o["run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.params["data_manifest_sha256"] == data_out["manifest_sha256"]
        assert run.data.params["git_commit"] == "0123456789abcdef"
        assert run.data.tags["mlflow.source.git.commit"] == "0123456789abcdef"
        assert abs(run.data.metrics["f1_macro"] - m["f1_macro"]) < 1e-9
        assert {"f1_negative", "precision_neutral", "recall_positive"} <= set(run.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(o["run_id"])}
        assert {"confusion_matrix.png", "classification_report.json"} <= artifacts
        contexts = sorted(d.tags[0].value for d in run.inputs.dataset_inputs)
        assert contexts == ["testing", "training"]
        mv = client.get_model_version(model_name, o["model_version"])
        assert mv.tags["data_version"] == "v1" and mv.tags["model_type"] == model_type
        versions.add(o["model_version"])
    assert len(versions) == 3

    ev = res["evaluate"]
    scores = {t["outputs"]["model_version"]: t["metrics"]["f1_macro"] for t in res["trains"].values()}
    best = max(scores, key=lambda v: scores[v])
    assert ev["outputs"]["model_version"] == ev["outputs"]["candidate_version"] == best
    assert abs(ev["metrics"]["candidate_score"] - scores[best]) < 1e-9  # same split, same numbers
    steps = res["steps"]
    if not steps:
        assert ev["outputs"]["decision"] == "first"
        assert "champion_score" not in ev["metrics"] and "delta" not in ev["metrics"]
    else:
        weakest = min(scores, key=lambda v: scores[v])
        first, kept = steps["first"], steps["kept"]
        assert first["outputs"]["decision"] == "first" and first["outputs"]["model_version"] == weakest
        # Better, but not by min_delta=0.5: the champion stays, the challenger moves.
        assert kept["outputs"]["decision"] == "kept" and kept["outputs"]["model_version"] == weakest
        assert kept["outputs"]["candidate_version"] == best
        assert kept["metrics"]["champion_score"] == pytest.approx(scores[weakest])
        assert kept["metrics"]["delta"] == pytest.approx(scores[best] - scores[weakest])
        assert scores[best] > scores[weakest]  # the FAST models are chosen so that promotion happens
        assert ev["outputs"]["decision"] == "promoted"
        assert ev["metrics"]["delta"] == pytest.approx(scores[best] - scores[weakest])
    assert str(client.get_model_version_by_alias(model_name, "champion").version) == best
    assert str(client.get_model_version_by_alias(model_name, "challenger").version) == best

    inf = res["inference"]["outputs"]
    df = pd.read_parquet(inf["predictions_path"])
    assert inf["rows"] == len(df) == data_out["rows_holdout"]
    assert inf["model_version"] == best
    classes = sorted(res["inference"]["outputs"]["prediction_counts"])
    assert list(df.columns) == [
        "id",
        "text",
        "label",
        "prediction",
        *[f"proba_{c}" for c in classes],
        "model_uri",
        "model_version",
        "data_version",
    ]
    assert (df[[f"proba_{c}" for c in classes]].sum(axis=1) - 1).abs().max() < 1e-6
    assert sum(inf["prediction_counts"].values()) == len(df)
    assert set(df["model_version"]) == {best} and set(df["data_version"]) == {"v1"}
    assert Path(inf["predictions_path"]).with_suffix(".csv").exists()
    assert 0 <= res["inference"]["metrics"]["accuracy"] <= 1
    # No MLflow run may be left RUNNING.
    for exp in client.search_experiments():
        assert not client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return Store(tmp_path_factory.mktemp("store"))


def test_sample_pipeline_end_to_end(store):
    # A relative source resolves against project_root (the repository).
    res = pipeline(store, str(SAMPLE_CSV.relative_to(REPO)), "sample", "sample_sentiment", weakest_first=True)
    check_pipeline(store, res, "sample_sentiment")
    assert res["data"]["metrics"]["rows_clean"] == 403
    assert max(t["metrics"]["f1_macro"] for t in res["trains"].values()) > 0.75  # a hard sample on purpose

    # Re-running the data stage is a no-op with the same outputs.
    again = store.run(
        "create_data.py", data_name="sample", data_version="v1", source=str(SAMPLE_CSV.relative_to(REPO))
    )
    assert again == res["data"]

    champion = res["evaluate"]["outputs"]["model_version"]

    # New texts from a CSV, no labels: predictions but no accuracy.
    new = store.root / "new.csv"
    new.write_text(
        "doc,body\nd1,Operating profit rose sharply in the quarter.\nd2,The company will cut 200 jobs.\n"
    )
    champion_run = next(t for t in res["trains"].values() if t["outputs"]["model_version"] == champion)
    res_csv = store.run(
        "run_inference.py",
        model=f"runs:/{champion_run['outputs']['run_id']}/model",  # the third URI form
        input_path=str(new),
        text_column="body",
        id_column="doc",
        output_name="adhoc",
    )
    assert res_csv["metrics"] == {"rows": 2}
    assert res_csv["outputs"]["model_version"] == champion  # found from the run id
    df = pd.read_parquet(res_csv["outputs"]["predictions_path"])
    assert df["id"].tolist() == ["d1", "d2"] and df["data_version"].iloc[0].startswith("csv-sha256:")
    assert "label" not in df.columns


def test_failures_are_reported_and_runs_end_failed(store):
    store.run("create_data.py", data_name="sample", data_version="v1", source=str(SAMPLE_CSV))
    bad = store.run(
        "train_model.py",
        expect_ok=False,
        data_name="sample",
        model_name="broken",
        model_type="logistic_regression",
        model_params={"C": 1, "learnin_rate": 0.1},
    )
    # A parameter error is the user's: reported once, through the error file, not on stderr.
    assert bad["error"]["cell"] == 3 and bad["error"]["user_error"] is True
    assert "cell 3 of 4 failed" not in bad["stderr"] and "Traceback" not in bad["stderr"]
    assert "unknown key 'learnin_rate'; valid: C, class_weight" in bad["error"]["message"]
    # An error inside the MLflow run (scikit-learn rejects C=-1 at fit) ends the run FAILED.
    failed = store.run(
        "train_model.py",
        expect_ok=False,
        data_name="sample",
        model_name="broken",
        model_type="logistic_regression",
        model_params={"C": -1},
        features={"char_ngram": None},
    )
    assert "InvalidParameterError" in failed["error"]["error"] and failed["error"]["cell"] == 3
    client = store.client()
    exp = client.get_experiment_by_name("broken")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    missing = store.run(
        "evaluate_models.py",
        expect_ok=False,
        candidates=["models:/sample_sentiment/1"],
        data_name="sample",
        data_version="v404",
    )
    assert (
        "data version sample/v404 not found" in missing["error"]["error"]
        and "available: v1" in missing["error"]["error"]
    )


@pytest.mark.shared_data
def test_shared_financial_sentiment_end_to_end(store):
    if not SHARED_CSV.exists():
        pytest.skip(f"shared dataset not found at {SHARED_CSV} (set PIPECTL_SHARED_DATA to its folder)")
    res = pipeline(store, str(SHARED_CSV), "financial_sentiment", "fs_sentiment")
    check_pipeline(store, res, "fs_sentiment")
    m = res["data"]["metrics"]
    assert (m["rows_raw"], m["duplicates_removed"], m["conflicts_resolved"], m["rows_clean"]) == (
        5842,
        6,
        514,
        5322,
    )
    # Even the fast test configurations beat the published classical baseline (macro-F1 0.57).
    assert max(t["metrics"]["f1_macro"] for t in res["trains"].values()) > 0.66
