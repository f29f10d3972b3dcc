"""Generate B5's scale dataset: N labelled short texts cut from the IMDB 50k reviews.

Every review is cleaned of its `<br />` tags and split into sentences (at `.`, `!`, `?` followed by
space, and at line breaks); sentences of fewer than 3 words are dropped. The pool of texts is every
sentence plus every pair of adjacent sentences of one review (a short passage), each labelled with
its review's sentiment (positive / negative). N texts are drawn from the pool without replacement
(numpy's PCG64 with a fixed seed), so rows are distinct passages, apart from the sentences that
really recur across reviews ("I loved this movie.", sometimes with both labels): the data stage
has real duplicates and label conflicts to clean, but not half a million of them. Beyond the pool
(about 1.15 million texts) the draw wraps around with a new permutation, and duplicates grow.

The output is a CSV with the header `Sentence,Sentiment` (the pipeline's default columns), written
atomically. The same source, N and seed always give the same bytes (`--print-sha256`).

    python bench/scale/generate.py --rows 1000000 --out /tmp/b5/imdb_1m.csv
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

SEED = 20260105
MIN_WORDS = 3
_BREAK = re.compile(r"\s*<br\s*/?>\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def default_source() -> Path:
    """$PIPECTL_SHARED_DATA/imdb-50k/..., else shared/data beside the repository or one of its parents."""
    rel = Path("imdb-50k") / "imdb_50k.csv.gz"
    if "PIPECTL_SHARED_DATA" in os.environ:
        return Path(os.environ["PIPECTL_SHARED_DATA"]) / rel
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "data" / rel
        if candidate.exists():
            return candidate
    return here.parents[2].parent / "shared" / "data" / rel


def sentences(review: str) -> list[str]:
    out = []
    for paragraph in _BREAK.split(review):
        for s in _SENTENCE_END.split(paragraph):
            s = " ".join(s.split())
            if len(s.split()) >= MIN_WORDS:
                out.append(s)
    return out


def pool(reviews: list[str], labels: list[str]) -> tuple[list[str], list[str]]:
    """Every sentence, then every adjacent pair, in review order, with the review's label."""
    texts: list[str] = []
    tags: list[str] = []
    pairs: list[str] = []
    pair_tags: list[str] = []
    for review, label in zip(reviews, labels, strict=True):
        ss = sentences(review)
        texts.extend(ss)
        tags.extend([label] * len(ss))
        pairs.extend(f"{a} {b}" for a, b in pairwise(ss))
        pair_tags.extend([label] * (len(ss) - 1))
    return texts + pairs, tags + pair_tags


def draw(size: int, rows: int, seed: int) -> list[int]:
    """`rows` indices into a pool of `size`: permutations of the pool, one after another."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[int] = []
    while len(out) < rows:
        out.extend(rng.permutation(size)[: rows - len(out)].tolist())
    return out


def generate(source: Path, rows: int, seed: int, out: Path) -> str:
    """Write the dataset to `out` (atomically) and return its sha256."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(
        source, convert_options=pacsv.ConvertOptions(include_columns=["review", "sentiment"])
    )
    texts, tags = pool(table.column("review").to_pylist(), table.column("sentiment").to_pylist())
    idx = draw(len(texts), rows, seed)
    result = pa.table(
        {"Sentence": pa.array([texts[i] for i in idx]), "Sentiment": pa.array([tags[i] for i in idx])}
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        # Quote every string: the pipeline's own files (and Excel) do, and it keeps the bytes stable.
        pacsv.write_csv(result, tmp, pacsv.WriteOptions(quoting_style="all_valid"))
        digest = hashlib.sha256()
        with open(tmp, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(
        f"pool {len(texts)} texts from {table.num_rows} reviews; wrote {rows} rows to {out}", file=sys.stderr
    )
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows to write (default 1000000)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"sampling seed (default {SEED})")
    ap.add_argument("--source", type=Path, default=None, help="imdb_50k.csv.gz (default: shared data)")
    ap.add_argument("--out", type=Path, required=True, help="CSV to write")
    ap.add_argument("--print-sha256", action="store_true", help="print the output's sha256 on stdout")
    args = ap.parse_args(argv)
    if args.rows < 1:
        ap.error("--rows must be at least 1")
    source = args.source or default_source()
    if not source.is_file():
        print(
            f"generate.py: source {source} not found; pass --source or set PIPECTL_SHARED_DATA "
            "to the directory holding imdb-50k/",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    digest = generate(source, args.rows, args.seed, args.out)
    print(f"generated in {time.perf_counter() - started:.1f}s, sha256 {digest}", file=sys.stderr)
    if args.print_sha256:
        print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
