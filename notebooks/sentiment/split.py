"""Stratified, group-aware splitting.

Rows are grouped by a key (the normalised text); a group is never divided between splits, so a
sentence that appears twice cannot leak its label from train into test. Groups are stratified by the
stratum of their first row (usually the label). Split sizes are fractions of all rows; train gets the
rest. The result depends only on the set of (group, stratum, size) and the seed, not on row order.

Per split, the row target of each stratum is apportioned (largest remainder) so the targets add up to
round(fraction * rows) and each stays within one row of fraction * stratum_rows; each stratum gets at
least one group in every split. Groups are then dealt in a seeded random order: a group joins a split
while that brings the split's count closer to its target, otherwise it goes to train. With groups of
one row the per-stratum counts hit their targets exactly; larger groups can over- or undershoot by
less than the group's size.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

TRAIN = "train"


class SplitError(ValueError):
    """The data cannot be split as asked (e.g. a class too small to stratify)."""


def _label(stratum: Hashable) -> str:
    if isinstance(stratum, tuple):
        return "|".join(str(s) for s in stratum)
    return str(stratum)


def apportion(total: int, weights: Sequence[int], fraction: float) -> list[int]:
    """Integer shares of `total` proportional to fraction * weight, by largest remainder."""
    quotas = [fraction * w for w in weights]
    shares = [math.floor(q) for q in quotas]
    remainders = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in remainders[: max(0, total - sum(shares))]:
        shares[i] += 1
    return shares


def split_groups(
    strata: Sequence[Hashable],
    groups: Sequence[str],
    fractions: dict[str, float],
    seed: int,
) -> list[str]:
    """Assign every row to `train` or one of the splits named in `fractions`.

    `strata[i]` and `groups[i]` describe row i. `fractions` maps split names (not `train`) to their
    share of all rows, e.g. {"test": 0.2, "holdout": 0.1}.

    Groups are handled as integer codes (numpy), so a million rows take seconds; only the deal
    itself is a loop over groups.
    """
    import numpy as np
    import pandas as pd

    if len(strata) != len(groups):
        raise ValueError("strata and groups must have the same length")
    # One entry per group (codes in order of first appearance); its stratum is the first row's.
    group_of_row, keys = pd.factorize(pd.Series(groups, dtype=object), use_na_sentinel=False)
    keys = keys.tolist()
    first_row = np.unique(group_of_row, return_index=True)[1]
    sizes = np.bincount(group_of_row).tolist() if len(groups) else []
    strata_list = list(strata)
    group_strata = [strata_list[i] for i in first_row.tolist()]
    dest_of_group = split_group_table(keys, group_strata, sizes, fractions, seed)
    return np.asarray(dest_of_group, dtype=object)[group_of_row].tolist()


def split_group_table(
    keys: Sequence[str],
    strata: Sequence[Hashable],
    sizes: Sequence[int],
    fractions: dict[str, float],
    seed: int,
) -> list[str]:
    """The split of every group, from one entry per group: its key, its stratum (that of its first
    row) and its size in rows. `split_groups` is this applied to the groups of its rows.

    The result does not depend on the order of the entries: groups are ordered by key within a
    stratum (`split_strata`) and strata by name before the seeded deal."""
    import numpy as np

    if not (len(keys) == len(strata) == len(sizes)):
        raise ValueError("keys, strata and sizes must have the same length")
    members: dict[Hashable, list[int]] = {}
    for g, s in enumerate(strata):
        members.setdefault(s, []).append(g)
    for gs in members.values():
        gs.sort(key=keys.__getitem__)
    dest = split_strata(
        {s: np.asarray([sizes[g] for g in gs], dtype=np.int64) for s, gs in members.items()}, fractions, seed
    )
    out = [TRAIN] * len(keys)
    names = [TRAIN, *fractions]
    for s, gs in members.items():
        for g, d in zip(gs, dest[s].tolist(), strict=True):
            out[g] = names[d]
    return out


def split_strata(
    sizes_by_stratum: dict[Hashable, Any], fractions: dict[str, float], seed: int
) -> dict[Hashable, Any]:
    """The deal itself. `sizes_by_stratum` maps each stratum to the sizes (rows) of its groups in
    the order of their keys (code point order: Python's `sorted`, and Spark's order of strings).
    Returns, per stratum, an int8 array in the same order: 0 for train, i + 1 for the i-th split of
    `fractions`. Only sizes reach it, not keys: the spark engine sends the driver one number per
    group."""
    import numpy as np

    if TRAIN in fractions:
        raise ValueError("train gets the rest; do not give it a fraction")
    total_fraction = sum(fractions.values())
    if any(f <= 0 for f in fractions.values()) or total_fraction >= 1:
        raise SplitError(
            "split fractions must be positive and add up to less than 1 (train gets the rest); "
            f"got {', '.join(f'{k}={v:g}' for k, v in fractions.items())}"
        )
    sizes_of = {s: np.asarray(v, dtype=np.int64) for s, v in sizes_by_stratum.items() if len(v)}
    n = int(sum(int(v.sum()) for v in sizes_of.values()))
    if n == 0:
        raise SplitError("no rows to split")
    order = sorted(sizes_of, key=lambda s: (_label(s), repr(s)))
    names = list(fractions)
    needed = len(names) + 1
    for s in order:
        if len(sizes_of[s]) < needed:
            raise SplitError(
                f"class {_label(s)!r} has {int(sizes_of[s].sum())} row(s) in {len(sizes_of[s])} distinct "
                f"text(s): too few to stratify into {needed} splits (train, {', '.join(names)}); each "
                f"needs at least one. Add data, drop the class, or set stratify to null"
            )

    rows_per_stratum = [int(sizes_of[s].sum()) for s in order]
    targets: dict[str, list[int]] = {}
    for name in names:
        shares = apportion(round(fractions[name] * n), rows_per_stratum, fractions[name])
        targets[name] = [max(1, t) for t in shares]

    rng = np.random.default_rng(seed)
    out: dict[Hashable, Any] = {}
    for si, s in enumerate(order):
        sizes = sizes_of[s].tolist()
        dest_of_group = [0] * len(sizes)  # 0: train, i + 1: names[i]
        counts = [0] * len(names)
        wanted = [targets[name][si] for name in names]
        dealt = rng.permutation(len(sizes)).tolist()
        for g in dealt:
            size = sizes[g]
            dest = 0
            for j, target in enumerate(wanted):
                count = counts[j]
                if count < target and (count + size - target) <= (target - count):
                    dest = j + 1
                    counts[j] += size
                    break
            dest_of_group[g] = dest
        # Groups much bigger than a split's target are never taken above; every split still needs
        # one group of every stratum, so give an empty split the smallest group train holds.
        for j in range(len(names)):
            if counts[j] == 0:
                in_train = [g for g in dealt if dest_of_group[g] == 0]
                if len(in_train) > 1:
                    smallest = min(in_train, key=sizes.__getitem__)
                    dest_of_group[smallest] = j + 1
                    counts[j] += sizes[smallest]
        if 0 not in dest_of_group or 0 in counts:
            raise SplitError(
                f"class {_label(s)!r} has {rows_per_stratum[si]} row(s) in {len(sizes)} distinct "
                f"text(s): too few for {', '.join(f'{k}={v:g}' for k, v in fractions.items())}; "
                "train or another split would get none"
            )
        out[s] = np.asarray(dest_of_group, dtype=np.int8)
    return out
