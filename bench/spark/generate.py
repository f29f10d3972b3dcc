"""Generate B7's rows: N labelled texts drawn from the vocabulary of the financial-sentiment data.

Per label, the words (whitespace tokens) of that label's sentences and the sentence lengths in
words are counted; a row gets a label drawn with the data's class shares, a length drawn from that
label's lengths and that many words drawn from that label's word frequencies (numpy's PCG64 with a
fixed seed). The texts read like shuffled financial headlines: the model sees the vocabulary it was
trained on, in the proportions it was trained on, and rows are (almost all) distinct.

The output is a data version the inference stage reads as it is, for both engines:
`<root>/<name>/<version>/holdout.parquet` (columns id, text, label; row groups of 1M rows, written a
chunk at a time so memory stays bounded) and a `manifest.json` that lists the split. The same
source, N and seed always give the same rows.

    python bench/spark/generate.py --rows 1000000 --root /tmp/b7/data
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

SEED = 20261205
CHUNK = 1_000_000


def default_source() -> Path:
    rel = Path("financial-sentiment") / "data.csv"
    if "PIPECTL_SHARED_DATA" in os.environ:
        return Path(os.environ["PIPECTL_SHARED_DATA"]) / rel
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "data" / rel
        if candidate.exists():
            return candidate
    return here.parents[2].parent / "shared" / "data" / rel


def vocabulary(source: Path) -> dict[str, tuple[list[str], list[float], list[int], float]]:
    """Per label: words, their frequencies, the sentence lengths seen and the label's share."""
    words: dict[str, Counter[str]] = {}
    lengths: dict[str, list[int]] = {}
    with source.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            label, tokens = row["Sentiment"].strip(), row["Sentence"].split()
            if not label or not tokens:
                continue
            words.setdefault(label, Counter()).update(tokens)
            lengths.setdefault(label, []).append(len(tokens))
    total = sum(len(v) for v in lengths.values())
    out = {}
    for label in sorted(words):
        vocab = sorted(words[label])  # a fixed order: same seed, same rows
        counts = [words[label][w] for w in vocab]
        n = sum(counts)
        out[label] = (vocab, [c / n for c in counts], lengths[label], len(lengths[label]) / total)
    return out


def generate(rows: int, out_dir: Path, source: Path, seed: int = SEED) -> dict[str, int]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    vocab = vocabulary(source)
    labels = list(vocab)
    shares = np.array([vocab[lbl][3] for lbl in labels])
    rng = np.random.default_rng(seed)
    arrays = {
        lbl: (np.array(vocab[lbl][0], dtype=object), np.array(vocab[lbl][1]), np.array(vocab[lbl][2]))
        for lbl in labels
    }
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.string())])
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".holdout.parquet.tmp"
    counts: Counter[str] = Counter()
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            which = rng.choice(len(labels), size=n, p=shares)
            texts = np.empty(n, dtype=object)
            for k, lbl in enumerate(labels):
                idx = np.flatnonzero(which == k)
                words, p, lens = arrays[lbl]
                length = rng.choice(lens, size=len(idx))
                drawn = words[rng.choice(len(words), size=int(length.sum()), p=p)]
                ends = np.cumsum(length)
                starts = ends - length
                texts[idx] = [" ".join(drawn[a:b]) for a, b in zip(starts, ends, strict=True)]
                counts[lbl] += len(idx)
            table = pa.table(
                {
                    "id": pa.array([str(i) for i in range(start, start + n)], pa.string()),
                    "text": pa.array(texts.tolist(), pa.string()),
                    "label": pa.array([labels[k] for k in which], pa.string()),
                },
                schema=schema,
            )
            writer.write_table(table)
            print(f"  {start + n}/{rows} rows", file=sys.stderr)
    os.replace(tmp, out_dir / "holdout.parquet")
    manifest = {
        "format": 1,
        "generator": "bench/spark/generate.py",
        "seed": seed,
        "source": str(source),
        "splits": {"holdout": {"rows": rows, "labels": dict(sorted(counts.items()))}},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return dict(counts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--root", type=Path, required=True, help="data root; the version is <root>/b7/<rows>")
    ap.add_argument("--source", type=Path, default=default_source())
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    out = args.root / "b7" / str(args.rows)
    if (out / "manifest.json").exists():
        print(f"{out} exists", file=sys.stderr)
        return 0
    started = time.perf_counter()
    counts = generate(args.rows, out, args.source, args.seed)
    print(
        f"wrote {args.rows} rows to {out} in {time.perf_counter() - started:.1f}s: {counts}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
