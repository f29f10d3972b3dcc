"""Classifiers and the full model pipeline: normalise -> TF-IDF features -> classifier.

`model_params` go to the estimator unchanged, except for a few documented extras:

- naive_bayes: `variant` = "complement" (default, ComplementNB: better on imbalanced text classes)
  or "multinomial" (MultinomialNB); the other keys are the chosen estimator's parameters.
- linear_svc: `calibration` = "sigmoid" (default) or "isotonic" and `calibration_cv` (default 5)
  configure the CalibratedClassifierCV that gives LinearSVC probabilities; the other keys are
  LinearSVC's parameters.
- logistic_regression: `max_iter` defaults to 1000 (scikit-learn's 100 often stops before TF-IDF
  features converge).
- nb_logistic_regression: `NBLogisticRegression` (sentiment/nblr.py): one-vs-rest logistic
  regression on features scaled by naive Bayes log-count ratios ("NB-SVM"); `alpha` smooths the
  ratios, the other keys (`C`, `class_weight`, `max_iter`, `tol`) go to each LogisticRegression.
- ensemble: a soft-voting `VotingClassifier` over other model types on the same features (their
  probabilities averaged, optionally weighted). `members` (default ["logistic_regression",
  "linear_svc"]), `member_params` ({member type: its model_params}, checked as for that type) and
  `weights` (null or one non-negative number per member).

`random_state` defaults to the stage's `seed` where the estimator has one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .params import ParamError, check_keys

MODEL_TYPES = (
    "naive_bayes",
    "logistic_regression",
    "random_forest",
    "linear_svc",
    "nb_logistic_regression",
    "ensemble",
)
#: Model types an ensemble can combine (all give probabilities).
ENSEMBLE_MEMBERS = (
    "naive_bayes",
    "logistic_regression",
    "random_forest",
    "linear_svc",
    "nb_logistic_regression",
)
#: The ensemble's model_params and their defaults.
ENSEMBLE_DEFAULTS: dict[str, Any] = {
    "members": ["logistic_regression", "linear_svc"],
    "member_params": {},
    "weights": None,
}
NB_VARIANTS = ("complement", "multinomial")
CALIBRATION_METHODS = ("sigmoid", "isotonic")


def _estimator_class(model_type: str, variant: str = "complement") -> type:
    if model_type == "naive_bayes":
        from sklearn.naive_bayes import ComplementNB, MultinomialNB

        return ComplementNB if variant == "complement" else MultinomialNB
    if model_type == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier
    if model_type == "linear_svc":
        from sklearn.svm import LinearSVC

        return LinearSVC
    if model_type == "nb_logistic_regression":
        from .nblr import NBLogisticRegression

        return NBLogisticRegression
    raise ParamError(f"parameter 'model_type' must be one of {', '.join(MODEL_TYPES)}; got {model_type!r}")


def _extras(model_type: str) -> dict[str, Any]:
    return {
        "naive_bayes": {"variant": "complement"},
        "linear_svc": {"calibration": "sigmoid", "calibration_cv": 5},
    }.get(model_type, {})


def valid_param_names(model_type: str, variant: str = "complement") -> list[str]:
    if model_type == "ensemble":
        return sorted(ENSEMBLE_DEFAULTS)
    cls = _estimator_class(model_type, variant)
    return sorted(set(cls().get_params(deep=False)) | set(_extras(model_type)))


def build_classifier(model_type: str, model_params: Mapping[str, Any], seed: int) -> Any:
    """The classifier for `model_type`, configured from `model_params` (validated names)."""
    if model_type == "ensemble":
        return _build_ensemble(model_params, seed)
    params = dict(model_params)
    extras = {k: params.pop(k, v) for k, v in _extras(model_type).items()}
    variant = extras.get("variant", "complement")
    if model_type == "naive_bayes" and variant not in NB_VARIANTS:
        raise ParamError(f"model_params.variant must be one of {', '.join(NB_VARIANTS)}; got {variant!r}")
    cls = _estimator_class(model_type, variant)
    check_keys(
        f"model_params ({model_type}{'/' + variant if model_type == 'naive_bayes' else ''})",
        model_params,
        valid_param_names(model_type, variant),
    )
    defaults = cls().get_params(deep=False)
    if "random_state" in defaults:
        params.setdefault("random_state", seed)
    if model_type == "logistic_regression":
        params.setdefault("max_iter", 1000)
    estimator = cls(**params)
    if model_type != "linear_svc":
        return estimator

    from sklearn.calibration import CalibratedClassifierCV

    method, cv = extras["calibration"], extras["calibration_cv"]
    if method not in CALIBRATION_METHODS:
        raise ParamError(
            f"model_params.calibration must be one of {', '.join(CALIBRATION_METHODS)}; got {method!r}"
        )
    if not isinstance(cv, int) or isinstance(cv, bool) or cv < 2:
        raise ParamError(f"model_params.calibration_cv must be an integer >= 2, got {cv!r}")
    return CalibratedClassifierCV(estimator, method=method, cv=cv)


def _build_ensemble(model_params: Mapping[str, Any], seed: int) -> Any:
    from sklearn.ensemble import VotingClassifier

    check_keys("model_params (ensemble)", model_params, ENSEMBLE_DEFAULTS)
    p = {**ENSEMBLE_DEFAULTS, **model_params}
    members, member_params, weights = p["members"], p["member_params"], p["weights"]
    if (
        not isinstance(members, list)
        or not members
        or len(set(members)) != len(members)
        or not all(m in ENSEMBLE_MEMBERS for m in members)
    ):
        raise ParamError(
            f"model_params.members must be a non-empty list of distinct model types from "
            f"{', '.join(ENSEMBLE_MEMBERS)}; got {members!r}"
        )
    if not isinstance(member_params, dict):
        raise ParamError(f"model_params.member_params must be an object, got {member_params!r}")
    check_keys("model_params.member_params", member_params, members)
    for member, given in member_params.items():
        if not isinstance(given, dict):
            raise ParamError(f"model_params.member_params.{member} must be an object, got {given!r}")
    if weights is not None and (
        not isinstance(weights, list)
        or len(weights) != len(members)
        or not all(isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in weights)
        or sum(weights) <= 0
    ):
        raise ParamError(
            f"model_params.weights must be null or {len(members)} non-negative numbers (one per "
            f"member) with a positive sum; got {weights!r}"
        )
    estimators = [(m, build_classifier(m, member_params.get(m, {}), seed)) for m in members]
    return VotingClassifier(estimators, voting="soft", weights=weights)


def build_pipeline(
    model_type: str, model_params: Mapping[str, Any], features: Mapping[str, Any], seed: int
) -> Any:
    """The whole model: raw texts in, labels and probabilities out."""
    from sklearn.pipeline import Pipeline

    from .features import TextNormalizer, build_features

    return Pipeline(
        [
            ("normalise", TextNormalizer()),
            ("features", build_features(features)),
            ("classifier", build_classifier(model_type, model_params, seed)),
        ]
    )


def finish_fitted(model: Any) -> Any:
    """A fitted pipeline as it is saved: fast-path features swapped for the stock scikit-learn ones
    they fitted (features.stock_features), so the model holds no class of this package but
    `TextNormalizer` and, for that model type, `NBLogisticRegression` (both pickled by value)."""
    from .features import stock_features

    model.set_params(features=stock_features(model.named_steps["features"]))
    return model


@contextmanager
def pickled_by_value() -> Iterator[None]:
    """While saving a model: cloudpickle stores `TextNormalizer` and `NBLogisticRegression` (their
    classes and functions) in the pickle itself instead of a reference to this package, so the
    model loads where `sentiment` is not importable, or is a different version. Everything else in
    it is scikit-learn's."""
    import cloudpickle

    from . import features, nblr

    modules = (features, nblr)
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)
