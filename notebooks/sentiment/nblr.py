"""NB-weighted logistic regression ("NB-SVM", Wang & Manning 2012, with a logistic loss).

For each class c, every feature is scaled by its naive Bayes log-count ratio
r_c = log((p_c / |p_c|_1) / (q_c / |q_c|_1)), where p_c and q_c are the smoothed (`alpha`)
counts of texts with the feature present in class c and in the other classes. A binary
`LogisticRegression` is fitted per class (one-vs-rest) on the scaled features; the class with the
largest decision value wins, and probabilities are the per-class sigmoids normalised to sum to 1.
Features that separate the classes in counts get a head start the L2 penalty does not erase.

Public scikit-learn API only, and nothing from the `sentiment` package: the train stage pickles
this module by value with the model (models.pickled_by_value), so a registered model loads where
`sentiment` is not importable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


def _sparse(X: Any) -> Any:
    from scipy import sparse

    return X.tocsr() if sparse.issparse(X) else sparse.csr_matrix(np.asarray(X, dtype=np.float64))


class NBLogisticRegression(ClassifierMixin, BaseEstimator):
    """One-vs-rest logistic regression on naive-Bayes-scaled features (module docstring).

    `alpha` smooths the counts of the log-count ratios; `C`, `class_weight`, `max_iter`, `tol` and
    `random_state` go to each binary `LogisticRegression`."""

    def __init__(
        self,
        C: float = 1.0,
        alpha: float = 1.0,
        class_weight: Any = None,
        max_iter: int = 1000,
        tol: float = 1e-4,
        random_state: Any = None,
    ) -> None:
        self.C = C
        self.alpha = alpha
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> NBLogisticRegression:
        if not (isinstance(self.alpha, int | float) and self.alpha > 0):
            raise ValueError(f"alpha must be a positive number, got {self.alpha!r}")
        X = _sparse(X)
        y = np.asarray(y)
        if X.shape[0] != len(y):
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(y)} labels")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"needs at least 2 classes, got {self.classes_.tolist()}")
        self.n_features_in_ = X.shape[1]
        present = X.copy()
        present.data = (present.data != 0).astype(np.float64)
        ratios, models = [], []
        for c in self.classes_:
            mine = y == c
            p = self.alpha + np.asarray(present[mine].sum(axis=0)).ravel()
            q = self.alpha + np.asarray(present[~mine].sum(axis=0)).ravel()
            r = np.log((p / p.sum()) / (q / q.sum()))
            # class_weight "balanced" or a {label: weight} dict, mapped onto this binary problem.
            weight = self.class_weight
            if isinstance(weight, dict):
                weight = {1: weight.get(c, 1.0), 0: 1.0}
            lr = LogisticRegression(
                C=self.C,
                class_weight=weight,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=self.random_state,
            )
            lr.fit(X.multiply(r).tocsr(), mine.astype(int))
            ratios.append(r.astype(X.dtype if X.dtype.kind == "f" else np.float64))
            models.append(lr)
        self.ratios_, self.estimators_ = ratios, models
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        X = _sparse(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the model was fitted on {self.n_features_in_}")
        return np.column_stack(
            [
                lr.decision_function(X.multiply(r).tocsr())
                for r, lr in zip(self.ratios_, self.estimators_, strict=True)
            ]
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]
