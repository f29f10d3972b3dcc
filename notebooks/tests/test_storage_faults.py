"""Storage faults and names under the data and output roots, through the real stages.

- A full disk or a read-only data root while a version is written: a DataError that says so, the
  versions already there intact, nothing half-written left. The full disk is a tiny tmpfs; mounting
  one needs root (CAP_SYS_ADMIN), so without it that test is skipped with the reason. Read-only
  is a read-only tmpfs as root, a 0555 directory otherwise (root ignores modes).
- What a writer killed mid-write leaves (`kill -9` of pipectl kills the notebook) is cleaned up by
  the next writer, and an overwrite killed between its two renames gets the previous version back.
- Names never leave their root, even when they did not come through pipectl's spec checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import SAMPLE_CSV

from sentiment import dataset
from sentiment.csvio import DataError
from sentiment.paths import UnsafePathError, under
from sentiment.stages import data


def _data(root: Path, version: str, **kw: str):
    return data.run(
        {
            "data_root": str(root),
            "source": str(SAMPLE_CSV),
            "data_name": "news",
            "data_version": version,
            **kw,
        }
    )


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _hidden(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*"))


def _mount_tmpfs(path: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; run the suite as root (e.g. in a container) to test this")
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()})")


@pytest.fixture
def tmpfs(tmp_path: Path):
    mounted: list[Path] = []

    def _mount(size: str) -> Path:
        path = tmp_path / f"tmpfs-{len(mounted)}"
        _mount_tmpfs(path, f"size={size},mode=0755")
        mounted.append(path)
        return path

    yield _mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_while_writing_a_version(tmpfs):
    root = tmpfs("400k")
    first = _data(root, "v1")
    before = _snapshot(Path(first.outputs["data_path"]))
    # Fill the file system, leaving less than a version needs.
    with open(root / "filler", "wb") as fh, pytest.raises(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
    (root / "filler").unlink()
    with open(root / "filler", "wb") as fh:
        fh.write(b"\0" * (shutil.disk_usage(root).free - 16 * 1024))

    with pytest.raises(DataError) as err:
        _data(root, "v2")
    assert "cannot write data version news/v2" in str(err.value)
    assert "the file system is full" in str(err.value)
    assert "the versions already there are untouched" in str(err.value)
    assert _snapshot(root / "news" / "v1") == before
    assert not (root / "news" / "v2").exists()
    assert _hidden(root) == []  # no temporary directory left

    (root / "filler").unlink()  # space again: the same version is written whole
    assert _data(root, "v2").outputs["rows_train"] == first.outputs["rows_train"]


def test_read_only_data_root(tmp_path):
    if os.geteuid() == 0:
        root = tmp_path / "ro"
        _mount_tmpfs(root, "size=4m,mode=0755")
        try:
            first = _data(root, "v1")
            subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
            _check_read_only(root, first)
        finally:
            subprocess.run(["umount", "-l", str(root)], check=False)
    else:
        root = tmp_path / "ro"
        first = _data(root, "v1")
        for d in (root, root / "news"):
            d.chmod(0o555)
        try:
            _check_read_only(root, first)
        finally:
            for d in (root, root / "news"):
                d.chmod(0o755)


def _check_read_only(root: Path, first) -> None:
    before = _snapshot(Path(first.outputs["data_path"]))
    with pytest.raises(DataError) as err:
        _data(root, "v2")
    message = str(err.value)
    assert "cannot write data version news/v2" in message
    assert "read-only" in message or "permission denied" in message
    assert _snapshot(root / "news" / "v1") == before
    assert sorted(p.name for p in (root / "news").iterdir()) == ["v1"]
    # Reading the existing version still works: the identical run is a no-op.
    assert _data(root, "v1").outputs["manifest_sha256"] == first.outputs["manifest_sha256"]


def test_a_killed_writers_debris_is_removed_by_the_next_one(tmp_path):
    root = tmp_path / "data"
    first = _data(root, "v1")
    news = root / "news"
    # What SIGKILL leaves: a half-written temporary version, and an overwrite stopped between
    # "move the old version aside" and "move the new one in".
    half = news / f".v2.tmp-{uuid.uuid4().hex[:12]}"
    half.mkdir()
    (half / "train.parquet").write_bytes(b"PAR1 half")
    before = _snapshot(news / "v1")
    os.rename(news / "v1", news / f".v1.old-{uuid.uuid4().hex[:12]}")

    again = _data(root, "v1")  # the same content: the restored version is it
    assert again.outputs["manifest_sha256"] == first.outputs["manifest_sha256"]
    assert _snapshot(news / "v1") == before
    _data(root, "v2")
    assert sorted(p.name for p in news.iterdir()) == ["v1", "v2"]


@pytest.mark.parametrize("name", ["..", "../x", "/etc", ".hidden", "a/b", "", "x" * 129, "a\\..\\b"])
def test_names_never_leave_their_root(tmp_path, name):
    with pytest.raises(UnsafePathError):
        under(tmp_path, name)
    with pytest.raises(UnsafePathError):
        dataset.version_dir(tmp_path, "news", name)
    with pytest.raises(UnsafePathError):
        dataset.load_version(tmp_path, name, "v1")


def test_inference_refuses_an_unsafe_run_id_before_writing(tmp_path):
    """`output_name` is checked as a parameter; the run id comes from the executor and becomes a
    directory too."""
    from sentiment.stages import inference

    out = tmp_path / "predictions"
    with pytest.raises(ValueError) as err:
        inference.run(
            {
                "pipectl_run_id": "../../escaped",
                "output_root": str(out),
                "input_path": str(SAMPLE_CSV),
                "model": "runs:/0123/model",
                "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'm.db'}",
            }
        )
    assert "escaped" in str(err.value)
    assert not (tmp_path / "escaped").exists()
    assert not out.exists() or not any(out.rglob("*"))
