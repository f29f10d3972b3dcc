"""TF-IDF vectorizer with fast, exact n-gram counting, for training on a million texts.

scikit-learn's `TfidfVectorizer` counts n-grams one at a time in Python: for character n-grams of
short texts that is about 400 dictionary updates per text (minutes per million texts), and the
column index of every entry sits in a Python list while it counts (8 bytes per entry, gigabytes).
`NgramTfidfVectorizer` is a `TfidfVectorizer` (same parameters, same vocabulary, same matrix,
bit for bit: tests/test_ngrams.py compares them) whose counting step is replaced:

- `char_wb`: a text's n-grams are the n-grams of its words, and words repeat. Each distinct word
  is cut into n-grams once; the text x n-gram counts are then (text x word counts) @ (word x
  n-gram counts), one sparse product in C.
- `word`: tokens get integer ids; n-grams of n tokens are numbered from the ids of their
  (n-1)-token prefix and their last token with numpy; only distinct n-grams become strings.

Everything after counting (min_df, max_features, sorting the vocabulary, idf, sublinear tf, norm)
is scikit-learn's own code. Configurations the fast path does not cover (custom preprocessor,
tokenizer or analyzer, accent stripping, file input) fall back to scikit-learn's counting.

Opt-in (`features.fast_vectorizer`, sentiment/features.py): it overrides private scikit-learn
methods (it imports no private module), so it runs only on the scikit-learn versions it was
tested with (`FAST_VECTORIZER_SKLEARN`), and a fitted one is never saved: `stock_features` moves
its vocabulary and idf into a stock `TfidfVectorizer` first.
"""

from __future__ import annotations

from itertools import compress
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted, validate_data

from .sparse import RowAppender, column_counts, keep_columns, scale_by_column, take_in_place

#: Texts counted at a time: bounds the temporary arrays (token ids, n-gram keys) to a few
#: hundred MB whatever the corpus size.
CHUNK = 100_000
#: Words whose char n-grams a fitted vectorizer remembers between `transform` calls (batch
#: inference sees the same words again and again). Cleared when full; never pickled.
WORD_CACHE_LIMIT = 200_000


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


class NgramTfidfVectorizer(TfidfVectorizer):
    """`TfidfVectorizer` with fast counting for the `word` and `char_wb` analyzers (see module)."""

    def _fast_path(self, docs: list[Any]) -> bool:
        return (
            self.input == "content"
            and self.preprocessor is None
            and self.tokenizer is None
            and self.strip_accents is None
            and self.analyzer in ("word", "char_wb")
            and all(type(d) is str for d in docs)
        )

    def _count_vocab(self, raw_documents: Any, fixed_vocab: bool) -> tuple[dict[str, int], Any]:
        docs = raw_documents if isinstance(raw_documents, list) else list(raw_documents)
        if not self._fast_path(docs):
            return super()._count_vocab(docs, fixed_vocab)
        self.build_analyzer()  # scikit-learn's parameter checks and warnings
        vocabulary: dict[str, int] = self.vocabulary_ if fixed_vocab else {}
        count = self._count_words if self.analyzer == "word" else self._count_char_wb
        rows = RowAppender(self.dtype)
        for start in range(0, len(docs), CHUNK):
            chunk = docs[start : start + CHUNK]
            if self.lowercase:
                chunk = [d.lower() for d in chunk]
            rows.append(count(chunk, vocabulary, fixed_vocab))
        if not fixed_vocab and not vocabulary:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        if not fixed_vocab:
            # scikit-learn renumbers the vocabulary in place next: the ids cached are stale.
            self.__dict__.pop("_ngram_word_cache", None)
        counts = rows.matrix(len(vocabulary))
        counts.sort_indices()
        return vocabulary, _align(counts)

    # The steps below are scikit-learn's, computed in place (sentiment/sparse.py) instead of
    # through copies of the whole matrix; they give the same vocabulary and the same arrays.

    def _sort_features(self, X: Any, vocabulary: dict[str, int]) -> Any:  # noqa: N803
        terms = list(vocabulary)
        old = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(terms))
        order = _sorted_order(terms)
        map_index = np.empty(len(terms), dtype=X.indices.dtype)
        map_index[old[order]] = np.arange(len(terms))
        for new_val, i in enumerate(order.tolist()):
            vocabulary[terms[i]] = new_val
        take_in_place(map_index, X.indices)
        return X

    def _limit_features(self, X: Any, vocabulary: dict[str, int], high=None, low=None, limit=None) -> Any:  # noqa: N803
        if high is None and low is None and limit is None:
            return X, set()
        dfs = column_counts(X.indices, X.shape[1])
        mask = np.ones(len(dfs), dtype=bool)
        if high is not None:
            mask &= dfs <= high
        if low is not None:
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

    def fit_transform(self, raw_documents: Any, y: Any = None) -> Any:
        self._check_params()
        self._tfidf = TfidfTransformer(
            norm=self.norm, use_idf=self.use_idf, smooth_idf=self.smooth_idf, sublinear_tf=self.sublinear_tf
        )
        X = CountVectorizer.fit_transform(self, raw_documents)  # noqa: N806
        _fit_idf(self._tfidf, X)
        return _tfidf_in_place(self._tfidf, X)

    def transform(self, raw_documents: Any) -> Any:
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        X = CountVectorizer.transform(self, raw_documents)  # noqa: N806
        return _tfidf_in_place(self._tfidf, X)

    def _count_words(self, docs: list[str], vocabulary: dict[str, int], fixed: bool) -> sp.csr_array:
        if fixed and (index := self._term_index(vocabulary)) is not None:
            return self._count_known_words(docs, index)
        tokenize = self.build_tokenizer()
        stop_words = self.get_stop_words()
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

    def _count_char_wb(self, docs: list[str], vocabulary: dict[str, int], fixed: bool) -> sp.csr_array:
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
        cache = self._word_cache(vocabulary)
        g_cols: list[np.ndarray] = []
        g_len = np.zeros(len(word_ids), dtype=np.int64)
        for i, w in enumerate(word_ids):
            cols = cache.get(w)
            if cols is None:
                grams = self._char_wb_ngrams(w)
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

    def _term_index(self, vocabulary: dict[str, int]) -> _TermIndex | None:
        """The fitted vocabulary in token-id space (see `_TermIndex`), built on the first
        `transform` and kept across calls; None when its terms cannot be split into tokens."""
        owner, index = self.__dict__.get("_ngram_term_index", (None, None))
        if owner is not vocabulary:
            spaceless = self.token_pattern in _SPACELESS_PATTERNS
            index = _TermIndex.build(vocabulary, self.ngram_range) if spaceless else None
            self.__dict__["_ngram_term_index"] = (vocabulary, index)
        return index

    def _count_known_words(self, docs: list[str], index: _TermIndex) -> sp.csr_array:
        """Word n-gram counts against a fixed vocabulary without making a string per n-gram:
        tokens become the ids of the vocabulary's tokens (-1 for the others), n-grams integer
        keys, looked up in the vocabulary's sorted keys. The same (text, column) pairs as the
        general path, so the same matrix."""
        tokenize = self.build_tokenizer()
        stop_words = self.get_stop_words()
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

    def _word_cache(self, vocabulary: dict[str, int]) -> dict[str, np.ndarray]:
        """Char n-gram columns per word for `vocabulary`: while fitting, for one fit (ids never
        change while it counts); once fitted, across transform calls."""
        owner, cache = self.__dict__.get("_ngram_word_cache", (None, None))
        if owner is not vocabulary or cache is None:
            cache = {}
            self.__dict__["_ngram_word_cache"] = (vocabulary, cache)
        return cache

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_ngram_word_cache", None)
        state.pop("_ngram_term_index", None)
        return state


#: Token patterns whose tokens never hold a space: a term of the vocabulary splits back into its
#: tokens at " " (scikit-learn joins them with one).
_SPACELESS_PATTERNS = frozenset({r"(?u)\b\w\w+\b", r"(?u)\b\w+\b"})


class _TermIndex:
    """A word n-gram vocabulary in token-id space: each distinct token of its terms gets an id;
    an n-gram of ids (a, b, c) is the key ((a * base) + b) * base + c. Per n, the sorted keys
    and the column of each."""

    def __init__(self, token_ids: dict[str, int], base: int, levels: dict[int, tuple[Any, Any]]):
        self.token_ids, self.base, self.levels = token_ids, base, levels

    @classmethod
    def build(cls, vocabulary: dict[str, int], ngram_range: tuple[int, int]) -> _TermIndex | None:
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


def _sorted_order(terms: list[str]) -> np.ndarray:
    """Indices of `terms` in sorted order (Python's: by code point). pyarrow sorts UTF-8 bytes,
    which is the same order, in C; strings UTF-8 cannot encode fall back to `sorted`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.sort_indices(pa.array(terms, type=pa.large_string())).to_numpy().astype(np.int64)
    except (pa.ArrowException, UnicodeEncodeError):
        return np.asarray(sorted(range(len(terms)), key=terms.__getitem__), dtype=np.int64)


def _fit_idf(tfidf: TfidfTransformer, X: Any) -> None:  # noqa: N803
    """`tfidf.fit(X)` with the document frequencies counted a slice at a time (scikit-learn's
    `np.bincount(X.indices)` first copies the indices to int64). scikit-learn fits on the first
    row, which sets the rest of its fitted state; idf_ is then its arithmetic on all the rows."""
    with np.errstate(divide="ignore", invalid="ignore"):  # absent columns, without smoothing
        tfidf.fit(X[:1])
    if not tfidf.use_idf:
        return
    dtype = X.dtype if X.dtype in (np.float64, np.float32) else np.float64
    df = column_counts(X.indices, X.shape[1]).astype(dtype, copy=False)
    df += float(tfidf.smooth_idf)
    n_samples = X.shape[0] + int(tfidf.smooth_idf)
    idf = np.full_like(df, fill_value=n_samples, dtype=dtype)
    idf /= df
    np.log(idf, out=idf)
    idf += 1.0
    tfidf.idf_ = idf


def _tfidf_in_place(tfidf: TfidfTransformer, X: Any) -> Any:  # noqa: N803
    """`tfidf.transform(X, copy=False)` without its temporary of one value per entry."""
    X = validate_data(tfidf, X, accept_sparse="csr", dtype=[np.float64, np.float32], copy=False, reset=False)  # noqa: N806
    if not sp.issparse(X):
        X = sp.csr_array(X, dtype=X.dtype)  # noqa: N806
    if tfidf.sublinear_tf:
        np.log(X.data, X.data)
        X.data += 1.0
    if hasattr(tfidf, "idf_"):
        scale_by_column(X.data, X.indices, tfidf.idf_)
    if tfidf.norm is not None:
        X = normalize(X, norm=tfidf.norm, copy=False)  # noqa: N806
    return _align(X)
