"""The `ensemble` model type: a soft-voting VotingClassifier over the other model types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_CSV
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB

from sentiment.models import build_classifier, build_pipeline, valid_param_names
from sentiment.params import ParamError


def test_members_are_built_by_their_own_rules():
    clf = build_classifier(
        "ensemble",
        {
            "members": ["logistic_regression", "linear_svc", "naive_bayes"],
            "member_params": {"logistic_regression": {"C": 10}, "linear_svc": {"calibration_cv": 3}},
            "weights": [2, 1, 1],
        },
        seed=7,
    )
    assert type(clf) is VotingClassifier and clf.voting == "soft" and clf.weights == [2, 1, 1]
    (n1, lr), (n2, svc), (n3, nb) = clf.estimators
    assert (n1, n2, n3) == ("logistic_regression", "linear_svc", "naive_bayes")
    assert type(lr) is LogisticRegression and lr.C == 10 and lr.max_iter == 1000 and lr.random_state == 7
    assert type(svc) is CalibratedClassifierCV and svc.cv == 3
    assert type(nb) is ComplementNB
    default = build_classifier("ensemble", {}, seed=1)
    assert [n for n, _ in default.estimators] == ["logistic_regression", "linear_svc"]
    assert valid_param_names("ensemble") == ["member_params", "members", "weights"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"member": []}, "unknown key 'member'; valid: member_params, members, weights"),
        ({"members": []}, "members must be a non-empty list"),
        ({"members": ["ensemble"]}, "members must be a non-empty list of distinct model types"),
        ({"members": ["naive_bayes", "naive_bayes"]}, "distinct"),
        ({"member_params": {"naive_bayes": {}}}, "unknown key 'naive_bayes'; valid: linear_svc"),
        ({"member_params": {"linear_svc": {"C": 1, "bogus": 2}}}, r"linear_svc\)': unknown key 'bogus'"),
        ({"member_params": {"linear_svc": 3}}, "member_params.linear_svc must be an object"),
        ({"weights": [1]}, "weights must be null or 2 non-negative numbers"),
        ({"weights": [0, 0]}, "positive sum"),
        ({"weights": [1, -1]}, "non-negative"),
    ],
)
def test_bad_ensemble_params_are_named(params, message):
    with pytest.raises(ParamError, match=message):
        build_classifier("ensemble", params, seed=1)


def test_the_ensemble_averages_its_members_probabilities():
    df = pd.read_csv(SAMPLE_CSV, keep_default_na=False)
    texts, labels = df["Sentence"].tolist(), df["Sentiment"].tolist()
    members = {"logistic_regression": {"C": 10}, "naive_bayes": {"alpha": 0.3}}
    model = build_pipeline(
        "ensemble",
        {"members": list(members), "member_params": members, "weights": [3, 1]},
        {"char_ngram": None},
        seed=42,
    ).fit(texts, labels)
    got = model.predict_proba(texts[:25])
    want = np.zeros_like(got)
    for (member, params), w in zip(members.items(), (3, 1), strict=True):
        alone = build_pipeline(member, params, {"char_ngram": None}, seed=42).fit(texts, labels)
        want += w * alone.predict_proba(texts[:25])
    assert np.allclose(got, want / 4, atol=1e-12)
