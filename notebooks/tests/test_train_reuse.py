"""No model version is registered twice for one stage of one pipectl run.

pipectl re-runs a train stage whose outcome it did not record (`--resume` after `kill -9`, a
crashed executor, a retry); the earlier attempt may already have registered its version. The train
stage finds that attempt's MLflow run by its pipectl tags and reuses its version when the inputs are
the same. Real MLflow (a sqlite store), real scikit-learn, in process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLE_CSV

from sentiment.stages import data, train

FAST = {"model_type": "naive_bayes", "features": '{"char_ngram": null, "max_features": 200}'}


@pytest.fixture
def ctx(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = {
        "data_root": str(tmp_path / "data"),
        "mlflow_tracking_uri": uri,
        "mlflow_registry_uri": uri,
        "model_name": "reuse_test",
        "pipectl_pipeline": "p",
    }
    data.run({**base, "source": str(SAMPLE_CSV)})
    return base


def _train(ctx, run_id: str, stage: str, **params: str):
    return train.run({**ctx, **FAST, "pipectl_run_id": run_id, "pipectl_stage": stage, **params})


def _versions(ctx) -> list[tuple[str, str]]:
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=ctx["mlflow_tracking_uri"], registry_uri=ctx["mlflow_registry_uri"])
    return sorted((v.version, v.run_id) for v in c.search_model_versions("name='reuse_test'"))


def test_a_second_attempt_reuses_the_version_of_the_first(ctx, capsys):
    first = _train(ctx, "r1", "train_nb")
    assert first.outputs["model_version"] == "1"
    capsys.readouterr()

    again = _train(ctx, "r1", "train_nb")
    assert again.outputs == first.outputs
    assert again.metrics == pytest.approx(first.metrics)
    assert "reusing reuse_test version 1" in capsys.readouterr().out
    assert len(_versions(ctx)) == 1


def test_an_attempt_killed_after_registering_is_ended_and_its_version_reused(ctx):
    from mlflow import MlflowClient

    first = _train(ctx, "r2", "train_nb")
    client = MlflowClient(tracking_uri=ctx["mlflow_tracking_uri"])
    # What SIGKILL right after the registration leaves: the run never ended.
    client.update_run(first.outputs["run_id"], status="RUNNING")
    client.delete_model_version_tag("reuse_test", first.outputs["model_version"], "test_f1_macro")

    again = _train(ctx, "r2", "train_nb")
    assert again.outputs["model_version"] == first.outputs["model_version"]
    assert client.get_run(first.outputs["run_id"]).info.status == "KILLED"
    tags = client.get_model_version("reuse_test", first.outputs["model_version"]).tags
    assert tags["test_f1_macro"] == f"{first.metrics['f1_macro']:.4f}"  # completed
    assert len(_versions(ctx)) == 1


def test_other_stages_runs_and_inputs_register_their_own_versions(ctx):
    base = _train(ctx, "r3", "train_nb")
    other_stage = _train(ctx, "r3", "train_nb2")
    other_run = _train(ctx, "r4", "train_nb")
    other_inputs = _train(ctx, "r3", "train_nb", seed="7")  # --resume after editing the spec
    interactive = train.run({**ctx, **FAST})  # no pipectl run: always trains
    versions = {r.outputs["model_version"] for r in (base, other_stage, other_run, other_inputs, interactive)}
    assert len(versions) == 5
    assert len(_versions(ctx)) == 5


def test_an_earlier_attempt_in_another_experiment_is_found(ctx):
    """The earlier attempt's run is not in the experiment this attempt uses (older releases put the
    runs of a lost creation race into "Default"): its version is still found and reused."""
    from mlflow import MlflowClient

    first = _train(ctx, "r5", "train_nb")
    client = MlflowClient(tracking_uri=ctx["mlflow_tracking_uri"])
    moved = client.get_experiment_by_name("reuse_test")
    client.rename_experiment(moved.experiment_id, "elsewhere")

    again = _train(ctx, "r5", "train_nb")
    assert again.outputs == first.outputs
    assert len(_versions(ctx)) == 1
