"""Choose default `features` and `model_params` by cross-validation on a train split only.

    python tools/cv_search.py DATA_VERSION_DIR [--folds 5] [--jobs 2] [--only MODEL_TYPE]

Reads `train.parquet` of a data version written by the data stage, runs a small grid per model
type with StratifiedGroupKFold (groups = the normalised text, as in the split; seeded) and prints
mean macro-F1 per configuration, best first. The test split is never read, so the defaults chosen
here are not tuned on the numbers they are reported with. Run from `notebooks/`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sentiment.features import resolve_features
from sentiment.models import build_pipeline
from sentiment.textkey import group_key

WORD = {"word_ngram": [1, 2], "char_ngram": None}
WORD_CHAR = {"word_ngram": [1, 2], "char_ngram": [2, 5]}

MEMBER_PARAMS = {
    "logistic_regression": {"C": 10, "class_weight": "balanced"},
    "linear_svc": {"C": 3.0},
    "naive_bayes": {"variant": "complement", "alpha": 0.1},
    "nb_logistic_regression": {"C": 30, "alpha": 1.0, "class_weight": "balanced"},
}

GRID: dict[str, list[tuple[dict, dict]]] = {
    "naive_bayes": [
        (f, {"variant": v, "alpha": a})
        for f, v, a in itertools.product(
            [WORD, {"word_ngram": [1, 3], "char_ngram": None}], ["complement", "multinomial"], [0.1, 0.3, 1.0]
        )
    ],
    "logistic_regression": [
        (f, {"C": c, "class_weight": w})
        for f, c, w in itertools.product([WORD, WORD_CHAR], [3, 10, 30], ["balanced", None])
    ],
    "linear_svc": [
        (f, {"C": c, "class_weight": w})
        for f, c, w in itertools.product([WORD, WORD_CHAR], [0.1, 0.3, 1.0, 3.0], ["balanced", None])
    ],
    # NB-weighted one-vs-rest logistic regression ("NB-SVM", sentiment/nblr.py).
    "nb_logistic_regression": [
        (WORD_CHAR, {"C": c, "alpha": a, "class_weight": w})
        for c, a, w in itertools.product([10, 30, 100], [0.5, 1.0, 4.0, 8.0, 16.0], ["balanced", None])
    ],
    # The tuned members above, averaged (soft voting) on one feature set.
    "ensemble": [
        (WORD_CHAR, {"members": members, "member_params": {m: MEMBER_PARAMS[m] for m in members}})
        for members in (
            ["logistic_regression", "linear_svc"],
            ["logistic_regression", "linear_svc", "naive_bayes"],
            ["logistic_regression", "linear_svc", "nb_logistic_regression"],
        )
    ],
    "random_forest": [
        (
            {"word_ngram": [1, 2], "char_ngram": None, "min_df": 2},
            {"n_estimators": 300, "class_weight": cw, "min_samples_leaf": leaf, "n_jobs": 1},
        )
        for cw, leaf in itertools.product(["balanced_subsample", None], [1, 2])
    ],
}


def main() -> int:
    import pandas as pd
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

    ap = argparse.ArgumentParser()
    ap.add_argument("version_dir", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", action="append")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    train = pd.read_parquet(args.version_dir / "train.parquet")
    texts, labels = train["text"].tolist(), train["label"].tolist()
    groups = [group_key(t) for t in texts]
    cv = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
    results = []
    for model_type, configs in GRID.items():
        if args.only and model_type not in args.only:
            continue
        for features, model_params in configs:
            model = build_pipeline(model_type, model_params, resolve_features(features), args.seed)
            started = time.perf_counter()
            scores = cross_val_score(
                model, texts, labels, groups=groups, cv=cv, scoring="f1_macro", n_jobs=args.jobs
            )
            row = {
                "model_type": model_type,
                "features": features,
                "model_params": model_params,
                "f1_macro_mean": round(float(scores.mean()), 4),
                "f1_macro_std": round(float(scores.std()), 4),
                "seconds": round(time.perf_counter() - started, 1),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    print("\nbest per model type (mean macro-F1 over folds of the train split):")
    for model_type in GRID:
        rows = [r for r in results if r["model_type"] == model_type]
        if rows:
            print(json.dumps(max(rows, key=lambda r: r["f1_macro_mean"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
