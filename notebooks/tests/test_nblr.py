"""The `nb_logistic_regression` model type: NB-weighted one-vs-rest logistic regression
(sentiment/nblr.py), built and validated like the other model types, usable as an ensemble member,
and saved so that it loads without the `sentiment` package."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from test_portable_model import load_elsewhere, sample

from sentiment.models import build_classifier, build_pipeline, finish_fitted, pickled_by_value
from sentiment.nblr import NBLogisticRegression
from sentiment.params import ParamError


def test_built_from_model_params_with_the_stage_seed():
    clf = build_classifier(
        "nb_logistic_regression", {"C": 30, "alpha": 0.5, "class_weight": "balanced"}, seed=7
    )
    assert type(clf) is NBLogisticRegression
    assert (clf.C, clf.alpha, clf.class_weight, clf.random_state, clf.max_iter) == (
        30,
        0.5,
        "balanced",
        7,
        1000,
    )
    with pytest.raises(ParamError, match=r"nb_logistic_regression.*'gamma'"):
        build_classifier("nb_logistic_regression", {"gamma": 1}, seed=7)
    ens = build_classifier(
        "ensemble",
        {
            "members": ["logistic_regression", "nb_logistic_regression"],
            "member_params": {"nb_logistic_regression": {"C": 3}},
        },
        seed=1,
    )
    assert type(ens) is VotingClassifier and type(ens.estimators[1][1]) is NBLogisticRegression
    assert ens.estimators[1][1].C == 3


def test_each_class_is_a_logistic_regression_on_nb_scaled_features():
    x = sparse.csr_matrix(
        np.array(
            [[2, 0, 1, 0], [1, 0, 0, 1], [0, 3, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 2, 1]], dtype=float
        )
    )
    y = np.array(["a", "a", "b", "b", "c", "c"])
    clf = NBLogisticRegression(C=2.0, alpha=1.0).fit(x, y)
    assert clf.classes_.tolist() == ["a", "b", "c"]
    present = (x.toarray() != 0).astype(float)
    for i, c in enumerate(clf.classes_):
        p, q = 1 + present[y == c].sum(0), 1 + present[y != c].sum(0)
        r = np.log((p / p.sum()) / (q / q.sum()))
        assert np.allclose(clf.ratios_[i], r)
        ref = LogisticRegression(C=2.0, max_iter=1000).fit(x.multiply(r).tocsr(), (y == c).astype(int))
        assert np.allclose(clf.estimators_[i].coef_, ref.coef_)
    proba = clf.predict_proba(x)
    assert proba.shape == (6, 3) and np.allclose(proba.sum(1), 1)
    assert clf.predict(x).tolist() == clf.classes_[proba.argmax(1)].tolist()
    assert clone(clf).get_params() == clf.get_params()
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        NBLogisticRegression(alpha=0).fit(x, y)
    with pytest.raises(ValueError, match="X has 3 features, the model was fitted on 4"):
        clf.predict(x[:, :3])


def test_it_learns_the_sample_and_loads_without_the_package(tmp_path):
    texts, labels = sample()
    model = build_pipeline("nb_logistic_regression", {"C": 10, "class_weight": "balanced"}, {}, 42)
    model.fit(texts, labels)
    assert np.mean(model.predict(texts) == np.array(labels)) > 0.9  # fits its own training data
    later = [*texts[::9], "Profit of $ACME rose 12% to EUR 3.5 mn"]
    want = model.predict_proba(later)
    import cloudpickle

    with pickled_by_value():
        (tmp_path / "model.pkl").write_bytes(cloudpickle.dumps(finish_fitted(model)))
    got = load_elsewhere(tmp_path / "model.pkl", later, tmp_path)
    assert not [m for m in got["modules"] if m.startswith("sentiment")]
    assert np.allclose(got["proba"], want, rtol=0, atol=1e-12)
