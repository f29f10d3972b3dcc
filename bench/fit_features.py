#!/usr/bin/env python3
"""Fit time of the model's TF-IDF features alone, on N texts: median of several runs in one process.

What the train stage does before the classifier: `build_features(FEATURES).fit_transform(texts)`
then `stock_features(...)` (the fitted union as stock scikit-learn, what is saved), on texts already
normalised by `TextNormalizer` (not timed). FEATURES is B5's (bench/scale/specs/scale.cue):
word 1-2 and char_wb 2-5, max_features 100000, `fast_vectorizer: true` (`--stock` for false).
The texts are the first N rows of a CSV with a `Sentence` column, e.g. B5's data:

    python bench/scale/generate.py --rows 1000000 --out /tmp/b5/imdb_1m.csv
    PYTHONPATH=notebooks python bench/fit_features.py --csv /tmp/b5/imdb_1m.csv --runs 3

Per run it prints the wall and CPU time (the process's, all threads: on a shared machine the
steadier of the two) and a digest of the result (matrix arrays, dtypes, shape and the
saved vocabularies and idf), the same for every run and for any two implementations that give the
same model bit for bit; then the median with min-max. Needs the project's Python (sklearn, pyarrow).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

FEATURES = {
    "word_ngram": [1, 2],
    "char_ngram": [2, 5],
    "max_features": 100000,
    "fast_vectorizer": True,
}


def digest(matrix, union) -> str:
    import numpy as np

    h = hashlib.sha256()
    h.update(repr((type(matrix).__name__, matrix.shape, str(matrix.dtype))).encode())
    for a in (matrix.indptr, matrix.indices, matrix.data):
        h.update(str(a.dtype).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    for name, v in union.transformer_list:
        h.update(f"{name}:{type(v).__module__}.{type(v).__name__}".encode())
        h.update(json.dumps(sorted((t, int(i)) for t, i in v.vocabulary_.items())).encode())
        h.update(np.ascontiguousarray(v.idf_).tobytes())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, required=True, help="CSV with a Sentence column")
    ap.add_argument("--rows", type=int, default=1_000_000, help="first N rows (default 1000000)")
    ap.add_argument("--runs", type=int, default=3, help="runs (default 3)")
    ap.add_argument("--stock", action="store_true", help="fast_vectorizer: false (stock counting)")
    args = ap.parse_args(argv)

    import pyarrow.csv as pacsv

    from sentiment.features import TextNormalizer, build_features, stock_features

    table = pacsv.read_csv(args.csv, convert_options=pacsv.ConvertOptions(include_columns=["Sentence"]))
    texts = TextNormalizer().transform(table.column("Sentence").to_pylist()[: args.rows])
    del table
    features = {**FEATURES, "fast_vectorizer": not args.stock}
    print(f"{len(texts)} texts, features {json.dumps(features)}", file=sys.stderr)
    times, cpus = [], []
    for run in range(1, args.runs + 1):
        gc.collect()
        union = build_features(features)
        started, cpu = time.perf_counter(), time.process_time()
        matrix = union.fit_transform(texts)
        saved = stock_features(union)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        times.append(seconds)
        cpus.append(cpu)
        print(
            f"run {run}: {seconds:.1f} s wall, {cpu:.1f} s CPU, {matrix.shape[0]} x {matrix.shape[1]}, "
            f"{matrix.nnz} entries, digest {digest(matrix, saved)}",
            file=sys.stderr,
        )
        del matrix, saved, union
    print(
        f"fit_transform + stock_features: median {statistics.median(times):.1f} s wall "
        f"(min {min(times):.1f}, max {max(times):.1f}), {statistics.median(cpus):.1f} s CPU "
        f"(min {min(cpus):.1f}, max {max(cpus):.1f}), {len(times)} runs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
