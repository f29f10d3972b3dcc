"""The data stage: raw CSV -> cleaned, split, versioned dataset (docs/STAGES.md, "data")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .. import params as P
from ..cleaning import CONFLICT_POLICIES
from ..context import CONTEXT_WIDGETS, Context
from ..csvio import DELIMITERS, LABEL_CASE_MODES
from ..result import StageResult

WIDGETS: dict[str, str] = {
    "data_name": "financial_news",
    "data_version": "v1",
    "source": "data/sample/financial_news.csv",
    "encoding": "utf-8",
    "delimiter": ",",
    "text_column": "Sentence",
    "label_column": "Sentiment",
    "test_size": "0.2",
    "holdout": "true",
    "holdout_size": "0.1",
    "stratify": "",  # empty: ["<label_column>"]; null: no stratification
    "conflicts": "prefer_non_neutral",
    "label_case": "strict",
    "seed": "42",
    "overwrite": "false",
    "engine": "pandas",
    **CONTEXT_WIDGETS,
}


@dataclass(frozen=True)
class DataParams:
    data_name: str
    data_version: str
    source: str
    encoding: str
    delimiter: str
    text_column: str
    label_column: str
    test_size: float
    holdout: bool
    holdout_size: float
    stratify: list[str] | None
    conflicts: str
    label_case: str
    seed: int
    overwrite: bool
    engine: str = "pandas"

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> DataParams:
        label_column = P.required(raw, "label_column")
        text_column = P.required(raw, "text_column")
        if label_column == text_column:
            raise P.ParamError(
                f"parameters 'text_column' and 'label_column' name the same column {text_column!r}"
            )
        stratify = P.json_value(raw, "stratify", default=[label_column])
        if stratify is not None and (
            not isinstance(stratify, list)
            or not stratify
            or not all(isinstance(c, str) and c for c in stratify)
        ):
            raise P.ParamError(
                "parameter 'stratify' must be a non-empty JSON list of column names or null, "
                f"got {P.get(raw, 'stratify')!r}"
            )
        holdout = P.boolean(raw, "holdout", True)
        test_size = P.number(raw, "test_size", 0.2, low=0, high=1)
        holdout_size = P.number(raw, "holdout_size", 0.1, low=0, high=1)
        if holdout and test_size + holdout_size >= 1:
            raise P.ParamError(
                f"test_size + holdout_size must be below 1 (train gets the rest), got "
                f"{test_size:g} + {holdout_size:g}"
            )
        return cls(
            data_name=P.segment(raw, "data_name"),
            data_version=P.segment(raw, "data_version"),
            source=P.required(raw, "source"),
            encoding=P.get(raw, "encoding").strip() or "utf-8",
            delimiter=P.choice(raw, "delimiter", DELIMITERS, ","),
            text_column=text_column,
            label_column=label_column,
            test_size=test_size,
            holdout=holdout,
            holdout_size=holdout_size,
            stratify=stratify,
            conflicts=P.choice(raw, "conflicts", CONFLICT_POLICIES, "prefer_non_neutral"),
            label_case=P.choice(raw, "label_case", LABEL_CASE_MODES, "strict"),
            seed=P.integer(raw, "seed", 42, low=0),
            overwrite=P.boolean(raw, "overwrite", False),
            engine=P.engine(raw),
        )

    def manifest_params(self) -> dict[str, Any]:
        """The parameters that define the content of a version (not `overwrite`)."""
        out = asdict(self)
        out.pop("overwrite")
        # The engine does not change the content (the spark engine's split is the pandas one's):
        # the same version written by either is the same version.
        out.pop("engine")
        if self.delimiter == ",":
            out.pop("delimiter")  # the default: versions written before the parameter existed stay the same
        if self.label_case == "strict":
            # What every version was before the parameter existed: their identity stays the same.
            out.pop("label_case")
        if not self.holdout:
            out["holdout_size"] = None
        return out


def run(raw: Mapping[str, str]) -> StageResult:
    raw = {**WIDGETS, **raw}  # a direct call may leave parameters out: use the widget defaults
    ctx = Context.from_params(raw)
    p = DataParams.parse(raw)
    return create(p, ctx)


def _check_strata(cleaned: Any, strata: list[Any], needed: int, p: DataParams, src: Any) -> None:
    """A stratum (usually a class) needs a distinct text in every split: name the file, the column
    and the rows of the first one that has too few, before the splitter refuses it."""

    if p.stratify is None:
        return
    groups: dict[Any, set[str]] = {}
    rows: dict[Any, list[int]] = {}
    for stratum, group, row_id in zip(strata, cleaned["group"], cleaned["id"], strict=True):
        groups.setdefault(stratum, set()).add(group)
        rows.setdefault(stratum, []).append(int(row_id) + 1)
    for stratum in sorted(groups, key=repr):
        if len(groups[stratum]) < needed:
            raise strata_error(
                p, src, stratum, rows[stratum][:5], len(rows[stratum]), len(groups[stratum]), needed
            )


def strata_error(
    p: DataParams, src: Any, stratum: Any, first_rows: list[int], n_rows: int, n_groups: int, needed: int
) -> Exception:
    """The refusal of a stratum with fewer distinct texts than splits (`first_rows`: 1-based data
    rows, at most five); the spark engine raises the same one."""
    from ..csvio import DataError

    shown = ", ".join(str(r) for r in first_rows[:5])
    more = f" and {n_rows - 5} more" if n_rows > 5 else ""
    columns = ", ".join(repr(c) for c in p.stratify or [])
    value = stratum if isinstance(stratum, tuple) and len(stratum) > 1 else str(stratum)
    return DataError(
        f"{src}: column{'s' if len(p.stratify or []) > 1 else ''} {columns}: class {value!r} has "
        f"{n_rows} row(s) with {n_groups} distinct text(s) (data "
        f"row(s) {shown}{more}), too few to stratify into {needed} splits; each split needs "
        "one. Add data, drop the class, or set stratify to null"
    )


def create(p: DataParams, ctx: Context) -> StageResult:
    if p.engine == "spark":
        from ..spark_data import create_spark

        return create_spark(p, ctx)
    import pandas as pd

    from ..cleaning import clean
    from ..csvio import (
        DataError,
        check_labels,
        label_case_folds,
        read_bytes,
        read_csv,
        replacement_char_warning,
        require_columns,
    )
    from ..dataset import (
        content_sha256,
        label_counts,
    )
    from ..paths import sha256_bytes
    from ..split import TRAIN, SplitError, split_groups

    src = ctx.resolve(p.source)
    raw_bytes = read_bytes(src)
    df = read_csv(raw_bytes, p.encoding, src, p.delimiter)
    wanted = {"text_column": p.text_column, "label_column": p.label_column}
    for i, col in enumerate(p.stratify or []):
        wanted[f"stratify[{i}]"] = col
    require_columns(df, wanted, src)
    if len(df) == 0:
        raise DataError(
            f"{src}: the file has a header ({', '.join(repr(str(c)) for c in df.columns)}) but no data rows"
        )
    check_labels(df, p.label_column, src)
    folds = label_case_folds(df, p.label_column, src, p.label_case)
    if folds:
        df[p.label_column] = df[p.label_column].str.strip().replace(folds)
        print(
            "label_case fold: "
            + ", ".join(f"{old!r} -> {new!r}" for old, new in sorted(folds.items()))
            + f" in column {p.label_column!r}"
        )
    damaged = replacement_char_warning(df, p.text_column, src)
    warnings = [damaged[1]] if damaged else []
    for w in warnings:
        print(f"warning: {w}")
    print(f"read {len(df)} rows from {src}")

    frame = pd.DataFrame(
        {
            "id": [str(i) for i in range(len(df))],
            "text": df[p.text_column],
            "label": df[p.label_column],
        }
    )
    extra = [c for c in (p.stratify or []) if c not in (p.label_column, p.text_column)]
    for col in extra:
        frame[f"stratum:{col}"] = df[col].fillna("").astype(str).to_numpy()

    cleaned, report = clean(frame, p.conflicts)
    print("cleaning: " + ", ".join(f"{k}={v}" for k, v in report.as_dict().items()))
    if report.rows_clean == 0:
        raise DataError(
            f"{src}: no rows left after cleaning ({report.empty_text} empty texts in column "
            f"{p.text_column!r}, {report.missing_label} missing labels in column {p.label_column!r}, "
            f"{report.duplicates_removed} duplicates, {report.conflict_rows_removed} removed by "
            f"conflicts={p.conflicts})"
        )
    classes = sorted(cleaned["label"].unique())
    if len(classes) < 2:
        raise DataError(
            f"{src}: only one class ({classes[0]!r}, {report.rows_clean} rows) is left after "
            f"cleaning column {p.label_column!r}; a classifier needs at least two"
        )

    def stratum_columns(col: str) -> str:
        return {p.label_column: "label", p.text_column: "text"}.get(col, f"stratum:{col}")

    if p.stratify is None:
        strata = [""] * len(cleaned)
    else:
        cols = [stratum_columns(c) for c in p.stratify]
        strata = (
            cleaned[cols[0]].tolist()
            if len(cols) == 1
            else list(cleaned[cols].itertuples(index=False, name=None))
        )
    fractions = {"test": p.test_size}
    if p.holdout:
        fractions["holdout"] = p.holdout_size
    _check_strata(cleaned, strata, len(fractions) + 1, p, src)
    try:
        assignment = split_groups(strata, cleaned["group"].tolist(), fractions, p.seed)
    except SplitError as exc:
        raise DataError(f"{src}: column {p.label_column!r}: {exc}") from None
    cleaned["split"] = assignment

    splits: dict[str, pd.DataFrame] = {}
    for name in [TRAIN, *fractions]:
        part = cleaned[cleaned["split"] == name]
        splits[name] = part.sort_values("id", key=lambda s: s.astype(int))[
            ["id", "text", "label"]
        ].reset_index(drop=True)

    source = {
        "path": p.source,
        "resolved_path": str(src),
        "sha256": sha256_bytes(raw_bytes),
        "bytes": len(raw_bytes),
        "encoding": p.encoding,
        "rows": len(df),
        "columns": [str(c) for c in df.columns],
    }
    split_info = {
        name: {
            "file": f"{name}.parquet",
            "rows": len(part),
            "labels": label_counts(part),
            "sha256": content_sha256(part),
        }
        for name, part in splits.items()
    }
    manifest = build_manifest(p, ctx, source, report.as_dict(), classes, folds, warnings, split_info)
    return finish(p, ctx, splits, manifest, damaged)


def build_manifest(
    p: DataParams,
    ctx: Context,
    source: dict[str, Any],
    cleaning: dict[str, int],
    classes: list[str],
    folds: dict[str, str],
    warnings: list[str],
    split_info: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of a data version; both engines write this one (docs/STAGES.md, "data")."""
    from ..dataset import FORMAT_VERSION, code_version, now_utc

    return {
        "format_version": FORMAT_VERSION,
        "data_name": p.data_name,
        "data_version": p.data_version,
        "created_at": now_utc(),
        "source": source,
        "columns": {"id": "0-based data row of the source", "text": p.text_column, "label": p.label_column},
        "params": p.manifest_params(),
        "cleaning": cleaning,
        "labels": classes,
        **({"label_case_folds": folds} if folds else {}),
        **({"warnings": warnings} if warnings else {}),
        "splits": split_info,
        "code": code_version(ctx.git_commit),
        "pipectl": {
            k: v
            for k, v in {
                "run_id": ctx.run_id,
                "pipeline": ctx.pipeline,
                "stage": ctx.stage,
                "target": ctx.target,
            }.items()
            if v
        },
    }


def finish(
    p: DataParams,
    ctx: Context,
    splits: Any,
    manifest: dict[str, Any],
    damaged: tuple[int, str] | None,
) -> StageResult:
    """Write the version (unless the same content is there) and report it."""
    from ..dataset import version_dir, write_version

    target = version_dir(ctx.data_root, p.data_name, p.data_version)
    version, written = write_version(target, splits, manifest, p.overwrite)
    if written:
        print(f"wrote data version {p.data_name}/{p.data_version} to {target}")
    else:
        print(
            f"data version {p.data_name}/{p.data_version} already exists with identical content: "
            "nothing written"
        )
    m = version.manifest
    for name, info in m["splits"].items():
        print(f"  {name}: {info['rows']} rows {info['labels']}")

    rows = {f"rows_{name}": m["splits"].get(name, {}).get("rows", 0) for name in ("train", "test", "holdout")}
    cleaning = m["cleaning"]
    return StageResult(
        outputs={
            "data_name": p.data_name,
            "data_version": p.data_version,
            "data_path": str(target),
            "manifest_sha256": version.sha256,
            **rows,
        },
        metrics={
            "rows_raw": cleaning["rows_raw"],
            "rows_clean": cleaning["rows_clean"],
            "duplicates_removed": cleaning["duplicates_removed"],
            "conflicts_resolved": cleaning["conflict_groups"],
            **rows,
            # Only when there is something to say: the usual metrics stay the same.
            **({"texts_with_replacement_char": damaged[0]} if damaged else {}),
        },
    )
