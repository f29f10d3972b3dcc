"""The data stage's vectorised building blocks give exactly what the row-by-row originals gave
(tests/_reference.py): the same cleaned rows, counts, split assignment and content hashes."""

from __future__ import annotations

import io
import random

import _reference as ref
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentiment.cleaning import CONFLICT_POLICIES, clean, duplicated
from sentiment.csvio import read_csv
from sentiment.dataset import content_sha256
from sentiment.split import SplitError, split_groups

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Texts that collide in every way cleaning cares about: exact, up to surrounding space, up to case,
# spacing and Unicode width (same group key), and not at all.
TEXTS = ["Up.", "up.", " Up. ", "UP.", "Up .", "Ｕｐ.", "Down.", "Flat.", "", "  ", "Other news.", "ß", "SS"]
LABELS = ["positive", "negative", "neutral", "Neutral", "", " positive"]


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [str(i) for i in range(len(rows))],
            "text": [r[0] for r in rows],
            "label": [r[1] for r in rows],
        }
    )


def assert_same_clean(rows, policy):
    got, got_report = clean(frame(rows), policy)
    want, want_report = ref.clean(frame(rows), policy)
    assert got_report.as_dict() == want_report.as_dict()
    cols = ["id", "text", "label", "group"]
    assert got[cols].astype(object).values.tolist() == want[cols].astype(object).values.tolist()
    assert list(got.index) == list(range(len(got)))


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from(TEXTS)), st.one_of(st.none(), st.sampled_from(LABELS))
        ),
        max_size=60,
    ),
    st.sampled_from(CONFLICT_POLICIES),
)
def test_clean_matches_the_reference(rows, policy):
    assert_same_clean(rows, policy)


@pytest.mark.parametrize("policy", CONFLICT_POLICIES)
def test_clean_matches_the_reference_on_thousands_of_rows(policy):
    rnd = random.Random(policy)
    words = ["profit", "Profit", "loss", "rose", "fell", " ", "EUR", "５"]
    rows = [(" ".join(rnd.choices(words, k=rnd.randint(0, 3))), rnd.choice(LABELS)) for _ in range(5000)]
    assert_same_clean(rows, policy)


def test_clean_leaves_the_callers_frame_alone():
    df = frame([(" Up. ", "positive"), ("Up.", "positive")])
    before = df.copy()
    clean(df, "drop")
    pd.testing.assert_frame_equal(df, before)


def test_duplicated_is_pandas_duplicated():
    df = frame([("a", "x"), ("a", "y"), ("a", "x"), ("b", "x"), ("b", "x"), ("a", "y")])
    assert duplicated(df["text"], df["label"]).tolist() == df.duplicated(["text", "label"]).tolist()
    assert duplicated(df["text"][:0], df["label"][:0]).tolist() == []


@st.composite
def split_inputs(draw):
    n_groups = draw(st.integers(1, 60))
    strata = draw(st.sampled_from([["a", "b"], ["a", "b", "c"], [("a", 1), ("b", 2)], [""]]))
    rows = []
    for g in range(n_groups):
        size = draw(st.integers(1, 4))
        # Usually one stratum per group; sometimes a later row says otherwise (the first row wins).
        rows += [
            (draw(st.sampled_from(strata)) if i else strata[g % len(strata)], f"g{g}") for i in range(size)
        ]
    random.Random(draw(st.integers(0, 2**16))).shuffle(rows)
    fractions = draw(
        st.sampled_from([{"test": 0.2}, {"test": 0.2, "holdout": 0.1}, {"test": 0.3, "holdout": 0.3}])
    )
    return rows, fractions


def outcome(fn, rows, fractions, seed):
    try:
        return fn([r[0] for r in rows], [r[1] for r in rows], fractions, seed)
    except SplitError as exc:
        return f"SplitError: {exc}"


@SETTINGS
@given(split_inputs(), st.integers(0, 2**31 - 1))
def test_split_matches_the_reference(data, seed):
    rows, fractions = data
    assert outcome(split_groups, rows, fractions, seed) == outcome(ref.split_groups, rows, fractions, seed)


def test_split_matches_the_reference_on_many_groups():
    rnd = random.Random(5)
    rows = [(rnd.choice(["pos", "neg", "neu"]), f"text {rnd.randrange(30000)}") for _ in range(40000)]
    fractions = {"test": 0.2, "holdout": 0.1}
    assert split_groups(*zip(*rows), fractions, 42) == ref.split_groups(*zip(*rows), fractions, 42)


@SETTINGS
@given(
    st.lists(st.tuples(st.text(), st.text(), st.text()), max_size=30),
    st.integers(1, 7),
)
def test_content_hash_matches_the_reference(rows, chunk_rows):
    df = pd.DataFrame(rows, columns=["id", "text", "label"], dtype=object)
    assert content_sha256(df, chunk_rows=chunk_rows) == ref.content_sha256(df)


def test_content_hash_of_non_strings_matches_the_reference():
    df = pd.DataFrame({"id": [1, 2], "text": ["a", None], "label": [0.5, "x"]}, dtype=object)
    assert content_sha256(df) == ref.content_sha256(df)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "utf-8-sig"])
def test_utf8_csv_reads_as_the_decoded_text_does(tmp_path, bom, encoding):
    data = bom + 'Sentence,Sentiment\n"Ünïcode, ""quoted""",positive\n,neutral\nNA,negative\n'.encode()
    got = read_csv(data, encoding, tmp_path / "x.csv")
    want = pd.read_csv(
        io.BytesIO(data.decode("utf-8").removeprefix("\ufeff").encode()),
        engine="pyarrow",
        dtype=str,
        keep_default_na=False,
        na_values=[""],
    )
    pd.testing.assert_frame_equal(got, want)
    assert got.columns.tolist() == ["Sentence", "Sentiment"]
    assert got["Sentence"].tolist()[2] == "NA"
