"""NgramTfidfVectorizer is scikit-learn's TfidfVectorizer, bit for bit, only faster."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from sentiment import ngrams
from sentiment.features import TextNormalizer, build_features
from sentiment.ngrams import NgramTfidfVectorizer

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words that share n-grams, differ in case, carry punctuation or are stop words, and whitespace
# Python's str.split() and the regexes treat alike (or not): the corners of both analyzers.
WORDS = [
    "Profit",
    "profit",
    "rose",
    "ROSE",
    "by",
    "5%",
    "the",
    "and",
    "x",
    "ab",
    "a-b",
    "Ünï",
    "ß",
    "$",
    "e.g.",
]
SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u2003", "\x1c"]


@st.composite
def corpora(draw):
    docs = draw(
        st.lists(
            st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SPACES)), max_size=12).map(
                lambda parts: "".join(w + s for w, s in parts)
            ),
            min_size=1,
            max_size=25,
        )
    )
    return docs


def assert_same(a, b, docs, later):
    fitted_a = a.fit_transform(docs)
    fitted_b = b.fit_transform(docs)
    assert b.vocabulary_ == a.vocabulary_
    pairs = [(fitted_a, fitted_b)]
    pairs += [(a.transform(later), b.transform(later)) for _ in range(2)]  # the 2nd: warm word cache
    for x, y in pairs:
        assert type(x) is type(y) and x.shape == y.shape and x.dtype == y.dtype
        assert x.indices.dtype == y.indices.dtype and x.indptr.dtype == y.indptr.dtype
        assert np.array_equal(x.indptr, y.indptr)
        assert np.array_equal(x.indices, y.indices)  # entry order too: the float sums depend on it
        assert np.array_equal(x.data, y.data)
    assert np.array_equal(a.idf_, b.idf_)


def fit_error(v, docs):
    try:
        v.fit(docs)
    except ValueError as exc:
        return str(exc)
    return None


@SETTINGS
@given(
    corpora(),
    corpora(),
    st.sampled_from([(1, 1), (1, 2), (2, 2), (1, 3), (2, 4)]),
    st.sampled_from([None, "english"]),
    st.sampled_from([1, 2, 0.2]),
    st.sampled_from([None, 3, 50]),
    st.booleans(),
    st.sampled_from([r"(?u)\b\w\w+\b", r"(?u)\b\w+\b", r"[^ ]+"]),
)
def test_word_ngrams_match_scikit_learn(
    docs, later, ngram_range, stop_words, min_df, max_features, lower, pattern
):
    kw = dict(
        ngram_range=ngram_range,
        stop_words=stop_words,
        min_df=min_df,
        max_features=max_features,
        lowercase=lower,
        token_pattern=pattern,
        sublinear_tf=True,
        dtype=np.float32,
    )
    a, b = TfidfVectorizer(**kw), NgramTfidfVectorizer(**kw)
    error = fit_error(TfidfVectorizer(**kw), docs)
    if error is not None:  # e.g. empty vocabulary, or nothing left after min_df
        assert fit_error(NgramTfidfVectorizer(**kw), docs) == error
        return
    assert_same(a, b, docs, later)


@SETTINGS
@given(
    corpora(),
    corpora(),
    st.sampled_from([(1, 1), (2, 5), (1, 3), (3, 3)]),
    st.sampled_from([1, 2]),
    st.sampled_from([None, 10]),
    st.booleans(),
)
def test_char_wb_ngrams_match_scikit_learn(docs, later, ngram_range, min_df, max_features, lower):
    kw = dict(
        analyzer="char_wb",
        ngram_range=ngram_range,
        min_df=min_df,
        max_features=max_features,
        lowercase=lower,
        sublinear_tf=True,
        dtype=np.float32,
    )
    error = fit_error(TfidfVectorizer(**kw), docs)
    if error is not None:
        assert fit_error(NgramTfidfVectorizer(**kw), docs) == error
        return
    assert_same(TfidfVectorizer(**kw), NgramTfidfVectorizer(**kw), docs, later)


@SETTINGS
@given(corpora(), corpora(), st.sampled_from([("word", (1, 2)), ("word", (1, 3)), ("char_wb", (2, 5))]))
@example(["a b", "c a b"], ["b c a"], ("word", (1, 2)))
def test_the_models_configurations_match_scikit_learn(docs, later, config):
    """What build_features uses: every term kept, so the order of the entries in each row is the
    order in which fitting met the terms (scikit-learn never re-sorts them)."""
    analyzer, ngram_range = config
    kw = dict(analyzer=analyzer, ngram_range=ngram_range, dtype=np.float32)
    if analyzer == "word":
        kw["token_pattern"] = r"(?u)\b\w+\b"
    if fit_error(TfidfVectorizer(**kw), docs) is None:
        assert_same(TfidfVectorizer(**kw), NgramTfidfVectorizer(**kw), docs, later)


def test_chunks_and_the_word_cache_change_nothing(monkeypatch):
    docs = [f"Profit rose by {i % 7} and the loss fell {i % 13} times" for i in range(300)]
    reference = NgramTfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5))
    want = reference.fit_transform(docs)
    monkeypatch.setattr(ngrams, "CHUNK", 7)
    monkeypatch.setattr(ngrams, "WORD_CACHE_LIMIT", 5)
    for analyzer, ngram_range in (("char_wb", (2, 5)), ("word", (1, 3))):
        a = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range)
        b = NgramTfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range)
        assert_same(a, b, docs, docs[::-1])
    got = NgramTfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).fit_transform(docs)
    assert np.array_equal(got.data, want.data)


def test_refitting_forgets_the_old_columns():
    v = NgramTfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3))
    v.fit(["alpha beta"])
    v.transform(["alpha"])  # fills the word cache
    v.fit(["gamma alpha"])
    a = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)).fit(["gamma alpha"])
    assert np.array_equal(v.transform(["alpha"]).toarray(), a.transform(["alpha"]).toarray())


def test_pickles_without_its_cache():
    v = NgramTfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)).fit(["alpha beta"])
    v.transform(["alpha beta"])
    assert ngrams.counting_for(v, v.get_params()).cache_of(v.vocabulary_)  # filled
    data = pickle.dumps(v)
    assert b"Counting" not in data
    copy = pickle.loads(data)
    assert sorted(vars(copy)) == sorted(vars(v))
    assert np.array_equal(copy.transform(["beta"]).toarray(), v.transform(["beta"]).toarray())


def test_other_configurations_use_scikit_learns_counting():
    docs = ["Café au lait", "cafe noir"]
    for kw in (dict(strip_accents="unicode"), dict(analyzer="char"), dict(preprocessor=str.upper)):
        a, b = TfidfVectorizer(**kw), NgramTfidfVectorizer(**kw)
        assert np.array_equal(a.fit_transform(docs).toarray(), b.fit_transform(docs).toarray())
    with pytest.raises(ValueError, match=r"np\.nan is an invalid document"):
        NgramTfidfVectorizer().fit(["a b", np.nan])


def test_the_model_features_match_scikit_learn_on_the_sample():
    import pandas as pd
    from conftest import SAMPLE_CSV

    texts = TextNormalizer().transform(pd.read_csv(SAMPLE_CSV)["Sentence"].fillna(""))
    ours = build_features({"fast_vectorizer": True})
    theirs = build_features({"fast_vectorizer": True})
    for i, (_, v) in enumerate(theirs.transformer_list):
        theirs.transformer_list[i] = (theirs.transformer_list[i][0], TfidfVectorizer(**v.get_params()))
    want, got = theirs.fit_transform(texts), ours.fit_transform(texts)
    assert np.array_equal(want.indices, got.indices) and np.array_equal(want.data, got.data)
    assert all(type(v) is NgramTfidfVectorizer for _, v in ours.transformer_list)


def test_the_feature_union_stacks_like_scikit_learns():
    from sklearn.pipeline import FeatureUnion

    from sentiment.features import CsrFeatureUnion

    docs = [f"Profit rose by {i % 7} and the loss fell {i % 13} times" for i in range(50)] + [""]
    for features in ({"fast_vectorizer": True}, {"char_ngram": None, "fast_vectorizer": True}):
        ours = build_features(features)
        assert type(ours) is CsrFeatureUnion
        theirs = FeatureUnion([(n, TfidfVectorizer(**v.get_params())) for n, v in ours.transformer_list])
        for want, got in (
            (theirs.fit_transform(docs), ours.fit_transform(docs)),
            (theirs.transform(docs[:9]), ours.transform(docs[:9])),
        ):
            assert type(want) is type(got) and want.dtype == got.dtype and want.shape == got.shape
            assert want.indices.dtype == got.indices.dtype and want.indptr.dtype == got.indptr.dtype
            assert np.array_equal(want.indptr, got.indptr)
            assert np.array_equal(want.indices, got.indices)
            assert np.array_equal(want.data, got.data)
        assert list(ours.get_feature_names_out()) == list(theirs.get_feature_names_out())


@pytest.mark.parametrize(
    "idf", [{}, {"smooth_idf": False}, {"use_idf": False}, {"sublinear_tf": False, "norm": "l1"}]
)
def test_the_idf_weights_match_scikit_learn(idf):
    """The idf is fitted from document frequencies counted a slice at a time (ngrams._fit_idf)."""
    docs = [f"Profit rose by {i % 7} and the loss fell {i % 13} times" for i in range(60)] + ["x"]
    for analyzer, ngram_range in (("word", (1, 2)), ("char_wb", (2, 4))):
        kw = dict(analyzer=analyzer, ngram_range=ngram_range, dtype=np.float32, **idf)
        a, b = TfidfVectorizer(**kw), NgramTfidfVectorizer(**kw)
        if kw.get("use_idf", True):
            assert_same(a, b, docs, docs[::-7])
        else:
            x, y = a.fit_transform(docs), b.fit_transform(docs)
            assert np.array_equal(x.indices, y.indices) and np.array_equal(x.data, y.data)
            assert not hasattr(a, "idf_") and not hasattr(b, "idf_")


def test_the_parameters_are_scikit_learns():
    """Same names, kinds and defaults as TfidfVectorizer: a scikit-learn that adds or changes one
    fails here (and, until this module follows, fits with scikit-learn's own code)."""
    import inspect

    def params(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert params(NgramTfidfVectorizer) == params(TfidfVectorizer)
    assert ngrams._same_parameters()


@pytest.mark.parametrize(
    "kw",
    [
        dict(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b"),
        dict(analyzer="char_wb", ngram_range=(2, 4), max_features=30),
        dict(use_idf=False, norm="l1"),
        dict(smooth_idf=False, binary=True, min_df=2, dtype=np.float32),
    ],
)
def test_the_fitted_state_is_a_stock_fit(kw):
    """`stock_` is what scikit-learn's own fit leaves: the same parameters (no fixed vocabulary:
    a clone refits and learns one), attributes, vocabulary, idf and transform."""
    from sklearn.base import clone

    docs = [f"Profit rose by {i % 7} and the loss fell {i % 13} times" for i in range(60)] + ["x y"]
    later = ["loss rose", "", "Profit of 12"]
    a = TfidfVectorizer(**kw).fit(docs)
    b = NgramTfidfVectorizer(**kw).fit(docs).stock_
    assert type(b) is TfidfVectorizer
    assert b.get_params() == a.get_params()
    assert sorted(vars(b)) == sorted(vars(a))
    assert b.fixed_vocabulary_ is a.fixed_vocabulary_ is False
    assert b.vocabulary_ == a.vocabulary_
    assert hasattr(b, "idf_") == hasattr(a, "idf_")
    if hasattr(a, "idf_"):
        assert b.idf_.dtype == a.idf_.dtype and np.array_equal(b.idf_, a.idf_)
    x, y = a.transform(later), b.transform(later)
    assert np.array_equal(x.indices, y.indices) and np.array_equal(x.data, y.data)
    other = ["gamma delta", "delta epsilon"]
    assert clone(b).fit(other).vocabulary_ == TfidfVectorizer(**kw).fit(other).vocabulary_


def test_a_scikit_learn_with_other_parameters_fits_its_own_way(monkeypatch):
    """If TfidfVectorizer's parameters are not the ones this module knows, scikit-learn counts."""
    docs = ["Profit rose", "loss fell by 5"]
    monkeypatch.setattr(ngrams, "_same_parameters", lambda: False)
    v = NgramTfidfVectorizer(ngram_range=(1, 2))
    got = v.fit_transform(docs)
    assert v not in ngrams._COUNTINGS  # the fast counting never ran
    want = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(docs)
    assert np.array_equal(got.toarray(), want.toarray())
    monkeypatch.undo()
    w = NgramTfidfVectorizer(ngram_range=(1, 2)).fit(docs)
    assert w in ngrams._COUNTINGS
