"""Parsing Databricks source-format notebooks into cells."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"


class NotebookFormatError(ValueError):
    """The file is not a Databricks source-format Python notebook."""


@dataclass(frozen=True)
class Cell:
    number: int  # 1-based, counting every cell (markdown too), as the Databricks UI does
    first_line: int  # 1-based line of the file where the cell's text starts
    source: str
    kind: str  # "python", "markdown", "magic" (another %command) or "empty"
    magic: str = ""  # for kind "magic": the command, e.g. "%pip"


def _classify(lines: list[str]) -> tuple[str, str]:
    body = [line for line in lines if line.strip()]
    if not body:
        return "empty", ""
    if all(line.startswith(MAGIC) for line in body):
        command = body[0][len(MAGIC) :].strip().split(maxsplit=1)
        magic = command[0] if command else ""
        return ("markdown" if magic in ("%md", "%md-sandbox") else "magic"), magic
    return "python", ""


def parse_notebook(path: str | Path) -> list[Cell]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookFormatError(f"{p}: not UTF-8 text ({exc.reason})") from None
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise NotebookFormatError(
            f"{p}: not a Databricks source-format notebook (first line must be {HEADER!r})"
        )
    cells: list[Cell] = []
    start, chunk = 2, []  # line 1 is the header

    def flush() -> None:
        kind, magic = _classify(chunk)
        cells.append(Cell(len(cells) + 1, start, "\n".join(chunk) + "\n", kind, magic))

    for lineno, line in enumerate(lines[1:], start=2):
        if line.rstrip() == SEPARATOR:
            flush()
            start, chunk = lineno + 1, []
        else:
            chunk.append(line)
    flush()
    # Databricks does not show blank cells (e.g. after a trailing separator); neither do we count them.
    numbered = [c for c in cells if c.kind != "empty"]
    return [Cell(i, c.first_line, c.source, c.kind, c.magic) for i, c in enumerate(numbered, start=1)]
