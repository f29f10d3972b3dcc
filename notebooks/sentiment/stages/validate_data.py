"""The validate_data stage: check declared expectations on a data version (docs/STAGES.md,
"validate_data") — every split has the columns, no column has more missing values than allowed,
every class's share of rows is within bounds. A violation fails the stage, naming the split, the
column or class and the offending rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import params as P
from ..context import CONTEXT_WIDGETS, Context
from ..dataset import load_split, load_version
from ..result import StageResult

WIDGETS: dict[str, str] = {
    "data_name": "financial_news",
    "data_version": "v1",
    "splits": '["train", "test", "holdout"]',
    "columns": '["id", "text", "label"]',
    "max_null_rate": "0",
    "label_column": "label",
    "min_class_share": "0",
    "max_class_share": "1",
    "classes": "null",
    **CONTEXT_WIDGETS,
}

#: How many offending row ids a message lists.
MAX_ROWS_SHOWN = 10


class ValidationError(ValueError):
    """The data version does not meet the stage's expectations: the data is at fault, so pipectl
    shows the message once, keeps the traceback in the stage log and suggests no --resume."""

    pipectl_user_error = True


@dataclass(frozen=True)
class ValidateParams:
    data_name: str
    data_version: str
    splits: list[str]
    columns: list[str]
    max_null_rate: float
    label_column: str
    min_class_share: float
    max_class_share: float
    classes: list[str] | None

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> ValidateParams:
        def strings(name: str, *, nullable: bool = False) -> list[str] | None:
            value = P.json_value(raw, name, default=None)
            if value is None and nullable:
                return None
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise P.ParamError(f"parameter {name!r} must be a JSON list of names, got {value!r}")
            return value

        p = cls(
            data_name=P.segment(raw, "data_name"),
            data_version=P.segment(raw, "data_version"),
            splits=strings("splits") or [],
            columns=strings("columns") or [],
            max_null_rate=P.number(
                raw, "max_null_rate", 0.0, low=0, high=1, low_inclusive=True, high_inclusive=True
            ),
            label_column=P.required(raw, "label_column"),
            min_class_share=P.number(
                raw, "min_class_share", 0.0, low=0, high=1, low_inclusive=True, high_inclusive=True
            ),
            max_class_share=P.number(
                raw, "max_class_share", 1.0, low=0, high=1, low_inclusive=True, high_inclusive=True
            ),
            classes=strings("classes", nullable=True),
        )
        if p.min_class_share > p.max_class_share:
            raise P.ParamError("parameter 'min_class_share' is above 'max_class_share'")
        return p


def run(raw: Mapping[str, str]) -> StageResult:
    raw = {**WIDGETS, **raw}  # a direct call may leave parameters out: use the widget defaults
    ctx = Context.from_params(raw)
    return validate(ValidateParams.parse(raw), ctx)


def _rows(ids: Any) -> str:
    ids = [str(i) for i in ids]
    shown = ", ".join(ids[:MAX_ROWS_SHOWN])
    more = f" and {len(ids) - MAX_ROWS_SHOWN} more" if len(ids) > MAX_ROWS_SHOWN else ""
    return f"row id(s) {shown}{more}"


def check_split(split: str, df: Any, p: ValidateParams) -> tuple[list[str], dict[str, float]]:
    """The violations of one split, and its metrics."""
    problems: list[str] = []
    metrics: dict[str, float] = {f"rows_{split}": float(len(df))}
    missing = [c for c in p.columns if c not in df.columns]
    if missing:
        problems.append(
            f"split {split}: column(s) {', '.join(map(repr, missing))} missing; "
            f"columns found: {', '.join(map(repr, df.columns))}"
        )
    ids = df["id"] if "id" in df.columns else df.index
    for column in [c for c in p.columns if c in df.columns]:
        values = df[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        rate = float(empty.mean()) if len(df) else 0.0
        metrics[f"null_rate_{split}_{column}"] = rate
        if rate > p.max_null_rate:
            problems.append(
                f"split {split}: column {column!r} is missing or empty in {int(empty.sum())} of {len(df)} "
                f"rows ({rate:.1%}, at most {p.max_null_rate:.1%} allowed): {_rows(ids[empty])}"
            )
    if p.label_column not in df.columns:
        if p.label_column not in p.columns:
            problems.append(f"split {split}: label column {p.label_column!r} missing")
        return problems, metrics
    labels = df[p.label_column].dropna().astype(str)
    shares = labels.value_counts(normalize=True).sort_index()
    for label, share in shares.items():
        metrics[f"class_share_{split}_{label}"] = float(share)
        if not p.min_class_share <= share <= p.max_class_share:
            rows = int((labels == label).sum())
            problems.append(
                f"split {split}: class {label!r} holds {share:.1%} of the rows ({rows} of {len(labels)}), "
                f"outside [{p.min_class_share:.1%}, {p.max_class_share:.1%}]"
            )
    if p.classes is not None:
        found = set(shares.index)
        absent = [c for c in p.classes if c not in found]
        extra = sorted(found - set(p.classes))
        if absent:
            problems.append(f"split {split}: expected class(es) {', '.join(map(repr, absent))} absent")
        for label in extra:
            where = ids[df[p.label_column].astype(str) == label]
            problems.append(f"split {split}: unexpected class {label!r} in {_rows(where)}")
    return problems, metrics


def validate(p: ValidateParams, ctx: Context) -> StageResult:
    version = load_version(ctx.data_root, p.data_name, p.data_version)
    problems: list[str] = []
    metrics: dict[str, float] = {}
    rows = 0
    for split in p.splits:
        df = load_split(version, split)
        rows += len(df)
        found, split_metrics = check_split(split, df, p)
        problems += found
        metrics.update(split_metrics)
    if problems:
        raise ValidationError(
            f"data version {p.data_name}/{p.data_version} fails {len(problems)} expectation(s): "
            + "; ".join(problems)
        )
    print(
        f"data version {p.data_name}/{p.data_version}: {rows} rows in {len(p.splits)} split(s) "
        "meet every expectation"
    )
    return StageResult(
        outputs={
            "data_name": p.data_name,
            "data_version": p.data_version,
            "data_path": str(version.path),
            "rows_checked": rows,
        },
        metrics={"rows_checked": rows, **metrics},
    )
