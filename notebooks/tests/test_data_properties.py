"""Property tests of the whole data stage: reading, cleaning and splitting, on generated CSV files.

Whatever the rows, the stage either refuses the file with a DataError (and writes nothing) or writes
a version whose splits partition the cleaned rows: every id once, the same sentence never in two
splits, every class in every split, and the same rows given again (in another order) give the same
version.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sentiment.csvio import DataError
from sentiment.stages import data
from sentiment.textkey import group_key

WORDS = ["Up", "up", "down", "Flat", "profit", "loss", "NA", 'a "quote"', "x, y", "two\nlines", "", "  "]
LABELS = ["positive", "negative", "neutral", ""]

# Texts from a few words (so that duplicates, case variants and conflicting labels happen) and a
# number (so that most files have enough distinct sentences to split).
texts = st.tuples(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3), st.integers(0, 40)).map(
    lambda t: " ".join(t[0]) + (f" {t[1]}" if t[1] else "")
)
records = st.one_of(
    st.just([]),  # an empty file, or enough rows to have a chance
    st.lists(st.tuples(texts, st.sampled_from(LABELS)), min_size=15, max_size=80),
)


def _write(path: Path, rows: list[tuple[str, str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([("Sentence", "Sentiment"), *rows])
    path.write_bytes(buf.getvalue().encode())


def _run(tmp: Path, name: str, rows: list[tuple[str, str]]):
    src = tmp / f"{name}.csv"
    _write(src, rows)
    return data.run({"data_root": str(tmp / name), "source": str(src), "data_version": "v1"})


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(records, st.randoms(use_true_random=False))
def test_a_version_partitions_the_cleaned_rows_or_nothing_is_written(tmp_path_factory, rows, rnd):
    tmp = tmp_path_factory.mktemp("prop")
    try:
        result = _run(tmp, "a", rows)
    except DataError as exc:
        event("refused")
        assert str(exc).startswith(str(tmp / "a.csv") + ":")
        root = tmp / "a"
        assert not root.exists() or not any(root.rglob("*"))
        return
    event("written")
    path = Path(result.outputs["data_path"])
    splits = {p.stem: pd.read_parquet(p) for p in path.glob("*.parquet")}
    assert set(splits) == {"train", "test", "holdout"}
    ids = [i for df in splits.values() for i in df["id"]]
    assert len(ids) == len(set(ids)) == result.metrics["rows_clean"]
    for df in splits.values():
        for i, text, label in df[["id", "text", "label"]].itertuples(index=False):
            source_text, source_label = rows[int(i)]
            assert text == source_text.strip() and text != ""
            # Only prefer_non_neutral (the default) changes labels: neutral to the group's other one.
            assert label == source_label.strip() or source_label.strip() == "neutral"
    where: dict[str, set[str]] = {}
    for name, df in splits.items():
        for text in df["text"]:
            where.setdefault(group_key(text), set()).add(name)
    assert all(len(s) == 1 for s in where.values()), "a sentence is in two splits"
    labels = set(splits["train"]["label"])
    assert all(set(df["label"]) == labels for df in splits.values()), "a class is missing from a split"

    # The same rows in another order: the same sentences in each split.
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    again = _run(tmp, "b", shuffled)
    for name, df in splits.items():
        other = pd.read_parquet(Path(again.outputs["data_path"]) / f"{name}.parquet")
        assert sorted(zip(other["text"], other["label"])) == sorted(zip(df["text"], df["label"]))
