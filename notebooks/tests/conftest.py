"""Shared fixtures. Tests import `sentiment` and `pipectl_runner` from the notebooks directory,
exactly as the notebooks and the runner do."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1]
REPO = NOTEBOOKS.parent
SAMPLE_CSV = REPO / "data" / "sample" / "financial_news.csv"


def _shared_csv() -> Path:
    """The real dataset: $PIPECTL_SHARED_DATA, else shared/data beside the repository (or beside
    one of its parent folders, for git worktrees)."""
    rel = Path("financial-sentiment") / "data.csv"
    if "PIPECTL_SHARED_DATA" in os.environ:
        return Path(os.environ["PIPECTL_SHARED_DATA"]) / rel
    for parent in REPO.parents:
        candidate = parent / "shared" / "data" / rel
        if candidate.exists():
            return candidate
    return REPO.parent / "shared" / "data" / rel


SHARED_CSV = _shared_csv()

if str(NOTEBOOKS) not in sys.path:
    sys.path.insert(0, str(NOTEBOOKS))


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write rows (a list of lists, header first) as a UTF-8 CSV and return its path."""
    import csv

    def _write(rows: list[list[str]], name: str = "raw.csv", encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        with path.open("w", newline="", encoding=encoding) as fh:
            csv.writer(fh, lineterminator="\n").writerows(rows)
        return path

    return _write


@pytest.fixture(autouse=True)
def _cwd_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test in its own temporary directory: MLflow's SQLite stores put artifacts under
    ./mlruns by default, which would otherwise land in the checkout."""
    monkeypatch.chdir(tmp_path)
