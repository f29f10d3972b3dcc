"""The data stage's building blocks as they were before they were vectorised for a million rows
(git history: sentiment/cleaning.py, split.py, dataset.py). Kept verbatim as oracles: the fast
versions must give the same rows, counts, splits and hashes, or existing data versions would no
longer compare equal."""

# ruff: noqa
from __future__ import annotations

import json
import hashlib
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from sentiment.cleaning import CONFLICT_POLICIES, CleaningReport, resolve_labels
from sentiment.split import TRAIN, SplitError, _label, apportion
from sentiment.textkey import group_key

SPLIT_COLUMNS = ["id", "text", "label"]


def content_sha256(df):
    digest = hashlib.sha256()
    for row in df[SPLIT_COLUMNS].itertuples(index=False, name=None):
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


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


@dataclass(frozen=True)
class _Group:
    key: str
    stratum: Hashable
    size: int


def split_groups(
    strata: Sequence[Hashable],
    groups: Sequence[str],
    fractions: dict[str, float],
    seed: int,
) -> list[str]:
    """Assign every row to `train` or one of the splits named in `fractions`.

    `strata[i]` and `groups[i]` describe row i. `fractions` maps split names (not `train`) to their
    share of all rows, e.g. {"test": 0.2, "holdout": 0.1}.
    """
    import numpy as np

    if len(strata) != len(groups):
        raise ValueError("strata and groups must have the same length")
    if TRAIN in fractions:
        raise ValueError("train gets the rest; do not give it a fraction")
    total_fraction = sum(fractions.values())
    if any(f <= 0 for f in fractions.values()) or total_fraction >= 1:
        raise SplitError(
            "split fractions must be positive and add up to less than 1 (train gets the rest); "
            f"got {', '.join(f'{k}={v:g}' for k, v in fractions.items())}"
        )
    n = len(groups)
    if n == 0:
        raise SplitError("no rows to split")

    # One entry per group; its stratum is the first row's.
    first: dict[str, _Group] = {}
    for stratum, key in zip(strata, groups, strict=True):
        g = first.get(key)
        first[key] = _Group(key, stratum, 1) if g is None else _Group(key, g.stratum, g.size + 1)

    by_stratum: dict[Hashable, list[_Group]] = {}
    for g in first.values():
        by_stratum.setdefault(g.stratum, []).append(g)
    order = sorted(by_stratum, key=lambda s: (_label(s), repr(s)))
    names = list(fractions)
    needed = len(names) + 1
    for s in order:
        gs = by_stratum[s]
        if len(gs) < needed:
            rows = sum(g.size for g in gs)
            raise SplitError(
                f"class {_label(s)!r} has {rows} row(s) in {len(gs)} distinct text(s): too few to "
                f"stratify into {needed} splits (train, {', '.join(names)}); each needs at least "
                f"one. Add data, drop the class, or set stratify to null"
            )

    rows_per_stratum = [sum(g.size for g in by_stratum[s]) for s in order]
    targets: dict[str, list[int]] = {}
    for name in names:
        shares = apportion(round(fractions[name] * n), rows_per_stratum, fractions[name])
        targets[name] = [max(1, t) for t in shares]

    rng = np.random.default_rng(seed)
    assigned: dict[str, str] = {}
    for si, s in enumerate(order):
        gs = sorted(by_stratum[s], key=lambda g: g.key)
        counts = dict.fromkeys(names, 0)
        dealt = [gs[int(i)] for i in rng.permutation(len(gs))]
        for g in dealt:
            dest = TRAIN
            for name in names:
                target, count = targets[name][si], counts[name]
                if count < target and (count + g.size - target) <= (target - count):
                    dest = name
                    break
            if dest != TRAIN:
                counts[dest] += g.size
            assigned[g.key] = dest
        # Groups much bigger than a split's target are never taken above; every split still needs
        # one group of every stratum, so give an empty split the smallest group train holds.
        for name in names:
            if counts[name] == 0:
                in_train = [g for g in dealt if assigned[g.key] == TRAIN]
                if len(in_train) > 1:
                    smallest = min(in_train, key=lambda g: g.size)
                    assigned[smallest.key] = name
                    counts[name] += smallest.size
        if TRAIN not in {assigned[g.key] for g in gs} or 0 in counts.values():
            raise SplitError(
                f"class {_label(s)!r} has {rows_per_stratum[si]} row(s) in {len(gs)} distinct "
                f"text(s): too few for {', '.join(f'{k}={v:g}' for k, v in fractions.items())}; "
                "train or another split would get none"
            )
    return [assigned[key] for key in groups]
