"""Parameter parsing and validation: every error names the parameter and what was wrong."""

from __future__ import annotations

import pytest

from sentiment import params as P
from sentiment.context import Context
from sentiment.features import resolve_features
from sentiment.models import build_classifier, build_pipeline, valid_param_names
from sentiment.stages.data import WIDGETS as DATA_WIDGETS
from sentiment.stages.data import DataParams
from sentiment.stages.evaluate import WIDGETS as EVALUATE_WIDGETS
from sentiment.stages.evaluate import EvaluateParams
from sentiment.stages.inference import WIDGETS as INFERENCE_WIDGETS
from sentiment.stages.inference import InferenceParams
from sentiment.stages.train import WIDGETS as TRAIN_WIDGETS
from sentiment.stages.train import TrainParams
from sentiment.tracking import parse_model_uri


def test_strings_as_the_engine_sends_them():
    raw = {"n": "0.2", "i": "42", "b": "true", "j": '{"C": 4}', "l": '["Sentiment"]', "z": "null"}
    assert P.number(raw, "n", 0.5, low=0, high=1) == 0.2
    assert P.integer(raw, "i", 0) == 42
    assert P.boolean(raw, "b", False) is True
    assert P.json_object(raw, "j") == {"C": 4}
    assert P.json_value(raw, "l") == ["Sentiment"]
    assert P.json_value(raw, "z", default="x") is None
    assert P.json_value({"z": ""}, "z", default="x") == "x"  # empty: not set
    assert P.integer({"i": "7.0"}, "i", 0) == 7


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: P.number({"x": "abc"}, "x", 0), "parameter 'x' must be a number, got 'abc'"),
        (
            lambda: P.number({"x": "1.5"}, "x", 0, low=0, high=1),
            r"parameter 'x' must be in \(0, 1\), got '1.5'",
        ),
        (lambda: P.number({"x": "nan"}, "x", 0), "finite"),
        (lambda: P.integer({"x": "4.5"}, "x", 0), "parameter 'x' must be an integer"),
        (lambda: P.integer({"x": "-1"}, "x", 0, low=0), "at least 0"),
        (lambda: P.boolean({"x": "maybe"}, "x", False), "parameter 'x' must be true or false"),
        (lambda: P.json_object({"x": "[1]"}, "x"), "parameter 'x' must be a JSON object"),
        (lambda: P.json_object({"x": "{bad"}, "x"), "parameter 'x' must be JSON"),
        (lambda: P.choice({"x": "c"}, "x", ["a", "b"], "a"), "must be one of a, b; got 'c'"),
        (lambda: P.segment({"x": "../etc"}, "x"), "safe path segment"),
        (lambda: P.segment({"x": ".hidden"}, "x"), "safe path segment"),
        (lambda: P.required({"x": " "}, "x"), "parameter 'x' is required"),
    ],
)
def test_param_errors(call, message):
    with pytest.raises(P.ParamError, match=message):
        call()


def data_raw(**kw: str) -> dict[str, str]:
    return {**DATA_WIDGETS, **kw}


def test_data_params_defaults():
    p = DataParams.parse(data_raw())
    assert (p.test_size, p.holdout, p.holdout_size, p.conflicts, p.seed) == (
        0.2,
        True,
        0.1,
        "prefer_non_neutral",
        42,
    )
    assert p.stratify == ["Sentiment"]  # empty: the label column
    assert DataParams.parse(data_raw(stratify="null")).stratify is None


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"test_size": "0.7", "holdout_size": "0.3"}, "test_size \\+ holdout_size must be below 1"),
        ({"stratify": '"Sentiment"'}, "'stratify' must be a non-empty JSON list"),
        ({"stratify": "[]"}, "'stratify' must be a non-empty JSON list"),
        ({"conflicts": "newest"}, "drop, prefer_non_neutral, majority"),
        ({"text_column": "Sentiment"}, "name the same column"),
        ({"data_version": "v1/../../x"}, "'data_version' must be a safe path segment"),
        ({"seed": "-3"}, "'seed' must be at least 0"),
    ],
)
def test_data_param_errors(kw, message):
    with pytest.raises(P.ParamError, match=message):
        DataParams.parse(data_raw(**kw))


def test_holdout_false_ignores_holdout_size():
    p = DataParams.parse(data_raw(holdout="false", test_size="0.5", holdout_size="0.9"))
    assert p.manifest_params()["holdout_size"] is None


def test_features_defaults_and_errors():
    f = resolve_features({})
    assert f["word_ngram"] == [1, 2] and f["char_ngram"] == [2, 5] and f["stop_words"] is None
    with pytest.raises(
        P.ParamError,
        match="unknown key 'ngrams'; valid: char_ngram, fast_vectorizer, lowercase, max_features",
    ):
        resolve_features({"ngrams": [1, 2]})
    with pytest.raises(P.ParamError, match=r"features.word_ngram must be \[min, max\]"):
        resolve_features({"word_ngram": [3, 1]})
    with pytest.raises(P.ParamError, match=r"features\.char_ngram .* or null"):
        resolve_features({"char_ngram": "2-5"})
    with pytest.raises(P.ParamError, match=r"features\.stop_words"):
        resolve_features({"stop_words": "german"})
    with pytest.raises(P.ParamError, match=r"features\.min_df"):
        resolve_features({"min_df": 0})


def test_unknown_model_params_list_the_valid_names():
    with pytest.raises(P.ParamError) as err:
        build_classifier("logistic_regression", {"C": 1, "learning_rate": 0.1}, seed=0)
    msg = str(err.value)
    assert "unknown key 'learning_rate'" in msg
    assert "C, class_weight" in msg and "max_iter" in msg
    with pytest.raises(P.ParamError, match="norm"):  # ComplementNB's `norm` is not MultinomialNB's
        build_classifier("naive_bayes", {"variant": "multinomial", "norm": True}, seed=0)
    with pytest.raises(P.ParamError, match=r"model_params\.variant must be one of complement, multinomial"):
        build_classifier("naive_bayes", {"variant": "bernoulli"}, seed=0)
    with pytest.raises(P.ParamError, match="calibration must be one of sigmoid, isotonic"):
        build_classifier("linear_svc", {"calibration": "platt"}, seed=0)
    assert "calibration" in valid_param_names("linear_svc")
    assert "variant" in valid_param_names("naive_bayes")


def test_classifiers_by_type_and_seed():
    assert type(build_classifier("naive_bayes", {}, 0)).__name__ == "ComplementNB"
    assert type(build_classifier("naive_bayes", {"variant": "multinomial"}, 0)).__name__ == "MultinomialNB"
    lr = build_classifier("logistic_regression", {}, 7)
    assert (lr.random_state, lr.max_iter) == (7, 1000)
    assert build_classifier("random_forest", {"random_state": 1}, 7).random_state == 1
    svc = build_classifier("linear_svc", {"C": 0.5, "calibration_cv": 3}, 7)
    assert type(svc).__name__ == "CalibratedClassifierCV" and svc.cv == 3 and svc.estimator.C == 0.5


@pytest.mark.parametrize("model_type", ["naive_bayes", "logistic_regression", "random_forest", "linear_svc"])
def test_every_model_type_gives_probabilities(model_type):
    texts = [
        "profit rose sharply",
        "sales up strongly",
        "profit fell",
        "sales dropped badly",
        "meeting on May 5",
        "office in Oslo",
    ] * 4
    labels = ["positive", "positive", "negative", "negative", "neutral", "neutral"] * 4
    params = {"n_estimators": 10} if model_type == "random_forest" else {}
    if model_type == "linear_svc":
        params = {"calibration_cv": 2}
    model = build_pipeline(model_type, params, resolve_features({"char_ngram": [2, 3]}), seed=0)
    model.fit(texts, labels)
    proba = model.predict_proba(["profit rose", "sales dropped"])
    assert proba.shape == (2, 3)
    assert list(model.classes_) == ["negative", "neutral", "positive"]


def test_train_params():
    raw = {
        **TRAIN_WIDGETS,
        "model_type": "linear_svc",
        "model_params": '{"C": 0.5}',
        "features": '{"char_ngram": null}',
    }
    p = TrainParams.parse(raw)
    assert p.model_params == {"C": 0.5} and p.features["char_ngram"] is None
    with pytest.raises(P.ParamError, match="'model_type' must be one of naive_bayes, logistic_regression"):
        TrainParams.parse({**TRAIN_WIDGETS, "model_type": "xgboost"})
    with pytest.raises(P.ParamError, match="no catalog/schema"):
        TrainParams.parse({**TRAIN_WIDGETS, "model_name": "main.ml.sentiment"})


def test_evaluate_params():
    raw = {**EVALUATE_WIDGETS, "candidates": '["models:/m/1", "models:/m/2", "models:/m/1"]'}
    assert EvaluateParams.parse(raw).candidates == ["models:/m/1", "models:/m/2"]
    with pytest.raises(P.ParamError, match="non-empty JSON list of model URIs"):
        EvaluateParams.parse({**EVALUATE_WIDGETS, "candidates": "[]"})
    with pytest.raises(P.ParamError, match="must be a model URI"):
        EvaluateParams.parse({**EVALUATE_WIDGETS, "candidates": '["s3://bucket/model"]'})
    with pytest.raises(P.ParamError, match="'metric' must be one of accuracy, f1_macro"):
        EvaluateParams.parse({**EVALUATE_WIDGETS, "candidates": '["models:/m/1"]', "metric": "loss"})


def test_inference_params_and_model_uris():
    p = InferenceParams.parse({**INFERENCE_WIDGETS, "model": "models:/cat.sch.m@champion"})
    assert (p.split, p.text_column, p.label_column) == ("holdout", "text", "label")
    p = InferenceParams.parse({**INFERENCE_WIDGETS, "input_path": "new.csv", "text_column": "body"})
    assert (p.text_column, p.id_column, p.label_column) == ("body", None, None)
    assert parse_model_uri("models:/cat.sch.m/3").version == "3"
    assert parse_model_uri("models:/m@champion").alias == "champion"
    assert parse_model_uri("runs:/abc123/model").run_id == "abc123"
    with pytest.raises(P.ParamError, match="'model' must be a model URI"):
        InferenceParams.parse({**INFERENCE_WIDGETS, "model": "m"})


def test_context_defaults_and_uc_names(tmp_path):
    ctx = Context.from_params({"project_root": str(tmp_path)})
    assert ctx.data_root == tmp_path / ".pipectl" / "data"
    assert ctx.output_root == tmp_path / ".pipectl" / "predictions"
    assert ctx.resolve("data/x.csv") == tmp_path / "data" / "x.csv"
    assert ctx.run_id_or_manual().startswith("manual-")
    with pytest.raises(P.ParamError, match="'uc_catalog' and 'uc_schema' must be set together"):
        Context.from_params({"uc_catalog": "main"})
    from sentiment.tracking import experiment_name, registered_name

    uc = Context.from_params({"uc_catalog": "main", "uc_schema": "ml", "experiment_root": "/Shared/p/"})
    assert registered_name(uc, "fs") == "main.ml.fs"
    assert experiment_name(uc, "fs") == "/Shared/p/fs"
    assert registered_name(ctx, "fs") == experiment_name(ctx, "fs") == "fs"


@pytest.mark.parametrize(
    "uri, catalog, want",
    [
        ("models:/clf@champion", "prod", "models:/prod.sentiment.clf@champion"),
        ("models:/clf/3", "prod", "models:/prod.sentiment.clf/3"),
        ("models:/dev.other.clf@champion", "prod", "models:/dev.other.clf@champion"),
        ("runs:/abc123/model", "prod", "runs:/abc123/model"),
        ("models:/clf@champion", "", "models:/clf@champion"),
    ],
)
def test_qualify_model_uri(uri, catalog, want):
    from sentiment.tracking import qualify_model_uri

    ctx = Context.from_params({"uc_catalog": catalog, "uc_schema": "sentiment" if catalog else ""})
    assert qualify_model_uri(ctx, uri) == want


def test_log_input_retries_only_the_dataset_race():
    from mlflow.exceptions import MlflowException

    from sentiment.tracking import log_input_retrying

    calls = []

    def racing(dataset, context):
        calls.append(context)
        if len(calls) == 1:
            raise MlflowException("UNIQUE constraint failed: datasets.experiment_id, datasets.name")

    log_input_retrying(racing, object(), "training")
    assert calls == ["training", "training"]

    def broken(dataset, context):
        raise MlflowException("RESOURCE_DOES_NOT_EXIST: no such run")

    with pytest.raises(MlflowException, match="no such run"):
        log_input_retrying(broken, object(), "training")
