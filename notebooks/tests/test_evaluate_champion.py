"""A champion belongs to one dataset; min_delta has a noise floor by default.

Real MLflow (a sqlite store and registry in a temporary directory), real scikit-learn, the data
and train stages in process: one model per dataset, all registered under one model name, as when
every dataset brought with `--set data.source=...` shares the spec's model_name.
"""

from __future__ import annotations

import csv

import pytest
from conftest import SAMPLE_CSV

from sentiment.stages import data, evaluate, train

FAST = {"model_type": "naive_bayes", "features": '{"char_ngram": null, "max_features": 200}'}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three data versions and a model trained on each: news/v1 (the sample: three classes),
    news/v2 (the same name, positive and negative only) and movies/v1 (another name, two classes).
    The news/v1 model is the champion."""
    root = tmp_path_factory.mktemp("champion")
    # The SQLite store's artifacts go under ./mlruns: keep them out of the checkout.
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    base = {
        "data_root": str(root / "data"),
        "mlflow_tracking_uri": uri,
        "mlflow_registry_uri": uri,
        "pipectl_pipeline": "p",
        "pipectl_run_id": "r1",
    }
    with SAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    two_classes = root / "two_classes.csv"
    with two_classes.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([rows[0], *(r for r in rows[1:] if r[1] != "neutral")])
    models = {}
    for name, version, source in (
        ("news", "v1", SAMPLE_CSV),
        ("news", "v2", two_classes),
        ("movies", "v1", two_classes),
    ):
        data.run({**base, "data_name": name, "data_version": version, "source": str(source)})
        result = train.run(
            {
                **base,
                **FAST,
                "pipectl_stage": f"train_{name}_{version}",
                "data_name": name,
                "data_version": version,
                "model_name": "clf",
            }
        )
        models[f"{name}/{version}"] = result.outputs["model_uri"]
    first = _evaluate(base, models["news/v1"], "news", "v1")
    assert first.outputs["decision"] == "first"
    yield base, models
    mp.undo()


def _evaluate(base, candidate: str, data_name: str, data_version: str, **params: str):
    return evaluate.run(
        {
            **base,
            "pipectl_stage": "evaluate",
            "candidates": f'["{candidate}"]',
            "data_name": data_name,
            "data_version": data_version,
            **params,
        }
    )


def _champion(base) -> str:
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=base["mlflow_tracking_uri"], registry_uri=base["mlflow_registry_uri"])
    return str(c.get_model_version_by_alias("clf", "champion").version)


def test_the_registered_version_says_what_it_was_trained_on(store):
    from mlflow import MlflowClient

    base, models = store
    c = MlflowClient(tracking_uri=base["mlflow_tracking_uri"], registry_uri=base["mlflow_registry_uri"])
    tags = c.get_model_version("clf", models["news/v2"].rsplit("/", 1)[1]).tags
    assert tags["data_name"] == "news"
    assert tags["labels"] == '["negative", "positive"]'
    assert tags["pipectl.run_id"] == "r1"


def test_a_champion_of_another_data_name_is_not_compared_with(store):
    base, models = store
    before = _champion(base)
    with pytest.raises(evaluate.OtherDatasetError) as err:
        _evaluate(base, models["movies/v1"], "movies", "v1")
    message = str(err.value)
    assert (
        f"the champion of clf (version {before}, alias 'champion') was trained on data_name 'news'" in message
    )
    assert "labels ['negative', 'neutral', 'positive']" in message
    assert "this evaluation is on data_name 'movies' with labels ['negative', 'positive']" in message
    assert 'model_name: "movies_clf"' in message
    assert "allow_champion_from_other_data: true" in message
    assert _champion(base) == before  # nothing moved


def test_a_champion_with_other_labels_is_not_compared_with(store):
    """The same data_name with another file behind it (`--set data.source=...`)."""
    base, models = store
    before = _champion(base)
    with pytest.raises(evaluate.OtherDatasetError, match=r"was trained on labels \['negative', 'neutral'"):
        _evaluate(base, models["news/v2"], "news", "v2")
    assert _champion(base) == before


def test_the_override_compares_anyway(store):
    base, models = store
    result = _evaluate(base, models["movies/v1"], "movies", "v1", allow_champion_from_other_data="true")
    assert result.outputs["decision"] in ("kept", "promoted")
    assert "champion_score" in result.metrics


def test_min_delta_has_a_noise_floor_by_default():
    raw = {**evaluate.WIDGETS, "candidates": '["models:/m/1"]'}
    assert evaluate.EvaluateParams.parse(raw).min_delta == 0.005
    assert evaluate.EvaluateParams.parse({**raw, "min_delta": "0"}).min_delta == 0
