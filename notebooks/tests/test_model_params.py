"""schemas/models.cue against scikit-learn: every model type's parameters in the schema (the names
`pipectl validate` accepts) are exactly its estimator's `get_params()` plus the wrapper settings
the train stage adds (naive_bayes `variant`, linear_svc `calibration*`). The schema's table comes
from schemas/model_params.json, which a Go test (schemas/models_test.go) keeps equal to what the
engine reads from models.cue."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from sentiment import models

SCHEMA = json.loads((REPO / "schemas" / "model_params.json").read_text())


def test_model_types_match():
    assert sorted(SCHEMA) == sorted(models.MODEL_TYPES)


@pytest.mark.parametrize("model_type", sorted(SCHEMA))
def test_schema_params_are_the_estimators(model_type):
    variants = models.NB_VARIANTS if model_type == "naive_bayes" else ("complement",)
    real: set[str] = set()
    for variant in variants:
        real |= set(models.valid_param_names(model_type, variant))
    schema = set(SCHEMA[model_type])
    assert sorted(schema - real) == [], f"{model_type}: in schemas/models.cue, not accepted by the estimator"
    assert sorted(real - schema) == [], (
        f"{model_type}: accepted by the estimator, missing from schemas/models.cue"
    )
