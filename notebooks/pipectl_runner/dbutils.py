"""A local stand-in for Databricks' `dbutils`: widgets, notebook.exit, jobs.taskValues and a
minimal fs for local paths. Behaviour follows Databricks where a notebook could tell the
difference (parameters override widget defaults, exit stops the notebook as a success, taskValues
debugValue semantics, the 48 KiB task-value limit)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

TASK_VALUE_LIMIT = 48 * 1024
_UNSET: Any = object()


class NotebookExit(BaseException):
    """Raised by `dbutils.notebook.exit`: stops the notebook, successfully."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class InputWidgetNotDefined(Exception):  # noqa: N818 - the name Databricks uses
    pass


class _Widgets:
    def __init__(self, params: Mapping[str, str]) -> None:
        self._params = dict(params)
        self._defaults: dict[str, str] = {}

    def _declare(self, name: str, default: str, choices: list[str] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("widget name must be a non-empty string")
        if not isinstance(default, str):
            raise TypeError(f"widget {name!r}: defaultValue must be a string, got {type(default).__name__}")
        if choices is not None and default not in choices:
            raise ValueError(
                f"widget {name!r}: default value {default!r} is not one of the choices {choices}"
            )
        self._defaults[name] = default

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:  # noqa: N803
        self._declare(name, defaultValue)

    def dropdown(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:  # noqa: N803
        self._declare(name, defaultValue, list(choices))

    def combobox(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:  # noqa: N803
        self._declare(name, defaultValue)

    def multiselect(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:  # noqa: N803
        self._declare(name, defaultValue, list(choices))

    def get(self, name: str) -> str:
        # Job parameters are readable even without a widget, as on Databricks.
        if name in self._params:
            return self._params[name]
        if name in self._defaults:
            return self._defaults[name]
        raise InputWidgetNotDefined(f"No input widget named {name} is defined")

    def getArgument(self, name: str, optional: str | None = None) -> str | None:  # noqa: N802
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            return optional

    def getAll(self) -> dict[str, str]:  # noqa: N802
        return {**self._defaults, **self._params}

    def remove(self, name: str) -> None:
        if name not in self._defaults:
            raise InputWidgetNotDefined(f"No input widget named {name} is defined")
        del self._defaults[name]

    def removeAll(self) -> None:  # noqa: N802
        self._defaults.clear()

    def help(self) -> None:
        print("local dbutils.widgets: text, dropdown, combobox, multiselect, get, getAll, remove, removeAll")


class _Notebook:
    def exit(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(
                f"dbutils.notebook.exit expects a string, got {type(value).__name__} (use json.dumps)"
            )
        raise NotebookExit(value)

    def run(self, path: str, timeout_seconds: int = 0, arguments: Mapping[str, str] | None = None) -> str:
        raise NotImplementedError("dbutils.notebook.run is not available in the local runner")


class _TaskValues:
    def __init__(self, upstream: Mapping[str, Mapping[str, Any]] | None) -> None:
        # None: not running as a job task (plain interactive run): get() returns debugValue.
        self._upstream = None if upstream is None else {k: dict(v) for k, v in upstream.items()}
        self.values: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError("task value key must be a non-empty string")
        try:
            encoded = json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"task value {key!r} is not JSON-serialisable: {exc}") from None
        if len(encoded.encode()) > TASK_VALUE_LIMIT:
            raise ValueError(
                f"task value {key!r} is {len(encoded.encode())} bytes as JSON; the limit is 48 KiB"
            )
        self.values[key] = json.loads(encoded)  # store what a downstream task would read

    def get(self, taskKey: str, key: str, default: Any = _UNSET, debugValue: Any = _UNSET) -> Any:  # noqa: N803
        if self._upstream is None:
            if debugValue is _UNSET or debugValue is None:
                raise TypeError(
                    "dbutils.jobs.taskValues.get: debugValue must be given (and not None) when "
                    "running outside a job; pass --task-values-in to the runner to act as a job"
                )
            return debugValue
        if taskKey not in self._upstream:
            raise ValueError(
                f"no task {taskKey!r} among the upstream task values "
                f"({', '.join(sorted(self._upstream)) or 'none'})"
            )
        values = self._upstream[taskKey]
        if key in values:
            return values[key]
        if default is _UNSET or default is None:
            raise ValueError(f"task {taskKey!r} has no task value {key!r} and no default was given")
        return default


class _Jobs:
    def __init__(self, upstream: Mapping[str, Mapping[str, Any]] | None) -> None:
        self.taskValues = _TaskValues(upstream)


class FileInfo(NamedTuple):
    path: str
    name: str
    size: int
    modificationTime: int  # noqa: N815 - Databricks' name


def _local(path: str) -> Path:
    if path.startswith("file:"):
        rest = path[len("file:") :]
        return Path("/" + rest.lstrip("/")) if rest.startswith("/") else Path(rest)
    if "://" in path or path.startswith("dbfs:"):
        raise ValueError(f"the local dbutils.fs only handles local paths (or file:/...), got {path!r}")
    return Path(path)


class _Fs:
    def ls(self, dir: str) -> list[FileInfo]:  # noqa: A002 - Databricks' parameter name
        p = _local(dir)
        if not p.exists():
            raise FileNotFoundError(f"{dir}: no such file or directory")
        entries = sorted(p.iterdir()) if p.is_dir() else [p]
        out = []
        for e in entries:
            st = e.stat()
            suffix = "/" if e.is_dir() else ""
            out.append(
                FileInfo(
                    f"file:{e.resolve()}{suffix}",
                    e.name + suffix,
                    0 if suffix else st.st_size,
                    int(st.st_mtime * 1000),
                )
            )
        return out

    def mkdirs(self, dir: str) -> bool:  # noqa: A002
        _local(dir).mkdir(parents=True, exist_ok=True)
        return True

    def put(self, file: str, contents: str, overwrite: bool = False) -> bool:
        p = _local(file)
        if p.exists() and not overwrite:
            raise FileExistsError(f"{file} already exists (pass overwrite=True)")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(contents, encoding="utf-8")
        return True

    def head(self, file: str, maxBytes: int = 65536) -> str:  # noqa: N803
        with _local(file).open("rb") as fh:
            return fh.read(maxBytes).decode("utf-8", errors="replace")

    def rm(self, dir: str, recurse: bool = False) -> bool:  # noqa: A002
        p = _local(dir)
        if not p.exists():
            return False
        if p.is_dir() and not p.is_symlink():
            if recurse:
                shutil.rmtree(p)
            else:
                p.rmdir()  # fails on a non-empty directory, as Databricks does without recurse
        else:
            p.unlink()
        return True

    def cp(self, from_: str, to: str, recurse: bool = False) -> bool:
        src, dst = _local(from_), _local(to)
        if src.is_dir():
            if not recurse:
                raise IsADirectoryError(f"{from_} is a directory (pass recurse=True)")
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        return True

    def mv(self, from_: str, to: str, recurse: bool = False) -> bool:
        src, dst = _local(from_), _local(to)
        if src.is_dir() and not recurse:
            raise IsADirectoryError(f"{from_} is a directory (pass recurse=True)")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dst)
        return True


@dataclass
class DBUtils:
    """The `dbutils` object a notebook sees under the local runner."""

    params: Mapping[str, str] = field(default_factory=dict)
    upstream_task_values: Mapping[str, Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        self.widgets = _Widgets(self.params)
        self.notebook = _Notebook()
        self.jobs = _Jobs(self.upstream_task_values)
        self.fs = _Fs()

    @property
    def task_values(self) -> dict[str, Any]:
        return self.jobs.taskValues.values
