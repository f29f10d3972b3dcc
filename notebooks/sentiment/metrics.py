"""Classification metrics for a fitted model on one split."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

#: Metrics the evaluate stage can rank by (all: higher is better).
RANKING_METRICS = (
    "accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
    "precision_weighted",
    "recall_weighted",
    "roc_auc_ovr",
)


def metric_key(text: str) -> str:
    """A label as part of an MLflow metric name (letters, digits, `_`, `-`, `.`, ` `, `/`)."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", text)


def predict(model: Any, texts: Sequence[str]) -> tuple[list[str], Any, list[str]]:
    """Labels, class probabilities (rows x classes) and the class order. The label is the most
    probable class, so labels and probabilities always agree."""
    import numpy as np

    proba = np.asarray(model.predict_proba(texts))
    classes = [str(c) for c in model.classes_]
    labels = [classes[i] for i in proba.argmax(axis=1)]
    return labels, proba, classes


def compute(y_true: Sequence[str], y_pred: Sequence[str], proba: Any, classes: list[str]) -> dict[str, Any]:
    """Scalar metrics, per-class metrics, the confusion matrix and sklearn's report."""
    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        classification_report,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y_true = [str(y) for y in y_true]
    out: dict[str, Any] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=classes, average=avg, zero_division=0
        )
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = float(p), float(r), float(f)
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=0
    )
    per_class = {
        c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, c in enumerate(classes)
    }
    present = sorted(set(y_true))
    if len(present) < 2 or not set(present) <= set(classes):
        auc = float("nan")  # undefined with one class (or a label the model never saw)
    elif len(classes) == 2:
        auc = float(roc_auc_score([y == classes[1] for y in y_true], np.asarray(proba)[:, 1]))
    else:
        auc = float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes))
    out["roc_auc_ovr"] = auc
    return {
        "scalars": out,
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "labels": classes,
        "report": classification_report(y_true, y_pred, labels=classes, output_dict=True, zero_division=0),
    }


def flat(result: dict[str, Any]) -> dict[str, float]:
    """Scalars plus `<metric>_<class>` for MLflow."""
    out = dict(result["scalars"])
    for c, m in result["per_class"].items():
        for k in ("precision", "recall", "f1"):
            out[f"{k}_{metric_key(c)}"] = m[k]
    return out


def confusion_figure(matrix: list[list[int]], labels: list[str], title: str) -> Any:
    """A confusion-matrix figure (rows: true label, columns: predicted), counts in the cells."""
    import numpy as np
    from matplotlib.figure import Figure

    # A bare Figure renders with the Agg canvas and never touches pyplot's global state or a
    # display backend: safe on jobs, CI and inside an interactive notebook.
    m = np.asarray(matrix)
    fig = Figure(figsize=(1.6 + 1.1 * len(labels), 1.2 + 1.0 * len(labels)), dpi=100)
    ax = fig.subplots()
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    limit = m.max() / 2 if m.size else 0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > limit else "black"
            )
    fig.tight_layout()
    return fig
