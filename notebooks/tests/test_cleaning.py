"""Cleaning: empties, duplicates and the conflict policies."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentiment.cleaning import CONFLICT_POLICIES, clean, resolve_labels
from sentiment.textkey import group_key


def frame(rows: list[tuple[str | None, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [str(i) for i in range(len(rows))],
            "text": [r[0] for r in rows],
            "label": [r[1] for r in rows],
        }
    )


def test_group_key_ignores_case_spacing_and_unicode_width():
    assert group_key("  Profit  ROSE\tby 5% ") == group_key("profit rose by 5%")
    assert group_key("ＥＵＲ 5") == group_key("EUR 5")  # full-width letters (NFKC)
    assert group_key("profit rose") != group_key("profit rise")


def test_empty_texts_missing_labels_and_exact_duplicates():
    df, report = clean(
        frame(
            [
                ("Sales rose.", "positive"),
                ("Sales rose.", "positive"),  # exact duplicate
                ("   ", "neutral"),  # empty after stripping
                (None, "neutral"),  # missing text
                ("Sales fell.", None),  # missing label
                ("Sales fell.", " "),  # blank label
                (" Sales rose. ", "positive"),  # duplicate up to surrounding spaces
                ("Sales fell.", "negative"),
            ]
        ),
        "drop",
    )
    assert report.as_dict() == {
        "rows_raw": 8,
        "empty_text": 2,
        "missing_label": 2,
        "duplicates_removed": 2,
        "conflict_groups": 0,
        "conflict_groups_dropped": 0,
        "conflict_rows_relabelled": 0,
        "conflict_rows_removed": 0,
        "rows_clean": 2,
    }
    assert df["id"].tolist() == ["0", "7"]  # first occurrences survive, in source order


CONFLICTED = [
    ("Plant closes for a week.", "neutral"),
    ("Plant closes for a week.", "negative"),
    ("PLANT closes for a  week.", "neutral"),  # same sentence up to case and spacing
    ("Orders up and down.", "positive"),
    ("Orders up and down.", "negative"),
    ("Tie here.", "positive"),
    ("Tie here.", "neutral"),
    ("Majority wins.", "positive"),
    ("Majority wins!", "neutral"),  # different text: not in the group
    ("Clean row.", "neutral"),
]


def test_policy_drop_removes_every_conflicting_group():
    df, report = clean(frame(CONFLICTED), "drop")
    assert sorted(df["text"]) == ["Clean row.", "Majority wins!", "Majority wins."]
    assert report.conflict_groups == 3
    assert report.conflict_groups_dropped == 3
    assert report.conflict_rows_removed == 7


def test_policy_prefer_non_neutral():
    df, report = clean(frame(CONFLICTED), "prefer_non_neutral")
    labels = dict(zip(df["text"], df["label"]))
    # Neutral + negative -> negative for every row of the group (both spellings stay, same label).
    assert labels["Plant closes for a week."] == "negative"
    assert labels["PLANT closes for a  week."] == "negative"
    assert labels["Tie here."] == "positive"
    assert "Orders up and down." not in labels  # positive + negative: dropped
    assert report.conflict_groups == 3
    assert report.conflict_groups_dropped == 1
    assert report.conflict_rows_relabelled == 3  # two neutral plant rows, one neutral tie row
    assert (df.groupby(df["text"].map(group_key))["label"].nunique() == 1).all()


def test_policy_majority_drops_ties():
    df, report = clean(frame(CONFLICTED), "majority")
    labels = dict(zip(df["text"], df["label"]))
    assert labels["Plant closes for a week."] == "neutral"  # 2 neutral vs 1 negative
    assert "Tie here." not in labels
    assert "Orders up and down." not in labels
    assert report.conflict_groups_dropped == 2


def test_unknown_policy_lists_the_valid_ones():
    with pytest.raises(ValueError, match="drop, prefer_non_neutral, majority"):
        clean(frame([("a", "b")]), "newest")


@pytest.mark.parametrize(
    ("labels", "policy", "expected"),
    [
        (["neutral", "negative"], "prefer_non_neutral", "negative"),
        (["Neutral", "positive", "neutral"], "prefer_non_neutral", "positive"),
        (["positive", "negative"], "prefer_non_neutral", None),
        (["a", "a", "b"], "majority", "a"),
        (["a", "b"], "majority", None),
        (["a", "b"], "drop", None),
        (["a", "a"], "drop", "a"),
    ],
)
def test_resolve_labels(labels, policy, expected):
    assert resolve_labels(labels, policy) == expected


texts = st.sampled_from(["Up.", "up.", " Up. ", "Down.", "Flat.", "", "  ", "Other news."])
labels = st.sampled_from(["positive", "negative", "neutral", ""])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(st.none(), texts), st.one_of(st.none(), labels)), max_size=40),
    st.sampled_from(CONFLICT_POLICIES),
)
def test_cleaning_invariants(rows, policy):
    df, report = clean(frame(rows), policy)
    r = report
    assert r.rows_raw == len(rows)
    removed = r.empty_text + r.missing_label + r.duplicates_removed + r.conflict_rows_removed
    assert r.rows_clean == len(df) == r.rows_raw - removed
    assert not df.duplicated(subset=["text", "label"]).any()
    assert (df["text"].str.strip() != "").all() and (df["label"] != "").all()
    assert (df.groupby("group")["label"].nunique() <= 1).all()  # no conflict survives
    assert set(df["id"]) <= {str(i) for i in range(len(rows))}
