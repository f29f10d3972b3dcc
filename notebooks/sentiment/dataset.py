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
    from json.encoder import encode_basestring

    digest = hashlib.sha256()
    columns = [df[c].tolist() for c in SPLIT_COLUMNS]
    for start in range(0, len(df), chunk_rows):
        rows = list(zip(*(col[start : start + chunk_rows] for col in columns), strict=True))
        try:
            lines = "".join(
                f"[{encode_basestring(i)}, {encode_basestring(t)}, {encode_basestring(lbl)}]\n"
                for i, t, lbl in rows
            )
        except TypeError:  # a value that is not a string: let json.dumps spell it
            lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
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
    splits: dict[str, pd.DataFrame],
    manifest: dict[str, Any],
    overwrite: bool,
) -> tuple[ExistingVersion, bool]:
    """Write a data version atomically. Returns the version and whether anything was written.

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
    splits: dict[str, pd.DataFrame],
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


def load_split(version: ExistingVersion, split: str) -> pd.DataFrame:
    import pandas as pd

    splits = version.manifest.get("splits", {})
    if split not in splits:
        raise DataError(
            f"split {split!r} is not part of data version {version.path.parent.name}/"
            f"{version.path.name}; available: {', '.join(sorted(splits))}"
        )
    df = pd.read_parquet(version.path / f"{split}.parquet")
    df["id"] = df["id"].astype(str)
    return df
