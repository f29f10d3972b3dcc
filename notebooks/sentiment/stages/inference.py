"""The inference stage: batch predictions of a registered model on a data split or a CSV of new
texts (docs/STAGES.md, "inference")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import params as P
from ..context import CONTEXT_WIDGETS, Context
from ..result import StageResult

WIDGETS: dict[str, str] = {
    "model": "models:/financial_sentiment@champion",
    "data_name": "financial_news",
    "data_version": "v1",
    "split": "holdout",
    "input_path": "",  # set: read this CSV instead of a data split
    "text_column": "Sentence",
    "id_column": "",
    "label_column": "",
    "encoding": "utf-8",
    "output_name": "predictions",
    "batch_size": "10000",
    "write_csv": "false",
    "engine": "pandas",
    **CONTEXT_WIDGETS,
}


@dataclass(frozen=True)
class InferenceParams:
    model: str
    data_name: str
    data_version: str
    split: str
    input_path: str | None
    text_column: str
    id_column: str | None
    label_column: str | None
    encoding: str
    output_name: str
    batch_size: int
    write_csv: bool
    engine: str = "pandas"

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> InferenceParams:
        from ..tracking import parse_model_uri

        input_path = P.optional(raw, "input_path")
        return cls(
            model=parse_model_uri(P.required(raw, "model")).uri,
            data_name="" if input_path else P.segment(raw, "data_name"),
            data_version="" if input_path else P.segment(raw, "data_version"),
            split="" if input_path else P.segment(raw, "split"),
            input_path=input_path,
            text_column=P.required(raw, "text_column") if input_path else "text",
            id_column=P.optional(raw, "id_column") if input_path else "id",
            label_column=P.optional(raw, "label_column") if input_path else "label",
            encoding=P.get(raw, "encoding").strip() or "utf-8",
            output_name=P.segment(raw, "output_name"),
            batch_size=P.integer(raw, "batch_size", 10000, low=1),
            write_csv=P.boolean(raw, "write_csv", False),
            engine=P.engine(raw),
        )


def run(raw: Mapping[str, str]) -> StageResult:
    raw = {**WIDGETS, **raw}  # a direct call may leave parameters out: use the widget defaults
    ctx = Context.from_params(raw)
    p = InferenceParams.parse(raw)
    if p.engine == "spark":
        from . import inference_spark

        return inference_spark.infer(p, ctx)
    return infer(p, ctx)


def load_input(p: InferenceParams, ctx: Context) -> tuple[Any, str]:
    """The rows to score (columns id, text and, when known, label) and their data version."""
    import pandas as pd

    if not p.input_path:
        from ..dataset import load_split, load_version

        version = load_version(ctx.data_root, p.data_name, p.data_version)
        return load_split(version, p.split), p.data_version

    from ..csvio import read_bytes, read_csv, require_columns
    from ..paths import sha256_bytes

    path = ctx.resolve(p.input_path)
    data = read_bytes(path)
    raw = read_csv(data, p.encoding, path)
    wanted = {"text_column": p.text_column}
    if p.id_column:
        wanted["id_column"] = p.id_column
    if p.label_column:
        wanted["label_column"] = p.label_column
    require_columns(raw, wanted, path)
    df = pd.DataFrame(
        {
            "id": raw[p.id_column].fillna("").astype(str)
            if p.id_column
            else [str(i) for i in range(len(raw))],
            "text": raw[p.text_column].fillna("").astype(str),
        }
    )
    if p.label_column:
        df["label"] = raw[p.label_column].fillna("").astype(str).str.strip()
    # A CSV has no data version: identify it by content instead.
    return df, f"csv-sha256:{sha256_bytes(data)[:16]}"


def infer(p: InferenceParams, ctx: Context) -> StageResult:
    import pyarrow as pa

    from .. import tracking as T
    from ..csvio import DataError
    from ..paths import locked_dir, remove_debris, under, write_error

    df, data_version = load_input(p, ctx)
    print(
        f"scoring {len(df)} rows from "
        + (str(ctx.resolve(p.input_path)) if p.input_path else f"{p.data_name}/{p.data_version} {p.split}")
    )

    T.configure(ctx)
    model_uri = T.qualify_model_uri(ctx, p.model)
    ref = T.resolve_version(T.parse_model_uri(model_uri))
    model = T.load_model(model_uri)
    classes = [str(c) for c in model.classes_]
    print(f"model {model_uri} (version {ref.version or 'unregistered'}), classes {classes}")

    out_dir = under(ctx.output_root, p.output_name, ctx.run_id_or_manual())
    target = out_dir / "predictions.parquet"
    has_labels = "label" in df.columns
    fields = [
        ("id", pa.string()),
        ("text", pa.string()),
        *([("label", pa.string())] if has_labels else []),
        ("prediction", pa.string()),
        *[(f"proba_{c}", pa.float64()) for c in classes],
        ("model_uri", pa.string()),
        ("model_version", pa.string()),
        ("data_version", pa.string()),
    ]
    schema = pa.schema(fields)
    predictions: list[str] = []
    try:
        with locked_dir(out_dir) as held:
            if held and (removed := remove_debris(out_dir, [".predictions.*.tmp"])):
                print(f"removed what a killed writer left: {', '.join(removed)}")
            _write_predictions(
                p, df, model, ref, model_uri, classes, schema, data_version, out_dir, predictions
            )
    except OSError as exc:
        raise DataError(write_error("predictions", target, exc)) from None

    counts = {c: predictions.count(c) for c in classes}
    print(f"wrote {len(df)} predictions to {target}: {counts}")
    metrics: dict[str, float] = {"rows": len(df)}
    if has_labels:
        known = df["label"] != ""
        if known.any():
            y_true = df.loc[known, "label"].tolist()
            y_pred = [pred for pred, k in zip(predictions, known, strict=True) if k]
            from sklearn.metrics import accuracy_score, f1_score

            metrics["accuracy"] = float(accuracy_score(y_true, y_pred))
            metrics["f1_macro"] = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
            print(
                f"labelled rows {int(known.sum())}: accuracy={metrics['accuracy']:.4f} "
                f"f1_macro={metrics['f1_macro']:.4f}"
            )
    return StageResult(
        outputs={
            "predictions_path": str(target),
            "rows": len(df),
            "model_uri": model_uri,
            "model_version": ref.version,
            "prediction_counts": counts,
        },
        metrics=metrics,
    )


def _write_predictions(
    p: InferenceParams,
    df: Any,
    model: Any,
    ref: Any,
    model_uri: str,
    classes: list[str],
    schema: Any,
    data_version: str,
    out_dir: Path,
    predictions: list[str],
) -> None:
    """Score `df` in batches into `out_dir/predictions.parquet` (and .csv), written under temporary
    names and renamed, so a reader sees the whole file or none. Appends to `predictions`."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .. import metrics as M
    from ..paths import temp_path_beside

    target = out_dir / "predictions.parquet"
    has_labels = "label" in df.columns
    tmp = temp_path_beside(target)
    tmp_csv = temp_path_beside(out_dir / "predictions.csv") if p.write_csv else None

    def write(table: Any, first: bool) -> None:
        writer.write_table(table)
        if tmp_csv is not None:
            table.to_pandas().to_csv(tmp_csv, mode="a", header=first, index=False)

    try:
        # Each batch is written by a thread while the next one is scored (pyarrow releases the
        # GIL while it encodes and writes), one batch at a time, in order.
        with pq.ParquetWriter(tmp, schema) as writer, ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for start in range(0, len(df), p.batch_size):
                batch = df.iloc[start : start + p.batch_size]
                labels, proba, _ = M.predict(model, batch["text"].tolist())
                predictions.extend(labels)
                n = len(batch)
                columns: dict[str, Any] = {
                    # Straight from the frame's (Arrow-backed) columns, not through Python lists.
                    "id": pa.array(batch["id"], type=pa.string()),
                    "text": pa.array(batch["text"], type=pa.string()),
                }
                if has_labels:
                    columns["label"] = pa.array(batch["label"], type=pa.string())
                columns["prediction"] = labels
                for j, c in enumerate(classes):
                    columns[f"proba_{c}"] = np.asarray(proba[:, j], dtype="float64")
                columns["model_uri"] = [model_uri] * n
                columns["model_version"] = [ref.version] * n
                columns["data_version"] = [data_version] * n
                table = pa.table(columns, schema=schema)
                if pending is not None:
                    pending.result()
                pending = pool.submit(write, table, start == 0)
                print(f"  {start + n}/{len(df)} rows")
            if pending is not None:
                pending.result()
        if tmp_csv is not None:
            os.replace(tmp_csv, out_dir / "predictions.csv")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        if tmp_csv is not None:
            Path(tmp_csv).unlink(missing_ok=True)
        raise
