"""Text normalisation and TF-IDF features, built into the model so inference cannot drift.

Features are scikit-learn's own `TfidfVectorizer`s in a `FeatureUnion`. `fast_vectorizer: true`
fits them with pipectl's fast counting instead (sentiment/ngrams.py: the same vocabulary and
matrices, minutes less on a million texts), written against public scikit-learn API only. Either
way the fitted model holds only scikit-learn classes (`stock_features`) plus `TextNormalizer`,
which the train stage pickles by value: a registered model loads without this package and
survives its internals changing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import FeatureUnion

from .params import ParamError, check_keys

#: The `features` parameter: keys and defaults (docs/STAGES.md, "train").
FEATURE_DEFAULTS: dict[str, Any] = {
    "word_ngram": [1, 2],
    "char_ngram": [2, 5],
    "max_features": None,
    "min_df": 1,
    "sublinear_tf": True,
    "lowercase": True,
    "stop_words": None,
    "fast_vectorizer": False,
}

_URL = re.compile(r"https?://\S+|www\.\S+")
_CASHTAG = re.compile(r"\$[A-Za-z][A-Za-z.]{0,9}\b")
_NUMBER = re.compile(r"(?<![A-Za-z])[-+]?\d[\d,]*(?:\.\d+)?")


def normalise(text: str) -> str:
    """Canonical form of one text: NFKC (full-width digits, ligatures), URLs and cashtags replaced
    by placeholder words (the link or ticker itself carries no sentiment), numbers by a digit-shape
    placeholder, whitespace collapsed. Case is left to the vectorizers (`lowercase`)."""
    text = unicodedata.normalize("NFKC", text)
    text = _URL.sub(" xurl ", text)
    text = _CASHTAG.sub(" xticker ", text)
    text = _NUMBER.sub(" xnum ", text)
    return " ".join(text.split())


class TextNormalizer(TransformerMixin, BaseEstimator):
    """First step of every model: accepts a list, array, Series or a one-column DataFrame (what
    MLflow's pyfunc and model serving pass) and returns normalised strings."""

    def fit(self, X: Any, y: Any = None) -> TextNormalizer:
        return self

    def transform(self, X: Any) -> list[str]:
        return [normalise("" if t is None else str(t)) for t in _texts(X)]


def _texts(X: Any) -> Any:
    columns = getattr(X, "columns", None)
    if columns is not None:  # a DataFrame
        if "text" in columns:
            return X["text"]
        if len(columns) == 1:
            return X.iloc[:, 0]
        raise ValueError(f"expected one text column (or one named 'text'), got {list(columns)}")
    return X


class CsrFeatureUnion(BaseEstimator):
    """The fast path's `FeatureUnion`: the blocks of its transformers side by side, stacked
    without holding them twice (on a million texts they are gigabytes: sentiment/sparse.py,
    `hstack_consuming`). The same matrix and feature names as `FeatureUnion(transformer_list)`;
    not a subclass (public API only), and never pickled into a model (`stock_features`)."""

    def __init__(self, transformer_list: list[tuple[str, Any]]) -> None:
        self.transformer_list = transformer_list

    def fit(self, X: Any, y: Any = None) -> CsrFeatureUnion:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        return _stack([t.fit_transform(X, y) for _, t in self.transformer_list])

    def transform(self, X: Any) -> Any:
        return _stack([t.transform(X) for _, t in self.transformer_list])

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        import numpy as np

        return np.asarray(
            [f"{name}__{f}" for name, t in self.transformer_list for f in t.get_feature_names_out()],
            dtype=object,
        )


def _stack(blocks: list[Any]) -> Any:
    import scipy.sparse as sp

    from .sparse import hstack_consuming

    stacked = hstack_consuming(blocks)
    return stacked if stacked is not None else sp.hstack(blocks).tocsr()


def _ngram(name: str, value: Any, allow_null: bool) -> tuple[int, int] | None:
    if value is None and allow_null:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
        or value[0] > value[1]
    ):
        raise ParamError(
            f"features.{name} must be [min, max] with 1 <= min <= max"
            + (" or null" if allow_null else "")
            + f", got {value!r}"
        )
    return int(value[0]), int(value[1])


def resolve_features(given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in and every value checked; unknown keys are an error."""
    check_keys("features", given, FEATURE_DEFAULTS)
    f = {**FEATURE_DEFAULTS, **given}
    _ngram("word_ngram", f["word_ngram"], allow_null=False)
    _ngram("char_ngram", f["char_ngram"], allow_null=True)
    mf = f["max_features"]
    if mf is not None and (not isinstance(mf, int) or isinstance(mf, bool) or mf < 1):
        raise ParamError(f"features.max_features must be a positive integer or null, got {mf!r}")
    md = f["min_df"]
    if isinstance(md, bool) or not (
        (isinstance(md, int) and md >= 1) or (isinstance(md, float) and 0 < md < 1)
    ):
        raise ParamError(f"features.min_df must be an integer >= 1 or a fraction in (0, 1), got {md!r}")
    for key in ("sublinear_tf", "lowercase"):
        if not isinstance(f[key], bool):
            raise ParamError(f"features.{key} must be true or false, got {f[key]!r}")
    if f["stop_words"] not in (None, "english"):
        raise ParamError(f'features.stop_words must be "english" or null, got {f["stop_words"]!r}')
    if not isinstance(f["fast_vectorizer"], bool):
        raise ParamError(f"features.fast_vectorizer must be true or false, got {f['fast_vectorizer']!r}")
    return f


def build_features(features: Mapping[str, Any]) -> Any:
    """A FeatureUnion of word TF-IDF and, optionally, character n-gram TF-IDF (within word
    boundaries, robust to inflections, typos and mojibake). With `fast_vectorizer`, fit it, then
    pass it through `stock_features` before saving."""
    import numpy as np

    f = resolve_features(features)
    if f["fast_vectorizer"]:
        # scikit-learn's TfidfVectorizer with exact, much faster counting (sentiment/ngrams.py).
        from .ngrams import NgramTfidfVectorizer as TfidfVectorizer

        union: type = CsrFeatureUnion
    else:
        from sklearn.feature_extraction.text import TfidfVectorizer

        union = FeatureUnion
    common = {
        "lowercase": f["lowercase"],
        "sublinear_tf": f["sublinear_tf"],
        "min_df": f["min_df"],
        "max_features": f["max_features"],
        "dtype": np.float32,
    }
    parts = [
        (
            "word",
            TfidfVectorizer(
                ngram_range=tuple(f["word_ngram"]),
                stop_words=f["stop_words"],
                token_pattern=r"(?u)\b\w+\b",  # keep one-letter tokens and short words ("up")
                **common,
            ),
        )
    ]
    if f["char_ngram"] is not None:
        parts.append(
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(f["char_ngram"]), **common))
        )
    return union(parts)


def stock_features(union: Any) -> Any:
    """The fitted feature step as stock scikit-learn: a fast-path union becomes a `FeatureUnion`
    of the `TfidfVectorizer`s its vectorizers fitted (`stock_`: the same vocabulary, idf and
    matrices, made through public API). Anything else is returned as it is."""
    if type(union) is not CsrFeatureUnion:
        return union
    return FeatureUnion([(name, getattr(v, "stock_", v)) for name, v in union.transformer_list])
