"""Parsing of notebook parameters.

Every parameter reaches a notebook as a string (docs/STAGES.md): numbers and structured values as
JSON, booleans as `true`/`false`, null as `null`. These helpers turn them into Python values and fail
with a message that names the parameter, what was expected and what was given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from .paths import is_safe_segment


class ParamError(ValueError):
    """A stage parameter is missing or has an invalid value."""

    #: The user's to fix: pipectl_runner reports the message alone, once (docs/STAGES.md).
    pipectl_user_error = True


def _show(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def get(raw: Mapping[str, str], name: str, default: str = "") -> str:
    """The raw string of `name`, or `default` when it is absent (interactive use)."""
    value = raw.get(name)
    return default if value is None else str(value)


def is_null(value: str) -> bool:
    """Empty and `null` both mean "not set" (an empty widget, or a null in the spec)."""
    return value.strip() in ("", "null", "None")


def required(raw: Mapping[str, str], name: str) -> str:
    value = get(raw, name).strip()
    if is_null(value):
        raise ParamError(f"parameter {name!r} is required but empty")
    return value


def optional(raw: Mapping[str, str], name: str) -> str | None:
    value = get(raw, name).strip()
    return None if is_null(value) else value


def segment(raw: Mapping[str, str], name: str) -> str:
    """A value that becomes one directory level (data name, version, output name)."""
    value = required(raw, name)
    if not is_safe_segment(value):
        raise ParamError(
            f"parameter {name!r} must be a safe path segment (letters, digits, '.', '_', '-', "
            f"starting with a letter or digit, at most 128 characters), got {_show(value)}"
        )
    return value


def boolean(raw: Mapping[str, str], name: str, default: bool) -> bool:
    value = get(raw, name).strip().lower()
    if is_null(value):
        return default
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ParamError(f"parameter {name!r} must be true or false, got {_show(value)}")


def number(
    raw: Mapping[str, str],
    name: str,
    default: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = False,
    high_inclusive: bool = False,
) -> float:
    text = get(raw, name).strip()
    if is_null(text):
        return default
    try:
        value = float(text)
    except ValueError:
        raise ParamError(f"parameter {name!r} must be a number, got {_show(text)}") from None
    if not math.isfinite(value):
        raise ParamError(f"parameter {name!r} must be a finite number, got {_show(text)}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'[' if low_inclusive else '('}{lo}, {hi}{']' if high_inclusive else ')'}"
        raise ParamError(f"parameter {name!r} must be in {interval}, got {_show(text)}")
    return value


def integer(raw: Mapping[str, str], name: str, default: int, *, low: int | None = None) -> int:
    text = get(raw, name).strip()
    if is_null(text):
        return default
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ParamError(f"parameter {name!r} must be an integer, got {_show(text)}")
    if low is not None and value < low:
        raise ParamError(f"parameter {name!r} must be at least {low}, got {value}")
    return value


def json_value(raw: Mapping[str, str], name: str, default: Any = None) -> Any:
    text = get(raw, name).strip()
    if text == "":
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParamError(f"parameter {name!r} must be JSON, got {_show(text)}: {exc.msg}") from None


def json_object(raw: Mapping[str, str], name: str) -> dict[str, Any]:
    value = json_value(raw, name, default=None)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParamError(
            f"parameter {name!r} must be a JSON object, got {type(value).__name__}: {_show(str(value))}"
        )
    return value


def choice(raw: Mapping[str, str], name: str, choices: Iterable[str], default: str) -> str:
    options = list(choices)
    value = get(raw, name).strip()
    if is_null(value):
        return default
    if value not in options:
        raise ParamError(f"parameter {name!r} must be one of {', '.join(options)}; got {_show(value)}")
    return value


def check_keys(name: str, given: Mapping[str, Any], valid: Iterable[str]) -> None:
    """Reject unknown keys of a structured parameter, listing the valid ones."""
    allowed = sorted(set(valid))
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ParamError(
            f"parameter {name!r}: unknown {'key' if len(unknown) == 1 else 'keys'} "
            f"{', '.join(repr(k) for k in unknown)}; valid: {', '.join(allowed)}"
        )


ENGINES = ("pandas", "spark")


def engine(raw: Mapping[str, str]) -> str:
    """The `engine` parameter of the data and inference stages (docs/STAGES.md, "Engines")."""
    return choice(raw, "engine", ENGINES, "pandas")
