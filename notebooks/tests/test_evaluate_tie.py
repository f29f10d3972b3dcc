"""The evaluate stage says how a tie was decided (output `tie`, shown in the run summary).

Real MLflow (a sqlite store), real scikit-learn, in process: two trainings with the same inputs
give two versions that score exactly the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLE_CSV

from sentiment.stages import data, evaluate, train
from sentiment.stages.evaluate import tie_note

NB = {"model_type": "naive_bayes", "features": '{"char_ngram": null}'}


@pytest.fixture
def ctx(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = {
        "data_root": str(tmp_path / "data"),
        "mlflow_tracking_uri": uri,
        "mlflow_registry_uri": uri,
        "model_name": "tie_test",
    }
    data.run({**base, "source": str(SAMPLE_CSV)})
    return base


def test_tie_note_names_the_rule():
    assert tie_note("f1_macro", [("1", 0.8), ("2", 0.7)], "1", None, None, 0.0) == ""
    assert tie_note("f1_macro", [("3", 0.9304), ("1", 0.9304), ("2", 0.9304)], "3", None, None, 0.0) == (
        "tie on f1_macro 0.9304 between versions 3, 1, 2: candidate chosen by the first-listed rule "
        "(version 3)"
    )
    assert tie_note("accuracy", [("2", 0.5)], "2", "1", 0.5, 0.005) == (
        "tie with champion version 1 on accuracy 0.5000: champion kept (a candidate must score "
        "higher, by at least min_delta 0.005)"
    )
    assert tie_note("accuracy", [("2", 0.6)], "2", "1", 0.5, 0.0) == ""


def test_evaluate_explains_ties_between_candidates_and_with_the_champion(ctx, capsys):
    a = train.run({**ctx, **NB, "pipectl_run_id": "r1", "pipectl_stage": "train_a"})
    b = train.run({**ctx, **NB, "pipectl_run_id": "r2", "pipectl_stage": "train_b"})
    assert a.metrics == b.metrics and a.outputs["model_version"] != b.outputs["model_version"]
    va, vb = a.outputs["model_version"], b.outputs["model_version"]
    uris = f'["{a.outputs["model_uri"]}", "{b.outputs["model_uri"]}"]'

    first = evaluate.run({**ctx, "candidates": uris})
    assert first.outputs["decision"] == "first" and first.outputs["model_version"] == va
    tie = first.outputs["tie"]
    assert tie.startswith(f"tie on f1_macro {a.metrics['f1_macro']:.4f} between versions {va}, {vb}")
    assert tie in capsys.readouterr().out

    again = evaluate.run({**ctx, "candidates": f'["{b.outputs["model_uri"]}"]', "min_delta": "0.01"})
    assert again.outputs["decision"] == "kept" and again.outputs["model_version"] == va
    assert again.outputs["tie"] == (
        f"tie with champion version {va} on f1_macro {a.metrics['f1_macro']:.4f}: champion kept "
        "(a candidate must score higher, by at least min_delta 0.01)"
    )

    lr = train.run({**ctx, "model_type": "logistic_regression", "features": '{"char_ngram": null}'})
    assert lr.metrics["f1_macro"] != a.metrics["f1_macro"]  # the sample tells models apart
    plain = evaluate.run({**ctx, "candidates": f'["{lr.outputs["model_uri"]}", "{a.outputs["model_uri"]}"]'})
    assert "tie" not in plain.outputs
