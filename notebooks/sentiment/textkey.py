"""The group key of a text: what counts as "the same sentence" for conflicts and the split."""

from __future__ import annotations

import unicodedata


def group_key(text: str) -> str:
    """Unicode-normalised, case-folded, whitespace-collapsed text.

    Two rows whose keys are equal are the same sentence for conflict resolution and are always put
    in the same split, so a model never sees a test sentence (up to case and spacing) in training.
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
