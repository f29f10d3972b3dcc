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
from dataclasses import dataclass

TRAIN = "train"


class SplitError(ValueError):
    """The data cannot be split as asked (e.g. a class too small to stratify)."""


@dataclass(frozen=True)
class _Group:
    key: str
    stratum: Hashable
    size: int


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
