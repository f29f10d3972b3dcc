"""Versioned, immutable datasets under the data root.

Layout: `<data_root>/<data_name>/<data_version>/` holds `train.parquet`, `test.parquet`,
`holdout.parquet` (when asked for) and `manifest.json`. Split files have the columns `id` (string,
the 0-based data-row number in the source CSV), `text` and `label`.

A version is written under a temporary name next to its final place and renamed when complete, and
`manifest.json` is always the last file written, so a reader never sees half a version. Versions are
immutable: writing the same content again is a no-op; different content is an error unless
`overwrite` is set.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .csvio import DataError
from .paths import (
    PACKAGE_DIR,
    atomic_write_bytes,
    locked_dir,
    remove_debris,
    sha256_bytes,
    under,
    write_error,
)

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "manifest.json"
SPLIT_COLUMNS = ["id", "text", "label"]
FORMAT_VERSION = 1
_NO_DIR_RENAME = {errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EPERM}


class VersionConflictError(DataError):
    """An existing data version holds different content."""


def version_dir(data_root: Path, data_name: str, data_version: str) -> Path:
    return under(data_root, data_name, data_version)


def code_sha256() -> str:
    """Hash of the package's source files: the code version recorded in manifests."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def content_sha256(df: pd.DataFrame, chunk_rows: int = 100_000) -> str:
    """Hash of a split's rows (id, text, label), independent of the Parquet encoding: the sha256
    of one line per row, `json.dumps([id, text, label], ensure_ascii=False)` and a newline.

    The lines are built with the JSON string encoder json.dumps itself uses (same bytes, a few
    times faster than a json.dumps call per row) and hashed a chunk of rows at a time."""
    columns = [df[c].tolist() for c in SPLIT_COLUMNS]
    chunks = (
        list(zip(*(col[start : start + chunk_rows] for col in columns), strict=True))
        for start in range(0, len(df), chunk_rows)
    )
    return content_sha256_chunks(chunks)


def content_sha256_chunks(chunks: Iterable[list[tuple[Any, Any, Any]]]) -> str:
    """`content_sha256` of the rows (id, text, label) given in order, a chunk at a time: the spark
    engine streams a split from its executors through this, so both engines' hashes are one
    function's."""
    from json.encoder import encode_basestring

    digest = hashlib.sha256()
    for rows in chunks:
        try:
            lines = "".join(
                f"[{encode_basestring(i)}, {encode_basestring(t)}, {encode_basestring(lbl)}]\n"
                for i, t, lbl in rows
            )
        except TypeError:  # a value that is not a string: let json.dumps spell it
            lines = "".join(json.dumps(list(row), ensure_ascii=False) + "\n" for row in rows)
        digest.update(lines.encode("utf-8"))
    return digest.hexdigest()


def label_counts(df: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(df["label"].value_counts().items())}


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


@dataclass
class ExistingVersion:
    path: Path
    manifest: dict[str, Any]
    sha256: str


def read_manifest(path: Path) -> ExistingVersion:
    data = (path / MANIFEST).read_bytes()
    return ExistingVersion(path, json.loads(data), sha256_bytes(data))


def _identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """What makes two versions "the same content": source bytes, parameters and split rows. The
    source path is left out: the same file reached by another path (relative vs absolute, a moved
    checkout) gives the same version."""
    return {
        "source_sha256": manifest["source"]["sha256"],
        "params": {k: v for k, v in manifest["params"].items() if k != "source"},
        "splits": {k: v["sha256"] for k, v in manifest["splits"].items()},
    }


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df[SPLIT_COLUMNS], preserve_index=False).cast(
        pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.string())])
    )
    pq.write_table(table, path)


def _describe_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    a, b = _identity(old), _identity(new)
    parts = []
    if a["source_sha256"] != b["source_sha256"]:
        parts.append("the source file changed")
    changed = sorted(
        k for k in set(a["params"]) | set(b["params"]) if a["params"].get(k) != b["params"].get(k)
    )
    if changed:
        parts.append(
            "parameters differ: "
            + ", ".join(f"{k} {a['params'].get(k)!r} -> {b['params'].get(k)!r}" for k in changed)
        )
    if not parts and a["splits"] != b["splits"]:
        parts.append("the split rows differ (the splitting code changed)")
    return "; ".join(parts) or "content differs"


def write_version(
    target: Path,
    splits: dict[str, pd.DataFrame] | Callable[[Path], None],
    manifest: dict[str, Any],
    overwrite: bool,
) -> tuple[ExistingVersion, bool]:
    """Write a data version atomically. Returns the version and whether anything was written.
    `splits` maps split names to frames (Parquet files), or writes the splits into the directory
    it is given (the spark engine's Delta tables).

    Writers of one data name take turns (a lock on its directory), so a version is compared and
    written by one process at a time, and what a killed writer left is cleaned up first. A write
    that fails (disk full, read-only) is a DataError that says so; the versions already there are
    untouched."""
    try:
        with locked_dir(target.parent) as held:
            if held:
                _recover(target)
            return _write_locked(target, splits, manifest, overwrite)
    except OSError as exc:
        raise DataError(
            write_error(f"data version {target.parent.name}/{target.name}", target, exc)
            + "; the versions already there are untouched"
        ) from None


def _recover(target: Path) -> None:
    """Undo what a writer killed mid-write left beside `target`: an overwrite stopped between its
    two renames leaves the previous version as `.<version>.old-*` and no version (put it back);
    any `.<version>.tmp-*` is an unfinished write (remove it)."""
    olds = sorted(target.parent.glob(f".{target.name}.old-*"))
    if not target.exists():
        for old in olds:
            if (old / MANIFEST).exists():
                os.rename(old, target)
                print(
                    f"restored data version {target.parent.name}/{target.name} left aside by a killed writer"
                )
                break
    removed = remove_debris(target.parent, [f".{target.name}.tmp-*", f".{target.name}.old-*"])
    if removed:
        print(f"removed what a killed writer left: {', '.join(removed)}")


def _write_locked(
    target: Path,
    splits: dict[str, pd.DataFrame] | Callable[[Path], None],
    manifest: dict[str, Any],
    overwrite: bool,
) -> tuple[ExistingVersion, bool]:
    if (target / MANIFEST).exists():
        existing = read_manifest(target)
        if _identity(existing.manifest) == _identity(manifest):
            return existing, False
        if not overwrite:
            raise VersionConflictError(
                f"data version {target.parent.name}/{target.name} already exists at {target} with "
                f"different content ({_describe_difference(existing.manifest, manifest)}); "
                "versions are immutable: choose a new data_version or set overwrite: true"
            )
    elif target.exists() and any(target.iterdir()) and not overwrite:
        raise VersionConflictError(
            f"data version {target.parent.name}/{target.name}: {target} exists but has no "
            f"{MANIFEST} (an incomplete or foreign directory); remove it or set overwrite: true"
        )

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        if callable(splits):  # the spark engine writes its Delta tables into tmp itself
            splits(tmp)
        else:
            for name, df in splits.items():
                _write_parquet(df, tmp / f"{name}.parquet")
        data = manifest_bytes(manifest)
        atomic_write_bytes(tmp / MANIFEST, data)  # last: its presence marks a complete version
        _install(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExistingVersion(target, manifest, sha256_bytes(data)), True


def _install(tmp: Path, target: Path) -> None:
    """Move a finished temporary version into place, replacing an old one when overwriting."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
        os.rename(target, old)
    try:
        try:
            os.rename(tmp, target)
        except OSError as exc:
            # Some mounted object stores cannot rename directories: copy instead, manifest last,
            # so the version still only becomes visible (has a manifest) when it is complete.
            if exc.errno not in _NO_DIR_RENAME or target.exists():
                raise
            target.mkdir()
            for f in sorted(tmp.iterdir(), key=lambda p: p.name == MANIFEST):
                if f.is_dir():  # a Delta split (spark engine)
                    shutil.copytree(f, target / f.name)
                else:
                    shutil.copyfile(f, target / f.name)
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        if old is not None and not target.exists():
            os.rename(old, target)
        if (target / MANIFEST).exists() and old is None:
            raise VersionConflictError(
                f"data version {target.parent.name}/{target.name} was created concurrently at "
                f"{target}; run the stage again to compare contents"
            ) from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def code_version(git_commit: str) -> dict[str, str]:
    return {"package": f"sentiment {__version__}", "sha256": code_sha256(), "git_commit": git_commit}


def load_version(data_root: Path, data_name: str, data_version: str) -> ExistingVersion:
    path = version_dir(data_root, data_name, data_version)
    if not (path / MANIFEST).exists():
        base = data_root / data_name
        available = sorted(p.name for p in base.iterdir() if (p / MANIFEST).exists()) if base.is_dir() else []
        hint = f" (available: {', '.join(available)})" if available else ""
        raise DataError(
            f"data version {data_name}/{data_version} not found under {data_root}{hint}; "
            "run the data stage first"
        )
    return read_manifest(path)


#: What a reader collects of a Delta split (the spark engine's) onto one machine, unless told otherwise.
DEFAULT_MAX_SPLIT_ROWS = 5_000_000
DEFAULT_MAX_SPLIT_BYTES = 4 * 1024**3


class SplitTooLargeError(DataError):
    """A Delta split is larger than the reader may collect onto this machine."""


def load_split(
    version: ExistingVersion,
    split: str,
    max_rows: int | None = None,
    max_bytes: int | None = None,
) -> pd.DataFrame:
    """A split as a frame (id, text, label). A Delta split (written by the spark engine) is collected
    from its Parquet files, after checking its size against `max_rows` and `max_bytes` (None: the
    defaults above): a split too large for this machine is refused, naming its size, instead of
    running it out of memory."""
    import pandas as pd

    splits = version.manifest.get("splits", {})
    if split not in splits:
        raise DataError(
            f"split {split!r} is not part of data version {version.path.parent.name}/"
            f"{version.path.name}; available: {', '.join(sorted(splits))}"
        )
    info = splits[split]
    if info.get("format") == "delta":
        df = _read_delta_split(version, split, info, max_rows, max_bytes)
    else:
        df = pd.read_parquet(version.path / f"{split}.parquet")
    df["id"] = df["id"].astype(str)
    return df


def delta_files(table: Path) -> list[tuple[Path, int]]:
    """The Parquet files (and their sizes) of the current version of a Delta table, from its JSON
    commits. Enough for the tables the spark engine writes (one commit, no checkpoint); a table
    with a checkpoint is refused (read it with Spark)."""
    from urllib.parse import unquote

    log = table / "_delta_log"
    if not log.is_dir():
        raise DataError(f"{table} is not a Delta table (no _delta_log)")
    if (log / "_last_checkpoint").exists():
        raise DataError(
            f"{table}: the Delta table has a checkpoint, which this reader does not read; "
            "read the split with Spark (engine: spark)"
        )
    files: dict[str, int] = {}
    for commit in sorted(log.glob("*.json")):
        for line in commit.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "add" in action:
                files[action["add"]["path"]] = int(action["add"].get("size", 0))
            elif "remove" in action:
                files.pop(action["remove"]["path"], None)
    return [(table / unquote(p), size) for p, size in sorted(files.items())]


def _read_delta_split(
    version: ExistingVersion, split: str, info: dict[str, Any], max_rows: int | None, max_bytes: int | None
) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    max_rows = DEFAULT_MAX_SPLIT_ROWS if max_rows is None else max_rows
    max_bytes = DEFAULT_MAX_SPLIT_BYTES if max_bytes is None else max_bytes
    table = version.path / info.get("file", split)
    files = delta_files(table)
    rows = int(info.get("rows", 0))
    size = sum(s for _, s in files)
    name = f"{version.path.parent.name}/{version.path.name}"
    if rows > max_rows or size > max_bytes:
        which = (
            f"{rows} rows, above max_split_rows {max_rows}"
            if rows > max_rows
            else f"{size} bytes of Parquet ({size / 1024**3:.2f} GiB), above max_split_bytes {max_bytes}"
        )
        raise SplitTooLargeError(
            f"split {split!r} of data version {name} ({table}) is {which}: collecting it onto this "
            "machine could run it out of memory. Train on a smaller split (a larger test_size, or a "
            "sample of the source), or raise max_split_rows / max_split_bytes in the train stage "
            "if the driver has the memory"
        )
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.string())])
    parts = [pq.read_table(f, columns=SPLIT_COLUMNS).cast(schema) for f, _ in files]
    df = (pa.concat_tables(parts) if parts else schema.empty_table()).to_pandas()
    # Files come in no particular order: rows in the order of the Parquet splits (by source row).
    order = df["id"].astype("int64").argsort(kind="stable")
    return df.iloc[order].reset_index(drop=True)
