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
    import numpy as np
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


def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes of a column's values (equal values, equal codes)."""
    import pandas as pd

    return pd.factorize(values)[0]


def duplicated(text: pd.Series, label: pd.Series) -> np.ndarray:
    """Rows whose (text, label) pair occurred in an earlier row: a boolean array.

    The same as `DataFrame.duplicated(subset=["text", "label"], keep="first")`, on one int64 key
    per row instead of pandas' per-column hashing of strings (seconds at a million rows)."""
    import pandas as pd

    labels = _codes(label)
    key = _codes(text).astype("int64") * (int(labels.max(initial=0)) + 1) + labels
    return pd.Index(key).duplicated(keep="first")


def clean(df: pd.DataFrame, policy: str) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean a frame with (at least) the columns `id`, `text`, `label`.

    Returns the cleaned rows (original order, plus a `group` column with the group key) and the
    counts of what was removed at each step.

    Everything that touches every row is vectorised (a million rows take seconds); only the rows
    of conflicting groups, usually a few, go through `resolve_labels` one group at a time.
    """
    import numpy as np

    if policy not in CONFLICT_POLICIES:
        raise ValueError(f"unknown conflicts policy {policy!r}; valid: {', '.join(CONFLICT_POLICIES)}")
    report = CleaningReport(rows_raw=len(df))
    # Surrounding whitespace is never meaningful and would make "exact" duplicates differ.
    # (assign makes a new frame; with copy-on-write the caller's frame is never modified.)
    df = df.assign(
        text=df["text"].fillna("").astype(str).str.strip(),
        label=df["label"].fillna("").astype(str).str.strip(),
    )

    empty = (df["text"] == "").to_numpy(dtype=bool)
    report.empty_text = int(empty.sum())
    missing = (df["label"] == "").to_numpy(dtype=bool) & ~empty
    report.missing_label = int(missing.sum())
    df = df[~(empty | missing)]

    dupes = duplicated(df["text"], df["label"])
    report.duplicates_removed = int(dupes.sum())
    df = df[~dupes]

    df = df.assign(group=[group_key(t) for t in df["text"]])
    groups = _codes(df["group"])
    labels = _codes(df["label"])
    # Distinct (group, label) pairs, then how many labels each group has.
    n_labels = int(labels.max(initial=0)) + 1
    pairs = np.unique(groups.astype("int64") * n_labels + labels)
    labels_in_group = np.bincount(pairs // n_labels, minlength=int(groups.max(initial=-1)) + 1)
    in_conflict = labels_in_group[groups] > 1 if len(df) else np.zeros(0, dtype=bool)
    report.conflict_groups = int((labels_in_group > 1).sum())
    if report.conflict_groups:
        sub = df[in_conflict]
        # Labels of each conflicting group in row order (sort=False keeps first-seen group order).
        resolved = {
            key: resolve_labels(list(ls), policy)
            for key, ls in sub.groupby("group", sort=False)["label"].agg(list).items()
        }
        report.conflict_groups_dropped = sum(v is None for v in resolved.values())
        new_label = [resolved[key] for key in sub["group"]]
        keep = np.array([v is not None for v in new_label], dtype=bool)
        relabel = [v is not None and v != old for v, old in zip(new_label, sub["label"], strict=True)]
        report.conflict_rows_relabelled = int(sum(relabel))
        sub = sub.assign(
            label=[old if v is None else v for v, old in zip(new_label, sub["label"], strict=True)]
        )
        sub = sub[keep]
        # Relabelled rows can now equal another row of their group (same text, so same group):
        # only rows of conflicting groups can have become duplicates.
        sub = sub[~duplicated(sub["text"], sub["label"])]
        before = len(df)
        df = df[~(in_conflict & ~df.index.isin(sub.index))]
        df.loc[sub.index, "label"] = sub["label"]
        report.conflict_rows_removed = before - len(df)

    report.rows_clean = len(df)
    return df.reset_index(drop=True), report
