"""The in-place CSR helpers give SciPy's arrays (values, indices, entry order and index dtypes)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sentiment import sparse as S


def csr(rng, rows, cols, density):
    m = sp.random_array((rows, cols), density=density, format="csr", dtype=np.float32, rng=rng)
    return sp.csr_array((m.data.copy(), m.indices.astype(np.int32), m.indptr.astype(np.int32)), shape=m.shape)


def fresh(m):
    return sp.csr_array((m.data.copy(), m.indices.copy(), m.indptr.copy()), shape=m.shape)


def assert_same(want, got):
    assert type(want) is type(got) and want.shape == got.shape and want.dtype == got.dtype
    assert want.indices.dtype == got.indices.dtype and want.indptr.dtype == got.indptr.dtype
    assert np.array_equal(want.indptr, got.indptr)
    assert np.array_equal(want.indices, got.indices)
    assert np.array_equal(want.data, got.data)


@pytest.fixture(autouse=True)
def small_steps(monkeypatch):
    monkeypatch.setattr(S, "STEP", 7)  # many steps on small matrices


@settings(max_examples=120, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 30), st.lists(st.integers(1, 20), min_size=1, max_size=3))
def test_hstack_consuming_is_scipys_hstack(seed, rows, widths):
    rng = np.random.default_rng(seed)
    blocks = [csr(rng, rows, w, float(rng.uniform(0, 0.7))) for w in widths]
    want = sp.hstack(blocks).tocsr()
    assert_same(want, S.hstack_consuming([fresh(b) for b in blocks]))


def test_hstack_consuming_declines_what_it_does_not_cover():
    a = csr(np.random.default_rng(1), 3, 4, 0.5)
    assert S.hstack_consuming([a, sp.csc_array(a)]) is None
    assert S.hstack_consuming([a, a.astype(np.float64)]) is None
    assert S.hstack_consuming([a, csr(np.random.default_rng(2), 4, 4, 0.5)]) is None


@settings(max_examples=120, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 30), st.integers(1, 20), st.floats(0, 1))
def test_keep_columns_is_column_indexing(seed, rows, cols, keep):
    rng = np.random.default_rng(seed)
    m = csr(rng, rows, cols, float(rng.uniform(0, 0.7)))
    mask = rng.random(cols) < keep
    assert_same(m[:, np.flatnonzero(mask)], S.keep_columns(fresh(m), mask))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 9))
def test_row_appender_rebuilds_the_matrix(seed, rows, block):
    m = csr(np.random.default_rng(seed), rows, 12, 0.3)
    appender = S.RowAppender(np.float32)
    for start in range(0, rows, block):
        appender.append(m[start : start + block])
    assert_same(m, appender.matrix(12))


def test_in_place_slices_match_whole_array_operations():
    rng = np.random.default_rng(3)
    indices = rng.integers(0, 50, size=1000).astype(np.int32)
    mapping = rng.permutation(50).astype(np.int32)
    want = mapping.take(indices, mode="clip")
    S.take_in_place(mapping, indices)
    assert np.array_equal(indices, want)
    data = rng.random(1000).astype(np.float32)
    weights = rng.random(50).astype(np.float32)
    want = data * weights[indices]
    S.scale_by_column(data, indices, weights)
    assert np.array_equal(data, want)


@pytest.mark.skipif(sys.platform != "linux", reason="madvise release is Linux only")
def test_release_gives_memory_back():
    def resident() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1])

    a = np.ones(64 * 2**20 // 4, dtype=np.float32)  # 64 MiB, touched
    before = resident()
    S.release(a, 1000, len(a) - 1000)
    pages = before - resident()
    assert pages > 0.9 * 64 * 2**20 / 4096
    assert a[0] == 1 and a[-1] == 1  # partial pages at the ends are kept


def test_column_counts_is_bincount():
    rng = np.random.default_rng(5)
    indices = rng.integers(0, 40, size=1000).astype(np.int32)
    got = S.column_counts(indices, 57)
    assert np.array_equal(got, np.bincount(indices, minlength=57)) and got.dtype == np.intp
    assert np.array_equal(S.column_counts(indices[:0], 3), [0, 0, 0])
