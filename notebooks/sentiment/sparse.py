"""CSR matrix operations that work in place, for feature matrices of a gigabyte or more.

A million short texts give a character n-gram TF-IDF matrix of about 250 million entries (2 GB
as float32 values and int32 column indices). scikit-learn builds, prunes, sorts and stacks it with
out-of-place copies, so each step briefly needs twice that. These helpers give the same arrays
(tests compare them with scikit-learn's and SciPy's results) while holding one matrix plus a few
hundred MB: they build in arrays grown with `ndarray.resize` (on Linux realloc moves page mappings
rather than copying), work in place a slice at a time, and hand consumed memory back to the
system as they go.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
from typing import Any

import numpy as np
import scipy.sparse as sp

#: Entries (or rows) handled per step: bounds the temporary arrays.
STEP = 1 << 22
INT32_MAX = np.iinfo(np.int32).max


def _resize(a: np.ndarray, n: int) -> np.ndarray:
    """`a` with length n, in place when numpy can (it owns its buffer), else as a copy."""
    try:
        a.resize(n, refcheck=False)
        return a
    except ValueError:
        out = np.empty(n, dtype=a.dtype)
        out[: min(n, len(a))] = a[: min(n, len(a))]
        return out


class RowAppender:
    """Build a CSR matrix from row blocks, each appended as soon as it is computed, so the
    blocks are never all held beside the result. Values are cast to `dtype`; indices are int32
    while the entries fit, as scikit-learn's vectorizers make them."""

    def __init__(self, dtype: Any) -> None:
        self.data = np.empty(0, dtype=dtype)
        self.indices = np.empty(0, dtype=np.int32)
        self.indptr = [np.zeros(1, dtype=np.int64)]
        self.nnz = 0
        self.rows = 0

    def append(self, block: Any) -> None:
        block = sp.csr_array(block)
        block.sum_duplicates()
        n = self.nnz + block.nnz
        if n > INT32_MAX and self.indices.dtype != np.int64:
            self.indices = self.indices.astype(np.int64)
        self.data = _resize(self.data, n)
        self.indices = _resize(self.indices, n)
        self.data[self.nnz :] = block.data
        self.indices[self.nnz :] = block.indices
        self.indptr.append(block.indptr[1:].astype(np.int64) + self.nnz)
        self.nnz = n
        self.rows += block.shape[0]

    def matrix(self, width: int) -> sp.csr_array:
        index = np.int32 if max(self.nnz, width) <= INT32_MAX else np.int64
        indptr = np.concatenate(self.indptr).astype(index)
        indices = self.indices if self.indices.dtype == index else self.indices.astype(index)
        out = sp.csr_array((self.data, indices, indptr), shape=(self.rows, width))
        self.data = self.indices = None  # the matrix owns them now
        return out


def take_in_place(mapping: np.ndarray, indices: np.ndarray) -> None:
    """indices[:] = mapping.take(indices, mode="clip"), a slice at a time."""
    for start in range(0, len(indices), STEP):
        part = indices[start : start + STEP]
        part[:] = mapping.take(part, mode="clip")


def column_counts(indices: np.ndarray, width: int) -> np.ndarray:
    """np.bincount(indices, minlength=width) (entries per column of a CSR matrix: its document
    frequencies), a slice at a time: bincount first casts an int32 index array to int64, 2 GB
    at 250 million entries."""
    out = np.zeros(width, dtype=np.intp)
    for start in range(0, len(indices), STEP):
        out += np.bincount(indices[start : start + STEP], minlength=width)
    return out


def scale_by_column(data: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> None:
    """data *= weights[indices], a slice at a time (elementwise: the same values)."""
    for start in range(0, len(data), STEP):
        data[start : start + STEP] *= weights[indices[start : start + STEP]]


def keep_columns(X: Any, mask: np.ndarray) -> Any:  # noqa: N803 - scikit-learn's name
    """X[:, np.flatnonzero(mask)] (columns renumbered, entry order kept), computed in X's own
    arrays. X must be CSR; it is consumed."""
    if mask.all():
        return X
    new_column = np.cumsum(mask, dtype=np.int64) - 1
    data, indices, indptr = X.data, X.indices, X.indptr
    rows = X.shape[0]
    new_indptr = np.zeros(rows + 1, dtype=np.int64)
    write = 0
    row_step = max(1, STEP // max(1, X.nnz // max(1, rows)))
    for a in range(0, rows, row_step):
        b = min(rows, a + row_step)
        lo, hi = int(indptr[a]), int(indptr[b])
        keep = mask[indices[lo:hi]]
        n = int(keep.sum())
        # Writes never pass reads (write <= lo): compacting forward in place is safe.
        data[write : write + n] = data[lo:hi][keep]
        indices[write : write + n] = new_column[indices[lo:hi][keep]]
        kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        per_row = kept_before[indptr[a + 1 : b + 1] - lo] - kept_before[indptr[a:b] - lo]
        new_indptr[a + 1 : b + 1] = write + np.cumsum(per_row, dtype=np.int64)
        write += n
    width = int(mask.sum())
    index = np.int32 if max(write, width) <= INT32_MAX else np.int64
    # The tail (dropped entries) stays allocated until the matrix goes: cheaper than a copy.
    release(data, write, len(data))
    release(indices, write, len(indices))
    return type(X)(
        (data[:write], indices[:write].astype(index, copy=False), new_indptr.astype(index)),
        shape=(rows, width),
    )


def release(a: np.ndarray, start: int, stop: int) -> None:
    """Give the memory pages lying wholly inside a[start:stop] back to the operating system
    (Linux madvise MADV_DONTNEED: they read as zeros afterwards). For arrays about to be
    discarded whose head has been consumed: their resident size shrinks as the work goes on."""
    if _MADVISE is None or stop <= start or not a.flags.c_contiguous:
        return
    first = a.ctypes.data + start * a.itemsize
    last = a.ctypes.data + stop * a.itemsize
    lo = -(-first // _PAGE) * _PAGE
    hi = last // _PAGE * _PAGE
    if hi > lo:
        _MADVISE(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), _MADV_DONTNEED)


def _madvise() -> Any:
    if sys.platform != "linux":
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _madvise()
_MADV_DONTNEED = 4
_PAGE = mmap.PAGESIZE


def hstack_consuming(blocks: list[Any]) -> Any | None:
    """`scipy.sparse.hstack(blocks).tocsr()` for CSR blocks of one dtype, releasing each block's
    memory as it is copied (see `release`): the peak is about the result, not result + blocks.
    The blocks are consumed (their values are garbage afterwards). None when the blocks are not
    all CSR of one dtype and row count: then use SciPy's."""
    if not blocks or not all(sp.issparse(b) and b.format == "csr" for b in blocks):
        return None
    rows, dtype = blocks[0].shape[0], blocks[0].dtype
    if any(b.shape[0] != rows or b.dtype != dtype for b in blocks):
        return None
    widths = [b.shape[1] for b in blocks]
    nnz = sum(int(b.indptr[-1]) for b in blocks)
    width = sum(widths)
    index = np.int32 if max(nnz, width) <= INT32_MAX else np.int64
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
    ptrs = [b.indptr.astype(np.int64) for b in blocks]
    out_indptr = np.sum(ptrs, axis=0)
    # Where each block's part of a row starts in the output row: after the blocks before it.
    before = [np.zeros(rows, dtype=np.int64)]
    for p in ptrs[:-1]:
        before.append(before[-1] + np.diff(p))
    data = np.empty(nnz, dtype=dtype)
    indices = np.empty(nnz, dtype=index)
    row_step = max(1, STEP // max(1, nnz // max(1, rows)))
    for a in range(0, rows, row_step):
        b = min(rows, a + row_step)
        for i, blk in enumerate(blocks):
            lo, hi = int(ptrs[i][a]), int(ptrs[i][b])
            if hi == lo:
                continue
            counts = np.diff(ptrs[i][a : b + 1])
            row_of = np.repeat(np.arange(a, b), counts)
            dest = out_indptr[row_of] + before[i][row_of] + (np.arange(lo, hi) - ptrs[i][row_of])
            data[dest] = blk.data[lo:hi]
            indices[dest] = blk.indices[lo:hi] + offsets[i]
            release(blk.data, lo, hi)
            release(blk.indices, lo, hi)
    return type(blocks[0])((data, indices, out_indptr.astype(index)), shape=(rows, width))
