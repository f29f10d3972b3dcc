"""Cleaning raw labelled texts: empties, exact duplicates and conflicting labels.

Order matters and is fixed: (1) drop rows with an empty text, (2) drop rows with a missing label,
(3) drop exact duplicates (same text and label; the first occurrence stays), (4) resolve groups of
the same sentence (see `textkey.group_key`) that carry more than one label, by policy:

- `drop`: every row of a conflicting group is removed.
- `prefer_non_neutral`: when the group's labels are one non-neutral label plus `neutral`, all its
  rows take the non-neutral label (the sentence says something; annotators disagreed on strength).
  Groups with two different non-neutral labels (positive and negative) are dropped.
- `majority`: the most frequent label wins; a tie is dropped.

After relabelling, rows of a group that became identical (same text and label) are collapsed to one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from .textkey import group_key

if TYPE_CHECKING:
    import pandas as pd

CONFLICT_POLICIES = ("drop", "prefer_non_neutral", "majority")
NEUTRAL = "neutral"


@dataclass
class CleaningReport:
    rows_raw: int = 0
    empty_text: int = 0
    missing_label: int = 0
    duplicates_removed: int = 0
    conflict_groups: int = 0
    conflict_groups_dropped: int = 0
    conflict_rows_relabelled: int = 0
    conflict_rows_removed: int = 0
    rows_clean: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def resolve_labels(labels: list[str], policy: str) -> str | None:
    """The single label a conflicting group gets under `policy`, or None to drop the group."""
    distinct = set(labels)
    if len(distinct) == 1:
        return labels[0]
    if policy == "drop":
        return None
    if policy == "prefer_non_neutral":
        non_neutral = {label for label in distinct if label.strip().lower() != NEUTRAL}
        return non_neutral.pop() if len(non_neutral) == 1 else None
    if policy == "majority":
        (top, top_n), *rest = Counter(labels).most_common()
        return None if rest and rest[0][1] == top_n else top
    raise ValueError(f"unknown conflicts policy {policy!r}; valid: {', '.join(CONFLICT_POLICIES)}")


def clean(df: pd.DataFrame, policy: str) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean a frame with (at least) the columns `id`, `text`, `label`.

    Returns the cleaned rows (original order, plus a `group` column with the group key) and the
    counts of what was removed at each step.
    """
    if policy not in CONFLICT_POLICIES:
        raise ValueError(f"unknown conflicts policy {policy!r}; valid: {', '.join(CONFLICT_POLICIES)}")
    report = CleaningReport(rows_raw=len(df))
    df = df.copy()
    # Surrounding whitespace is never meaningful and would make "exact" duplicates differ.
    df["text"] = df["text"].fillna("").astype(str).str.strip()
    df["label"] = df["label"].fillna("").astype(str).str.strip()

    empty = df["text"] == ""
    report.empty_text = int(empty.sum())
    df = df[~empty]
    missing = df["label"] == ""
    report.missing_label = int(missing.sum())
    df = df[~missing]

    dupes = df.duplicated(subset=["text", "label"], keep="first")
    report.duplicates_removed = int(dupes.sum())
    df = df[~dupes].copy()

    df["group"] = [group_key(t) for t in df["text"]]
    labels_per_group = df.groupby("group", sort=False)["label"].agg(list)
    conflicting = labels_per_group[labels_per_group.map(lambda ls: len(set(ls)) > 1)]
    report.conflict_groups = len(conflicting)
    if len(conflicting):
        resolved = conflicting.map(lambda ls: resolve_labels(ls, policy))
        report.conflict_groups_dropped = int(resolved.isna().sum())
        new_label = df["group"].map(resolved)  # NaN outside conflicting groups
        in_conflict = df["group"].isin(conflicting.index)
        keep = ~in_conflict | new_label.notna()
        before = len(df)
        relabel = in_conflict & new_label.notna() & (new_label != df["label"])
        report.conflict_rows_relabelled = int(relabel.sum())
        df.loc[relabel, "label"] = new_label[relabel]
        df = df[keep]
        df = df[~df.duplicated(subset=["text", "label"], keep="first")]
        report.conflict_rows_removed = before - len(df)

    report.rows_clean = len(df)
    return df.reset_index(drop=True), report
