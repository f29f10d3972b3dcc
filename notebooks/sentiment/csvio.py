"""Reading CSV files with clear errors: which file, which column, which row.

Rows are named the way a person finds them: "data row N" counts the records after the header from 1
(the split files' `id` is N - 1), "line L" is the line of the file where that record starts (quoted
fields may span lines). What is accepted and what is refused, and why, is in docs/RELIABILITY.md
("Bad datasets").

The fast path is pandas' pyarrow engine. Python's csv module, which reports positions, is used to
read the header and, only when something is wrong, to find where.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .params import ParamError

if TYPE_CHECKING:
    import pandas as pd

#: The longest field accepted, in characters. A sentence is far shorter; a field this long is
#: almost always an unbalanced quote that swallowed the rest of the file.
MAX_FIELD_CHARS = 1 << 20

#: Labels that are how spreadsheets and pandas spell "no value". As a class they would be wrong and
#: dropping them silently would hide a broken export, so they are refused; an empty label is the
#: way to say "no label" (such rows are dropped and counted).
MISSING_LABELS = frozenset({"nan", "na", "n/a", "#n/a", "null", "none", "<na>", "nat"})

#: Delimiters a mis-exported file may use instead of commas.
_OTHER_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'"}

_UTF16_32_BOMS = {
    codecs.BOM_UTF32_LE: "utf-32",
    codecs.BOM_UTF32_BE: "utf-32",
    codecs.BOM_UTF16_LE: "utf-16",
    codecs.BOM_UTF16_BE: "utf-16",
}

csv.field_size_limit(sys.maxsize)  # the csv module's default (128 KiB) is below MAX_FIELD_CHARS


class DataError(ValueError):
    """The input data cannot be used (unreadable, missing columns, nothing left after cleaning)."""

    #: The user's to fix: pipectl_runner reports the message alone, once (docs/STAGES.md).
    pipectl_user_error = True


def read_bytes(path: Path) -> bytes:
    if not path.exists():
        hint = ""
        if str(path).startswith("/Volumes/"):
            hint = " (upload it with: pipectl setup --target TARGET --upload FILE=<path inside the Volume>)"
        raise DataError(f"input file not found: {path}{hint}")
    if not path.is_file():
        raise DataError(f"input path is not a file: {path}")
    return path.read_bytes()


def _line_of(data: bytes | str, offset: int) -> int:
    sep = b"\n" if isinstance(data, bytes) else "\n"
    return data.count(sep, 0, offset) + 1  # type: ignore[arg-type]


def _records(text: str) -> Iterator[tuple[int, int, list[str]]]:
    """(data row, line where the record starts, fields) for every non-blank record; the header is
    data row 0. Raises csv.Error for an unterminated quote, with the record's start line."""
    lines = io.StringIO(text, newline="")
    reader = csv.reader(lines, strict=True)
    row, start = 0, 1
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise csv.Error(f"line {start}: {exc}") from None
        if fields:
            yield row, start, fields
            row += 1
        # blank lines are skipped, as the fast path does


def _show(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def _column_name(header: list[str], index: int) -> str:
    return repr(header[index]) if index < len(header) else f"number {index + 1} (past the header)"


def check_not_binary(data: bytes, encoding: str, path: Path) -> None:
    if data[:2] == b"\x1f\x8b":
        raise DataError(f"{path}: the file is gzip-compressed, not a CSV file; decompress it first")
    if data[:4] == b"PK\x03\x04":
        raise DataError(f"{path}: the file is a zip archive (or an Excel workbook), not a CSV file")
    if data[:4] == b"PAR1":
        raise DataError(f"{path}: the file is Parquet, not a CSV file")
    is_utf16_32 = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    if not is_utf16_32:
        for bom, name in _UTF16_32_BOMS.items():
            if data.startswith(bom):
                raise DataError(
                    f"{path}: the file starts with a {name.upper()} byte order mark but the "
                    f"'encoding' parameter is {encoding!r}; set encoding: {name!r}"
                )
        nul = data.find(b"\x00")
        if nul >= 0:
            raise DataError(
                f"{path}: line {_line_of(data, nul)} contains a NUL byte (at offset {nul}): this is not a "
                "text CSV file (binary, or UTF-16 without a byte order mark: then set 'encoding')"
            )


def decode(data: bytes, encoding: str, path: Path) -> str:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ParamError(f"parameter 'encoding': unknown encoding {encoding!r}") from None
    check_not_binary(data, encoding, path)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: {_where_undecodable(data, encoding, exc)}: cannot decode byte "
            f"0x{data[exc.start]:02X} at offset {exc.start} as {encoding} ({exc.reason}); set the "
            "'encoding' parameter (e.g. latin-1, cp1252)"
        ) from None
    return text.removeprefix("\ufeff")  # a UTF-8 BOM would otherwise stick to the first header


def _where_undecodable(data: bytes, encoding: str, exc: UnicodeDecodeError) -> str:
    """ "data row N (line L), column 'C'" of the first undecodable byte, or its line."""
    fallback = f"line {_line_of(data, exc.start)}"
    try:
        text = data.decode(encoding, errors="surrogateescape").removeprefix("\ufeff")
        header: list[str] = []
        for row, line, fields in _records(text):
            if row == 0:
                header = fields
            for i, field in enumerate(fields):
                if any("\udc80" <= ch <= "\udcff" for ch in field):
                    if row == 0:
                        return f"line {line} (the header), column number {i + 1}"
                    return f"data row {row} (line {line}), column {_column_name(header, i)}"
    except (csv.Error, UnicodeError):
        pass
    return fallback


def _header(text: str, path: Path) -> list[str]:
    try:
        first = next(_records(text), None)
    except csv.Error as exc:
        raise DataError(f"{path}: the header is not valid CSV: {exc}") from None
    if first is None:
        raise DataError(f"{path}: the file is empty; expected a header row, then one row per text")
    header = first[2]
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            raise DataError(
                f"{path}: line {first[1]} (the header): column name {name!r} appears twice (columns "
                f"{seen[name] + 1} and {i + 1}); rename one so that every column has its own name"
            )
        seen[name] = i
    return header


def _parse_error(text: str, header: list[str], path: Path, exc: Exception) -> DataError:
    """Find the record pyarrow choked on with the csv module, which says where."""
    try:
        for row, line, fields in _records(text):
            if row == 0:
                continue
            if len(fields) != len(header):
                return DataError(
                    f"{path}: data row {row} (line {line}) has {len(fields)} field(s), the header "
                    f"{len(header)} ({', '.join(repr(h) for h in header)}); quote fields that contain "
                    f'commas, e.g. "a, b"; the record starts {_show(",".join(fields))}'
                )
            for i, field in enumerate(fields):
                if len(field) > MAX_FIELD_CHARS:
                    return _too_long(path, row, line, _column_name(header, i), len(field))
    except csv.Error as err:
        return DataError(
            f"{path}: {err}: a quoted field starts there and never ends (an unbalanced '\"'); "
            'double quotes inside a quoted field must be doubled ("")'
        )
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(f"{path}: not a valid CSV file: {first}")


def _too_long(path: Path, row: int, line: int | None, column: str, chars: int) -> DataError:
    where = f"data row {row}" + (f" (line {line})" if line else "")
    return DataError(
        f"{path}: {where}, column {column}: a field of {chars:,} characters; fields are limited to "
        f"{MAX_FIELD_CHARS:,} (a longer one usually means an unbalanced quote swallowed the rows "
        "after it)"
    )


def _line_of_row(text: str, wanted: int) -> int | None:
    try:
        for row, line, _ in _records(text):
            if row == wanted:
                return line
    except csv.Error:
        pass
    return None


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False  # decode() reports it


def _parse(utf8: bytes) -> pd.DataFrame:
    import pandas as pd

    # The pyarrow engine is multi-threaded and much faster on large files.
    return pd.read_csv(io.BytesIO(utf8), engine="pyarrow", dtype=str, keep_default_na=False, na_values=[""])


def _longest(df: pd.DataFrame) -> tuple[int, int, int]:
    """(column index, data row, characters) of the longest field."""
    best = (0, 0, -1)
    for i, column in enumerate(df.columns):
        lengths = df[column].str.len()
        if len(lengths) and lengths.max() > best[2]:
            best = (i, int(lengths.to_numpy().argmax()) + 1, int(lengths.max()))
    return best


#: How pandas renames the second and later of duplicate column names ("a", "a.1", ...).
_MANGLED = re.compile(r"(.*)\.\d+")


def _read_utf8_fast(data: bytes, encoding: str, path: Path) -> pd.DataFrame | None:
    """UTF-8 bytes straight to pyarrow, which checks the encoding and drops a BOM: decoding to a
    Python str and back, as the general path does, costs seconds and 2.5x the file's size in memory
    on a million rows. The result is only taken when nothing is wrong: None for anything pyarrow
    rejects or that needs a closer look (no data rows, a blank header, a name that may be a renamed
    duplicate, an over-long field); the general path then reads the file again and says what is
    wrong and where."""
    check_not_binary(data, encoding, path)
    try:
        df = _parse(data)
    except Exception:  # noqa: BLE001 - the general path reports it precisely
        return None
    names = {str(c) for c in df.columns}
    if len(df) == 0 or not any(n.strip() for n in names):
        return None  # a header only, or whitespace: the general path says what is missing
    if any((m := _MANGLED.fullmatch(n)) and m.group(1) in names for n in names):
        return None
    if _longest(df)[2] > MAX_FIELD_CHARS:
        return None
    return df


#: The `delimiter` parameter's values and the separators they name.
DELIMITERS = {",": ",", ";": ";", "|": "|", "tab": "\t"}


def _to_commas(text: str, delimiter: str, path: Path) -> str:
    """Rewrite text separated by `delimiter` as comma-separated, field for field: records keep their
    data rows and lines (quoted newlines stay), so every later message points at the right place."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for fields in reader:
            writer.writerow(fields)
    except csv.Error as exc:
        raise DataError(
            f"{path}: line {reader.line_num}: {exc}: a quoted field starts there and never ends (an "
            'unbalanced \'"\'); double quotes inside a quoted field must be doubled ("")'
        ) from None
    return out.getvalue()


def read_csv(data: bytes, encoding: str, path: Path, delimiter: str = ",") -> pd.DataFrame:
    """Parse CSV bytes into string columns. Only empty fields are missing values: a sentence that
    reads "NA" or "None" stays text. Quoted fields may hold the delimiter, quotes and newlines; a
    UTF-8 byte order mark is dropped. `delimiter` is a DELIMITERS key."""
    import pandas as pd

    if DELIMITERS[delimiter] != ",":
        data = _to_commas(decode(data, encoding, path), DELIMITERS[delimiter], path).encode("utf-8")
        encoding = "utf-8"

    if _is_utf8(encoding):
        df = _read_utf8_fast(data, encoding, path)
        if df is not None:
            return df
    text = decode(data, encoding, path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty; expected a header row, then one row per text")
    header = _header(text, path)
    try:
        df = _parse(text.encode("utf-8"))
    except (pd.errors.ParserError, ValueError) as exc:
        raise _parse_error(text, header, path, exc) from None
    column, row, chars = _longest(df)
    if chars > MAX_FIELD_CHARS:
        raise _too_long(path, row, _line_of_row(text, row), _column_name(header, column), chars)
    return df


def require_columns(df: pd.DataFrame, columns: dict[str, str], path: Path) -> None:
    """`columns` maps a parameter name to the column it names."""
    found = [str(c) for c in df.columns]
    for param, column in columns.items():
        if column not in df.columns:
            hint = ""
            if len(found) == 1:
                for sep, name in _OTHER_DELIMITERS.items():
                    if sep in found[0] and column in found[0].split(sep):
                        hint = (
                            f"; the header looks separated by {name}, not commas: set the 'delimiter' "
                            f"parameter to {next(k for k, v in DELIMITERS.items() if v == sep)!r}"
                        )
                        break
            raise DataError(
                f"{path}: column {column!r} (parameter {param!r}) not found; "
                f"columns found: {', '.join(_show(c) for c in found) or 'none'}{hint}"
            )


def check_labels(df: pd.DataFrame, column: str, path: Path) -> None:
    """Refuse labels that spell a missing value (see MISSING_LABELS), naming the rows."""
    labels = df[column].fillna("").astype(str).str.strip()
    bad = labels.str.lower().isin(MISSING_LABELS)
    if bad.any():
        rows = [int(i) + 1 for i in bad.to_numpy().nonzero()[0]]
        shown = ", ".join(f"{r} ({labels.iloc[r - 1]!r})" for r in rows[:5])
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        raise DataError(
            f"{path}: column {column!r}: {len(rows)} label(s) spell a missing value, in data row(s) "
            f"{shown}{more}; give those rows their label, or leave it empty to drop them"
        )


#: What the data stage does with labels that differ only by case (after surrounding spaces, which
#: are never meaningful, are stripped): refuse the file (`strict`), or merge them (`fold`).
LABEL_CASE_MODES = ("strict", "fold")


def _rows_of(values: pd.Series, value: str, limit: int = 3) -> str:
    rows = [int(i) + 1 for i in (values == value).to_numpy().nonzero()[0]]
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"data row{'s' if len(rows) > 1 else ''} {shown}{more}"


def label_case_folds(df: pd.DataFrame, column: str, path: Path, mode: str) -> dict[str, str]:
    """Labels that differ only by case (`Positive`, `positive `, `POSITIVE`) would become separate
    classes. `strict` refuses the file, naming every spelling and its data rows; `fold` returns
    what each other spelling becomes: the most frequent one of its group (on a tie, the first in
    the file). Surrounding spaces are stripped in any case (cleaning does it)."""
    labels = df[column].dropna().astype(str)
    stripped = labels.str.strip()
    order: dict[str, int] = {}
    groups: dict[str, list[str]] = {}
    for spelling in stripped.unique():  # in order of first appearance
        if spelling and spelling not in order:
            order[spelling] = len(order)
            groups.setdefault(spelling.casefold(), []).append(spelling)
    clashes = [spellings for spellings in groups.values() if len(spellings) > 1]
    if not clashes:
        return {}
    counts = stripped.value_counts()
    folds: dict[str, str] = {}
    described = []
    for spellings in clashes:
        keep = max(spellings, key=lambda s: (counts[s], -order[s]))
        folds.update({s: keep for s in spellings if s != keep})
        raw = [r for r in labels.unique() if r.strip() in spellings]
        described.append(
            ", ".join(f"{r!r} ({_rows_of(df[column], r)})" for r in raw) + f": most often {keep!r}"
        )
    if mode == "fold":
        return folds
    raise DataError(
        f"{path}: column {column!r}: labels that differ only by case would become separate classes: "
        + "; ".join(described)
        + '. Write each label one way in the file, or set label_case: "fold" in the data stage '
        "to merge each group into its most frequent spelling"
    )


def replacement_char_warning(df: pd.DataFrame, column: str, path: Path) -> tuple[int, str] | None:
    """(how many texts, a warning) when texts contain U+FFFD, the replacement character: the file
    was already damaged before it got here (something decoded it with the wrong encoding and
    replaced what it could not read). Nothing can restore those characters, so the rows are kept
    and the damage said."""
    texts = df[column].fillna("").astype(str)
    damaged = texts.str.contains("\ufffd", regex=False).to_numpy()
    if not damaged.any():
        return None
    rows = [int(i) + 1 for i in damaged.nonzero()[0]]
    return len(rows), replacement_message(path, column, len(rows), rows[:5], texts.iloc[rows[0] - 1])


def replacement_message(path: Path, column: str, count: int, first_rows: list[int], example: str) -> str:
    """The warning of `replacement_char_warning` (the spark engine counts the rows itself)."""
    shown = ", ".join(str(r) for r in first_rows[:5]) + (f" and {count - 5} more" if count > 5 else "")
    return (
        f"{path}: column {column!r}: {count} text(s) contain U+FFFD, the Unicode replacement "
        f"character (data row(s) {shown}), e.g. {_show(example)}: the file was "
        "damaged before pipectl read it (decoded upstream with the wrong encoding); the rows are "
        "kept, but re-export the file from its original source to recover those characters"
    )
