"""TF-IDF with fast, exact n-gram counting, for training on a million texts.

scikit-learn's `TfidfVectorizer` counts n-grams one at a time in Python: for character n-grams of
short texts that is about 400 dictionary updates per text (minutes per million texts), and the
column index of every entry sits in a Python list while it counts (8 bytes per entry, gigabytes).
`NgramTfidfVectorizer` takes the same parameters and gives the same vocabulary, idf and matrices,
bit for bit (tests/test_ngrams.py compares them), counting differently:

- `char_wb`: a text's n-grams are the n-grams of its words, and words repeat. Each distinct word
  is cut into n-grams once (by scikit-learn's own analyzer); the text x n-gram counts are then
  (text x word counts) @ (word x n-gram counts), one sparse product in C.
- `word`: tokens get integer ids; n-grams of n tokens are numbered from the ids of their
  (n-1)-token prefix and their last token with numpy; only distinct n-grams become strings.

Pruning (min_df, max_df, max_features), sorting the vocabulary, idf, sublinear tf and the norm
follow scikit-learn's documented definitions, computed in place (sentiment/sparse.py).

Only public scikit-learn API: it is not a `TfidfVectorizer` subclass and overrides nothing. Its
fitted state is a stock `TfidfVectorizer` (`stock_`), made through public names only (a fixed
`vocabulary` and a fit on one empty text, then the documented `idf_` setter), which is what
`features.stock_features` saves. Configurations the fast path does not cover (custom
preprocessor, tokenizer or analyzer, accent stripping, file input, a fixed vocabulary, input other
than str, a parameter this module does not know) are fitted by that stock `TfidfVectorizer` itself.
"""

from __future__ import annotations

import warnings
import weakref
from functools import lru_cache
from itertools import compress
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from .sparse import RowAppender, column_counts, keep_columns, scale_by_column, take_in_place

#: Texts counted at a time: bounds the temporary arrays (token ids, n-gram keys) to a few
#: hundred MB whatever the corpus size.
CHUNK = 100_000
#: Words whose char n-grams a fitted vectorizer remembers between `transform` calls (batch
#: inference sees the same words again and again). Cleared when full; never pickled.
WORD_CACHE_LIMIT = 200_000


class NgramTfidfVectorizer(BaseEstimator):
    """`TfidfVectorizer`'s parameters, vocabulary, idf and matrices, counted fast (see module).

    Fitted attributes: `stock_`, the same fit as a stock `TfidfVectorizer`; `vocabulary_` and
    `idf_`, its own."""

    def __init__(  # the parameters of TfidfVectorizer, same names and defaults (a test checks)
        self,
        *,
        input="content",  # noqa: A002 - scikit-learn's name
        encoding="utf-8",
        decode_error="strict",
        strip_accents=None,
        lowercase=True,
        preprocessor=None,
        tokenizer=None,
        analyzer="word",
        stop_words=None,
        token_pattern=r"(?u)\b\w\w+\b",
        ngram_range=(1, 1),
        max_df=1.0,
        min_df=1,
        max_features=None,
        vocabulary=None,
        binary=False,
        dtype=np.float64,
        norm="l2",
        use_idf=True,
        smooth_idf=True,
        sublinear_tf=False,
    ):
        self.input = input
        self.encoding = encoding
        self.decode_error = decode_error
        self.strip_accents = strip_accents
        self.lowercase = lowercase
        self.preprocessor = preprocessor
        self.tokenizer = tokenizer
        self.analyzer = analyzer
        self.stop_words = stop_words
        self.token_pattern = token_pattern
        self.ngram_range = ngram_range
        self.max_df = max_df
        self.min_df = min_df
        self.max_features = max_features
        self.vocabulary = vocabulary
        self.binary = binary
        self.dtype = dtype
        self.norm = norm
        self.use_idf = use_idf
        self.smooth_idf = smooth_idf
        self.sublinear_tf = sublinear_tf

    def fit(self, raw_documents: Any, y: Any = None) -> NgramTfidfVectorizer:
        self.fit_transform(raw_documents)
        return self

    def fit_transform(self, raw_documents: Any, y: Any = None) -> Any:
        params = self.get_params()
        fast, docs = fast_documents(params, raw_documents)
        if not fast:  # scikit-learn fits (and raises its own errors)
            stock = TfidfVectorizer(**params)
            X = stock.fit_transform(docs)  # noqa: N806
            self.stock_, self.vocabulary_ = stock, stock.vocabulary_
            return X
        counting = counting_for(self, params, fresh=True)
        vocabulary: dict[str, int] = {}
        X = counting.count(docs, vocabulary, fixed=False)  # noqa: N806
        counting.forget()  # its caches hold the counting's column ids, renumbered next
        if not vocabulary:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        if self.binary:
            X.data.fill(1)
        # What CountVectorizer.fit_transform documents and does: prune by document frequency,
        # keep the max_features most frequent, number the terms in sorted order.
        n_doc = X.shape[0]
        max_df = self.max_df if isinstance(self.max_df, Integral) else self.max_df * n_doc
        min_df = self.min_df if isinstance(self.min_df, Integral) else self.min_df * n_doc
        if max_df < min_df:
            raise ValueError("max_df corresponds to < documents than min_df")
        if self.max_features is not None:
            sort_features(X, vocabulary)
        X = limit_features(X, vocabulary, max_df, min_df, self.max_features)  # noqa: N806
        if self.max_features is None:
            sort_features(X, vocabulary)
        idf = idf_weights(X, self.smooth_idf) if self.use_idf else None
        self.stock_ = stock_fitted(params, vocabulary, idf)
        self.vocabulary_ = self.stock_.vocabulary_
        return _align(tfidf_in_place(X, self.sublinear_tf, idf, self.norm))

    def transform(self, raw_documents: Any) -> Any:
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        params = self.get_params()
        fast, docs = fast_documents(params, raw_documents)
        stock = self.stock_
        if not fast:
            return stock.transform(docs)
        X = counting_for(self, params).count(docs, stock.vocabulary_, fixed=True)  # noqa: N806
        if stock.binary:
            X.data.fill(1)
        idf = stock.idf_ if stock.use_idf else None
        return _align(tfidf_in_place(X, stock.sublinear_tf, idf, stock.norm))

    @property
    def idf_(self) -> np.ndarray:
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        return self.stock_.idf_

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        return self.stock_.get_feature_names_out(input_features)


def stock_fitted(params: dict[str, Any], vocabulary: dict[str, int], idf: np.ndarray | None) -> Any:
    """A stock `TfidfVectorizer(**params)` fitted to `vocabulary` and `idf`, through public API:
    fitted with them as a fixed `vocabulary` on one empty text (nothing is learnt but the fitted
    state), the parameter set back to `params`' (None: `clone` and refits learn a vocabulary, as
    after a stock fit) and `idf_` set with its setter. Its transform is then the stock one's."""
    stock = TfidfVectorizer(**{**params, "vocabulary": vocabulary})
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # A term that str.lower() leaves with an upper-case letter is a term all the same.
        warnings.filterwarnings("ignore", message="Upper case characters found in vocabulary")
        stock.fit([""])
    stock.set_params(vocabulary=params["vocabulary"])
    stock.fixed_vocabulary_ = False  # as a fit that learnt its vocabulary leaves it
    if idf is not None:
        stock.idf_ = idf
    return stock


@lru_cache(maxsize=1)
def _same_parameters() -> bool:
    """Whether this scikit-learn's TfidfVectorizer has exactly our parameters: one it added is
    one the fast path would ignore, so then scikit-learn fits."""
    return set(TfidfVectorizer().get_params()) == set(NgramTfidfVectorizer().get_params())


def _flag(v: Any) -> bool:
    return isinstance(v, bool | np.bool_)


def _count(v: Any) -> bool:
    return isinstance(v, Integral) and not _flag(v) and v >= 1


def _df_bound(v: Any) -> bool:
    """A count of texts (>= 1) or a fraction of them (in [0, 1])."""
    return _count(v) or (isinstance(v, Real) and not isinstance(v, Integral) and 0 <= v <= 1)


def fast_config(p: dict[str, Any]) -> bool:
    """Whether the fast path counts for parameters `p`: valid ones (by scikit-learn's documented
    constraints) of the configurations it implements. Anything else goes to scikit-learn."""
    ngram = p["ngram_range"]
    return (
        _same_parameters()
        and p["input"] == "content"
        and isinstance(p["encoding"], str)
        and p["decode_error"] in ("strict", "ignore", "replace")
        and p["strip_accents"] is None
        and p["preprocessor"] is None
        and p["tokenizer"] is None
        and p["vocabulary"] is None
        and isinstance(p["analyzer"], str)
        and p["analyzer"] in ("word", "char_wb")
        and (p["analyzer"] != "word" or isinstance(p["token_pattern"], str))
        and (isinstance(p["token_pattern"], str) or p["token_pattern"] is None)
        and (p["stop_words"] is None or p["stop_words"] == "english" or isinstance(p["stop_words"], list))
        and isinstance(ngram, tuple)
        and len(ngram) == 2
        and all(_count(n) for n in ngram)
        and ngram[0] <= ngram[1]
        and _df_bound(p["max_df"])
        and _df_bound(p["min_df"])
        and (p["max_features"] is None or _count(p["max_features"]))
        and all(_flag(p[k]) for k in ("lowercase", "binary", "use_idf", "smooth_idf", "sublinear_tf"))
        and p["dtype"] in (np.float32, np.float64)
        and p["norm"] in ("l1", "l2", None)
    )


def fast_documents(params: dict[str, Any], raw_documents: Any) -> tuple[bool, Any]:
    """(whether the fast path counts them, the documents as a list when it looked at them)."""
    if isinstance(raw_documents, str) or not fast_config(params):
        return False, raw_documents
    docs = raw_documents if isinstance(raw_documents, list) else list(raw_documents)
    return all(type(d) is str for d in docs), docs


def _align(matrix: Any) -> Any:
    """`matrix` in the sparse interface scikit-learn is configured for (`sparse_interface`:
    sparray or spmatrix), as its own vectorizers return; public API only."""
    import sklearn

    if not sp.issparse(matrix):
        return matrix
    want_array = sklearn.get_config().get("sparse_interface", "spmatrix") == "sparray"
    if want_array == isinstance(matrix, sp.sparray):
        return matrix
    kind = "_array" if want_array else "_matrix"
    return getattr(sp, matrix.format + kind)(matrix)


def _csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """Counts of (row, col) pairs as a CSR matrix with canonical (summed, sorted) entries."""
    data = np.ones(len(rows), dtype=np.int32)
    return sp.csr_array(sp.coo_array((data, (rows, cols)), shape=shape))


#: Each fitted vectorizer's `Counting`, with its caches: outside the estimator, so that nothing
#: of it is pickled or cloned, and gone with the estimator.
_COUNTINGS: weakref.WeakKeyDictionary[Any, Counting] = weakref.WeakKeyDictionary()


def counting_for(owner: Any, params: dict[str, Any], fresh: bool = False) -> Counting:
    counting = _COUNTINGS.get(owner)
    if fresh or counting is None or counting.params != params:
        counting = _COUNTINGS[owner] = Counting(params)
    return counting


class Counting:
    """The n-gram counts of texts for one configuration (`fast_config`), with scikit-learn's
    tokenizer, stop words and char_wb analyzer (public `build_*` methods of a stock vectorizer),
    and the caches that make repeated `transform` calls fast."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.analyzer = params["analyzer"]
        self.ngram_range = params["ngram_range"]
        self.lowercase = params["lowercase"]
        self.token_pattern = params["token_pattern"]
        self.dtype = params["dtype"]
        if self.analyzer == "word":
            stock = TfidfVectorizer(**params)
            self.tokenize = stock.build_tokenizer()
            self.stop_words = stock.get_stop_words()
        else:
            # The n-grams of one word, already lower-cased when `lowercase` (texts are, first).
            self.word_ngrams = TfidfVectorizer(**{**params, "lowercase": False}).build_analyzer()
        self.word_cache: tuple[Any, dict[str, np.ndarray]] = (None, {})
        self.term_index: tuple[Any, TermIndex | None] = (None, None)

    def forget(self) -> None:
        self.word_cache, self.term_index = (None, {}), (None, None)

    def count(self, docs: list[str], vocabulary: dict[str, int], fixed: bool) -> sp.csr_array:
        """Counts of `docs` (int32 CSR, sorted indices). Fitting (`fixed` false) adds new terms
        to `vocabulary`, numbered in the order scikit-learn meets them."""
        count = self.count_words if self.analyzer == "word" else self.count_char_wb
        rows = RowAppender(self.dtype)
        for start in range(0, len(docs), CHUNK):
            chunk = docs[start : start + CHUNK]
            if self.lowercase:
                chunk = [d.lower() for d in chunk]
            rows.append(count(chunk, vocabulary, fixed))
        counts = rows.matrix(len(vocabulary))
        counts.sort_indices()
        return counts

    def count_words(self, docs: list[str], vocabulary: dict[str, int], fixed: bool) -> sp.csr_array:
        if fixed and (index := self.index_of(vocabulary)) is not None:
            return self.count_known_words(docs, index)
        tokenize = self.tokenize
        stop_words = self.stop_words
        min_n, max_n = self.ngram_range
        ids: dict[str, int] = {}
        flat: list[int] = []
        lengths = np.zeros(len(docs), dtype=np.int64)
        for i, doc in enumerate(docs):
            tokens = tokenize(doc)
            if stop_words is not None:
                tokens = [t for t in tokens if t not in stop_words]
            lengths[i] = len(tokens)
            flat.extend([ids.setdefault(t, len(ids)) for t in tokens])
        names = list(ids)
        tok = np.asarray(flat, dtype=np.int64)
        tok_list = flat
        doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        # Tokens from each position to the end of its text, the position included.
        remaining = np.cumsum(lengths)[doc_of] - np.arange(len(tok), dtype=np.int64)
        levels = []  # per n: (positions, distinct id at each position, terms, first position of each)
        gram = tok
        for n in range(1, max_n + 1):
            m = len(tok) - n + 1
            if m <= 0:
                break
            positions = np.flatnonzero(remaining[:m] >= n)
            # The n-gram at p is its (n-1)-gram at p plus the token at p + n - 1: number the
            # distinct pairs of ids (both below len(tok), so the key fits in 64 bits).
            key = tok[positions] if n == 1 else gram[positions] * max(len(ids), 1) + tok[positions + n - 1]
            _, first, here = np.unique(key, return_index=True, return_inverse=True)
            first = positions[first]  # positions ascend: where each distinct n-gram occurs first
            gram = np.full(m, -1, dtype=np.int64)
            gram[positions] = here
            if n < min_n:
                continue
            terms = [" ".join([names[t] for t in tok_list[p : p + n]]) for p in first.tolist()]
            levels.append((n, positions, here, terms, first))

        # Column ids. While fitting, new terms are numbered in the order scikit-learn meets them
        # (text by text; in a text, all unigrams, then all bigrams, ...): the order of the
        # entries of each row, and so the floating-point sums over them, match scikit-learn's.
        features = []
        new: list[tuple[np.ndarray, ...]] = []  # text, n, position, level, distinct id
        for level, (n, _, _, terms, first) in enumerate(levels):
            feature = np.fromiter((vocabulary.get(t, -1) for t in terms), dtype=np.int64, count=len(terms))
            if not fixed:
                u = np.flatnonzero(feature < 0)
                new.append((doc_of[first[u]], np.full(len(u), n), first[u], np.full(len(u), level), u))
            features.append(feature)
        if new:
            text, n_of, pos, level_of, u_of = (np.concatenate(c) for c in zip(*new, strict=True))
            for i in np.lexsort((pos, n_of, text)).tolist():
                level, u = int(level_of[i]), int(u_of[i])
                features[level][u] = vocabulary.setdefault(levels[level][3][u], len(vocabulary))

        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        for (_, positions, here, _, _), feature in zip(levels, features, strict=True):
            mapped = feature[here]
            keep = mapped >= 0
            rows.append(doc_of[positions][keep])
            cols.append(mapped[keep])
        return _pairs_csr(rows, cols, len(docs))

    def count_char_wb(self, docs: list[str], vocabulary: dict[str, int], fixed: bool) -> sp.csr_array:
        # Words as char_wb sees them: the text split at whitespace (its regex substitution of
        # whitespace runs does not change what str.split() returns).
        word_ids: dict[str, int] = {}
        flat: list[int] = []
        indptr = [0]
        for doc in docs:
            flat.extend([word_ids.setdefault(w, len(word_ids)) for w in doc.split()])
            indptr.append(len(flat))
        words = sp.csr_array(
            (
                np.ones(len(flat), dtype=np.int32),
                np.asarray(flat, dtype=np.int64),
                np.asarray(indptr, dtype=np.int64),
            ),
            shape=(len(docs), len(word_ids)),
        )
        cache = self.cache_of(vocabulary)
        word_ngrams = self.word_ngrams
        g_cols: list[np.ndarray] = []
        g_len = np.zeros(len(word_ids), dtype=np.int64)
        for i, w in enumerate(word_ids):
            cols = cache.get(w)
            if cols is None:
                grams = word_ngrams(w)
                if fixed:
                    cols = np.fromiter(
                        (c for c in map(vocabulary.get, grams) if c is not None), dtype=np.int64
                    )
                else:
                    cols = np.fromiter(
                        (vocabulary.setdefault(g, len(vocabulary)) for g in grams),
                        dtype=np.int64,
                        count=len(grams),
                    )
                if len(cache) >= WORD_CACHE_LIMIT:
                    cache.clear()
                cache[w] = cols
            g_cols.append(cols)
            g_len[i] = len(cols)
        width = len(vocabulary)
        g_rows = np.repeat(np.arange(len(word_ids), dtype=np.int64), g_len)
        g_all = np.concatenate(g_cols) if g_cols else np.zeros(0, dtype=np.int64)
        return sp.csr_array(words @ _csr(g_rows, g_all, (len(word_ids), width)))

    def index_of(self, vocabulary: dict[str, int]) -> TermIndex | None:
        """The fitted vocabulary in token-id space (see `TermIndex`), built on the first
        `transform` and kept across calls; None when its terms cannot be split into tokens."""
        owner, index = self.term_index
        if owner is not vocabulary:
            spaceless = self.token_pattern in _SPACELESS_PATTERNS
            index = TermIndex.build(vocabulary, self.ngram_range) if spaceless else None
            self.term_index = (vocabulary, index)
        return index

    def count_known_words(self, docs: list[str], index: TermIndex) -> sp.csr_array:
        """Word n-gram counts against a fixed vocabulary without making a string per n-gram:
        tokens become the ids of the vocabulary's tokens (-1 for the others), n-grams integer
        keys, looked up in the vocabulary's sorted keys. The same (text, column) pairs as the
        general path, so the same matrix."""
        tokenize = self.tokenize
        stop_words = self.stop_words
        get = index.token_ids.get
        flat: list[int] = []
        lengths = np.zeros(len(docs), dtype=np.int64)
        for i, doc in enumerate(docs):
            tokens = tokenize(doc)
            if stop_words is not None:
                tokens = [t for t in tokens if t not in stop_words]
            lengths[i] = len(tokens)
            flat.extend([get(t, -1) for t in tokens])
        tok = np.asarray(flat, dtype=np.int64)
        doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        remaining = np.cumsum(lengths)[doc_of] - np.arange(len(tok), dtype=np.int64)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        for n, (keys, columns) in index.levels.items():
            positions = np.flatnonzero(remaining[: max(len(tok) - n + 1, 0)] >= n)
            key = tok[positions]
            known = key >= 0
            for j in range(1, n):
                following = tok[positions + j]
                known &= following >= 0
                key = key * index.base + following
            positions, key = positions[known], key[known]
            at = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
            hit = keys[at] == key
            rows.append(doc_of[positions[hit]])
            cols.append(columns[at[hit]])
        return _pairs_csr(rows, cols, len(docs))

    def cache_of(self, vocabulary: dict[str, int]) -> dict[str, np.ndarray]:
        """Char n-gram columns per word for `vocabulary`: while fitting, for one fit (ids never
        change while it counts); once fitted, across transform calls."""
        owner, cache = self.word_cache
        if owner is not vocabulary:
            cache = {}
            self.word_cache = (vocabulary, cache)
        return cache


#: Token patterns whose tokens never hold a space: a term of the vocabulary splits back into its
#: tokens at " " (scikit-learn joins them with one).
_SPACELESS_PATTERNS = frozenset({r"(?u)\b\w\w+\b", r"(?u)\b\w+\b"})


class TermIndex:
    """A word n-gram vocabulary in token-id space: each distinct token of its terms gets an id;
    an n-gram of ids (a, b, c) is the key ((a * base) + b) * base + c. Per n, the sorted keys
    and the column of each."""

    def __init__(self, token_ids: dict[str, int], base: int, levels: dict[int, tuple[Any, Any]]):
        self.token_ids, self.base, self.levels = token_ids, base, levels

    @classmethod
    def build(cls, vocabulary: dict[str, int], ngram_range: tuple[int, int]) -> TermIndex | None:
        token_ids: dict[str, int] = {}
        grams: dict[int, tuple[list[list[int]], list[int]]] = {}
        for term, column in vocabulary.items():
            parts = term.split(" ")
            if not ngram_range[0] <= len(parts) <= ngram_range[1] or "" in parts:
                return None
            ids, columns = grams.setdefault(len(parts), ([], []))
            ids.append([token_ids.setdefault(t, len(token_ids)) for t in parts])
            columns.append(column)
        base = len(token_ids) + 1
        if base ** max(grams, default=1) >= 2**62:
            return None  # keys would not fit in 64 bits
        levels = {}
        for n in sorted(grams):
            ids = np.asarray(grams[n][0], dtype=np.int64).reshape(-1, n)
            key = ids[:, 0].copy()
            for j in range(1, n):
                key = key * base + ids[:, j]
            order = np.argsort(key)
            levels[n] = (key[order], np.asarray(grams[n][1], dtype=np.int64)[order])
        return cls(token_ids, base, levels)


def _pairs_csr(rows: list[np.ndarray], cols: list[np.ndarray], n_docs: int) -> sp.csr_array:
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    width = int(c.max()) + 1 if len(c) else 0
    return _csr(r, c, (n_docs, width))


# Fitting's steps after counting, as scikit-learn documents them (and as its own code computes
# them, so the arrays are the same), but in place (sentiment/sparse.py) instead of through copies
# of the whole matrix.


def sort_features(X: Any, vocabulary: dict[str, int]) -> None:  # noqa: N803
    """Renumber the terms in sorted order, in `vocabulary` and in X's column indices."""
    terms = list(vocabulary)
    old = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(terms))
    order = _sorted_order(terms)
    map_index = np.empty(len(terms), dtype=X.indices.dtype)
    map_index[old[order]] = np.arange(len(terms))
    for new_val, i in enumerate(order.tolist()):
        vocabulary[terms[i]] = new_val
    take_in_place(map_index, X.indices)


def limit_features(X: Any, vocabulary: dict[str, int], high: float, low: float, limit: int | None) -> Any:  # noqa: N803
    """Drop the terms in fewer than `low` or more than `high` texts, then all but the `limit`
    most frequent; X's columns and `vocabulary` follow. X is consumed."""
    dfs = column_counts(X.indices, X.shape[1])
    mask = np.ones(len(dfs), dtype=bool)
    mask &= dfs <= high
    mask &= dfs >= low
    if limit is not None and mask.sum() > limit:
        tfs = np.asarray(X.sum(axis=0)).ravel()
        mask_inds = (-tfs[mask]).argsort()[:limit]
        new_mask = np.zeros(len(dfs), dtype=bool)
        new_mask[np.where(mask)[0][mask_inds]] = True
        mask = new_mask
    new_indices = np.cumsum(mask) - 1  # maps old indices to new
    terms = list(vocabulary)
    old = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(terms))
    keep = mask[old]
    vocabulary.clear()  # in place and in the same order, as scikit-learn's deletions leave it
    vocabulary.update(zip(compress(terms, keep.tolist()), new_indices[old[keep]], strict=True))
    if not mask.any():
        raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
    return keep_columns(X, mask)


def _sorted_order(terms: list[str]) -> np.ndarray:
    """Indices of `terms` in sorted order (Python's: by code point). pyarrow sorts UTF-8 bytes,
    which is the same order, in C; strings UTF-8 cannot encode fall back to `sorted`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.sort_indices(pa.array(terms, type=pa.large_string())).to_numpy().astype(np.int64)
    except (pa.ArrowException, UnicodeEncodeError):
        return np.asarray(sorted(range(len(terms)), key=terms.__getitem__), dtype=np.int64)


def idf_weights(X: Any, smooth_idf: bool) -> np.ndarray:  # noqa: N803
    """TfidfTransformer's idf of a count matrix: log((n + s) / (df + s)) + 1, s = 1 with
    `smooth_idf` (else 0), in X's float dtype; document frequencies counted a slice at a time
    (`np.bincount(X.indices)` would first copy the indices to int64)."""
    dtype = X.dtype if X.dtype in (np.float64, np.float32) else np.float64
    df = column_counts(X.indices, X.shape[1]).astype(dtype, copy=False)
    df += float(smooth_idf)
    n_samples = X.shape[0] + int(smooth_idf)
    idf = np.full_like(df, fill_value=n_samples, dtype=dtype)
    with np.errstate(divide="ignore"):  # a term in no text, without smoothing: as scikit-learn
        idf /= df
    np.log(idf, out=idf)
    idf += 1.0
    return idf


def tfidf_in_place(X: Any, sublinear_tf: bool, idf: np.ndarray | None, norm: str | None) -> Any:  # noqa: N803
    """TfidfTransformer's transform of a float CSR count matrix (1 + log tf with `sublinear_tf`,
    times idf, then `normalize`), in X's own arrays."""
    if sublinear_tf:
        np.log(X.data, X.data)
        X.data += 1.0
    if idf is not None:
        scale_by_column(X.data, X.indices, idf)
    if norm is not None:
        X = normalize(X, norm=norm, copy=False)  # noqa: N806
    return X
