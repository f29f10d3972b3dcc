"""Reading CSV files with clear errors: which file, which column, which line."""

from __future__ import annotations

import codecs
import io
from pathlib import Path
from typing import TYPE_CHECKING

from .params import ParamError

if TYPE_CHECKING:
    import pandas as pd


class DataError(ValueError):
    """The input data cannot be used (unreadable, missing columns, nothing left after cleaning)."""


def read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataError(f"input file not found: {path}")
    if not path.is_file():
        raise DataError(f"input path is not a file: {path}")
    return path.read_bytes()


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode(data: bytes, encoding: str, path: Path) -> str:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ParamError(f"parameter 'encoding': unknown encoding {encoding!r}") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: cannot decode line {_line_of(data, exc.start)} (byte {exc.start}) as "
            f"{encoding}: {exc.reason}; set the 'encoding' parameter (e.g. latin-1, cp1252)"
        ) from None
    return text.removeprefix("\ufeff")  # a UTF-8 BOM would otherwise stick to the first header


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False  # decode() reports it


def read_csv(data: bytes, encoding: str, path: Path) -> pd.DataFrame:
    """Parse CSV bytes into string columns. Only empty fields are missing values: a sentence that
    reads "NA" or "None" stays text."""
    import pandas as pd

    def parse(utf8: bytes) -> pd.DataFrame:
        # The pyarrow engine is multi-threaded and much faster on large files.
        return pd.read_csv(
            io.BytesIO(utf8), engine="pyarrow", dtype=str, keep_default_na=False, na_values=[""]
        )

    df = None
    if _is_utf8(encoding):
        # UTF-8 input goes to pyarrow as it is (it checks the encoding and skips a BOM): decoding
        # to a Python str and back costs seconds and up to 5x the file's size in memory on big
        # files. Anything pyarrow rejects takes the path below, which names the bad line.
        try:
            df = parse(data)
        except Exception:  # noqa: BLE001 - reported precisely below
            df = None
    if df is None:
        utf8 = decode(data, encoding, path).encode("utf-8")
        try:
            df = parse(utf8)
        except (pd.errors.ParserError, ValueError) as exc:
            raise DataError(f"{path}: not a valid CSV file: {exc}") from None
    if df.columns.duplicated().any():
        dupes = sorted(set(df.columns[df.columns.duplicated()]))
        raise DataError(f"{path}: duplicate column names {dupes}")
    return df


def require_columns(df: pd.DataFrame, columns: dict[str, str], path: Path) -> None:
    """`columns` maps a parameter name to the column it names."""
    found = [str(c) for c in df.columns]
    for param, column in columns.items():
        if column not in df.columns:
            raise DataError(
                f"{path}: column {column!r} (parameter {param!r}) not found; "
                f"columns found: {', '.join(repr(c) for c in found) or 'none'}"
            )
