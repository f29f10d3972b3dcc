"""The inference stage on Spark (`engine: "spark"`, docs/STAGES.md "inference"): the registered
model scores the input with `mlflow.pyfunc.spark_udf` on the executors, the predictions are written
as a Delta table and the metrics are aggregated in Spark. Same parameters, same outputs and same
columns as the pandas engine (`inference.py`); `predictions_path` names a Delta table
(`predictions.delta`) instead of a Parquet file.

The model the UDF runs is the registered model itself, saved once more beside the run with
`pyfunc_predict_fn="predict_proba"` (MLflow's own switch for a scikit-learn model's pyfunc): the
UDF then returns the class probabilities, and the label is the most probable class, computed in
Spark, exactly as the pandas engine takes it (the first of equal maxima).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..context import Context
from ..result import StageResult

if TYPE_CHECKING:
    from .inference import InferenceParams

#: The name of the predictions table in the output directory.
PREDICTIONS_TABLE = "predictions.delta"
#: The marker of a Delta table directory.
DELTA_LOG = "_delta_log"
#: Characters a Delta column name cannot hold (without column mapping).
_DELTA_BAD_NAME = re.compile(r"[ ,;{}()\n\t=]")


def is_delta_table(path: Path) -> bool:
    return (path / DELTA_LOG).is_dir()


def infer(p: InferenceParams, ctx: Context) -> StageResult:
    import mlflow.pyfunc
    from pyspark.sql import Observation
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType

    from .. import tracking as T
    from ..csvio import DataError
    from ..paths import under
    from ..spark import get_spark

    spark = get_spark()
    sdf, data_version, source = load_input(spark, p, ctx)
    has_labels = "label" in sdf.columns
    print(f"scoring {source} on Spark {spark.version}")

    T.configure(ctx)
    model_uri = T.qualify_model_uri(ctx, p.model)
    ref = T.resolve_version(T.parse_model_uri(model_uri))
    model = T.load_model(model_uri)
    classes = [str(c) for c in model.classes_]
    print(f"model {model_uri} (version {ref.version or 'unregistered'}), classes {classes}")
    if bad := [c for c in classes if _DELTA_BAD_NAME.search(f"proba_{c}")]:
        raise DataError(
            f"model {model_uri} has classes {bad} that cannot name a Delta column proba_<class> "
            '(no spaces or any of ,;{}()=); use the pandas engine (engine: "pandas") for this model'
        )

    out_dir = under(ctx.output_root, p.output_name, ctx.run_id_or_manual())
    target = out_dir / PREDICTIONS_TABLE
    scratch = Path(tempfile.mkdtemp(prefix="pipectl-spark-model-"))
    try:
        local_model = _save_predict_proba_model(model, scratch / "model")
        # env_manager="local": the executors already run this environment (Databricks: the
        # cluster's libraries; locally: the same venv), so no per-task environment is built.
        proba_udf = mlflow.pyfunc.spark_udf(
            spark, str(local_model), result_type=ArrayType(DoubleType()), env_manager="local"
        )
        proba = F.col("_proba")
        best = F.array_position(proba, F.array_max(proba))  # 1-based; the first of equal maxima
        scored = (
            spread(spark, sdf)
            .withColumn("_proba", proba_udf(F.struct(F.col("text"))))
            .withColumn("prediction", F.element_at(F.array(*[F.lit(c) for c in classes]), best.cast("int")))
            .select(
                "id",
                "text",
                *([F.trim(F.coalesce(F.col("label"), F.lit(""))).alias("label")] if has_labels else []),
                "prediction",
                *[F.element_at(proba, j + 1).alias(f"proba_{c}") for j, c in enumerate(classes)],
                F.lit(model_uri).alias("model_uri"),
                F.lit(ref.version).cast("string").alias("model_version"),
                F.lit(data_version).alias("data_version"),
            )
        )
        # One Spark job scores, writes and counts: the counts and the confusion cells are
        # observed on the rows as they are written (Observation), not read back from the table.
        # A Delta commit is atomic: a reader sees the previous table or the whole new one.
        observation = Observation("pipectl_inference")
        observed = scored.observe(observation, *tallies(classes, has_labels))
        out_dir.mkdir(parents=True, exist_ok=True)
        (observed.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(str(target)))
        tally = observation.get
        if p.write_csv:
            # A CSV directory of part files, header in each (Spark writes files per partition).
            spark.read.format("delta").load(str(target)).write.mode("overwrite").option("header", "true").csv(
                str(out_dir / "predictions.csv")
            )
    except OSError as exc:
        from ..paths import write_error

        raise DataError(write_error("predictions", target, exc)) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    extra_labels = 0
    if has_labels and tally.get("unknown_labelled", 0):
        # Labels the model has no class for: each is a class of its own in macro-F1 (with F1 0).
        extra_labels = (
            spark.read.format("delta")
            .load(str(target))
            .where((F.col("label") != "") & ~F.col("label").isin(classes))
            .select("label")
            .distinct()
            .count()
        )
    rows, counts, metrics = summarise(tally, classes, has_labels, extra_labels)
    print(f"wrote {rows} predictions to {target}: {counts}")
    if "accuracy" in metrics:
        print(
            f"labelled rows {int(metrics['labelled_rows'])}: accuracy={metrics['accuracy']:.4f} "
            f"f1_macro={metrics['f1_macro']:.4f}"
        )
    metrics.pop("labelled_rows", None)
    return StageResult(
        outputs={
            "predictions_path": str(target),
            "rows": rows,
            "model_uri": model_uri,
            "model_version": ref.version,
            "prediction_counts": counts,
        },
        metrics=metrics,
    )


def spread(spark: Any, df: Any) -> Any:
    """`df` dealt round-robin over max(its partitions, the session's cores) partitions: a split
    is often one Parquet file of one row group, which Spark reads as one non-empty partition (the
    other file splits hold no row group), and scoring would then use one core whatever the
    cluster. It costs one shuffle of the input, small beside scoring it. On Spark Connect
    (serverless), which exposes neither count, `df` as it is."""
    try:
        cores = spark.sparkContext.defaultParallelism
        parts = df.rdd.getNumPartitions()
    except Exception:  # noqa: BLE001 - Spark Connect has no sparkContext/rdd: leave it to the platform
        return df
    return df.repartition(max(parts, cores))


def tallies(classes: list[str], has_labels: bool) -> list[Any]:
    """The aggregates observed while the predictions are written: the row count, the rows
    predicted per class and, with labels, the confusion counts macro-F1 needs."""
    from pyspark.sql import functions as F

    def n(cond: Any, name: str) -> Any:
        return F.sum(F.when(cond, 1).otherwise(0)).cast("long").alias(name)

    pred, out = F.col("prediction"), [F.count(F.lit(1)).alias("rows")]
    out += [n(pred == c, f"predicted_{i}") for i, c in enumerate(classes)]
    if has_labels:
        label = F.col("label")
        known = label != ""
        out += [n(known, "labelled"), n(known & (label == pred), "correct")]
        out += [n(known & ~label.isin(classes), "unknown_labelled")]
        for i, c in enumerate(classes):
            out += [
                n(label == c, f"actual_{i}"),
                n(known & (pred == c), f"labelled_predicted_{i}"),
                n((label == c) & (pred == c), f"tp_{i}"),
            ]
    return out


def summarise(
    tally: dict[str, Any], classes: list[str], has_labels: bool, extra_labels: int = 0
) -> tuple[int, dict[str, int], dict[str, float]]:
    """Row count, prediction counts per class and, when there are labelled rows, accuracy and
    macro-F1 from the observed tallies. Macro-F1 is scikit-learn's
    `f1_score(average="macro", zero_division=0)`: the mean F1 over the classes that occur as a
    label or a prediction of the labelled rows; `extra_labels` counts the labels outside the
    model's classes (F1 0 each)."""
    rows = int(tally.get("rows") or 0)
    counts = {c: int(tally.get(f"predicted_{i}") or 0) for i, c in enumerate(classes)}
    metrics: dict[str, float] = {"rows": rows}
    labelled = int(tally.get("labelled") or 0) if has_labels else 0
    if labelled:
        f1s = []
        for i, _ in enumerate(classes):
            actual = int(tally[f"actual_{i}"] or 0)
            predicted = int(tally[f"labelled_predicted_{i}"] or 0)
            if actual or predicted:
                f1s.append(2 * int(tally[f"tp_{i}"] or 0) / (actual + predicted))
        f1s += [0.0] * extra_labels
        metrics["labelled_rows"] = labelled
        metrics["accuracy"] = int(tally["correct"] or 0) / labelled
        metrics["f1_macro"] = sum(f1s) / len(f1s)
    return rows, counts, metrics


def _save_predict_proba_model(model: Any, path: Path) -> Path:
    """The model, saved as an MLflow model whose pyfunc `predict` is `predict_proba` (MLflow's
    `pyfunc_predict_fn`), for `spark_udf`. Pickled as the train stage pickles it."""
    import mlflow.sklearn

    from .. import tracking as T
    from ..models import pickled_by_value
    from .train import pip_requirements

    T.allow_model_loading()
    with pickled_by_value(), T.mlflow_chatter():
        mlflow.sklearn.save_model(
            model,
            str(path),
            serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba",
            pip_requirements=pip_requirements(),
        )
    return path


def load_input(spark: Any, p: InferenceParams, ctx: Context) -> tuple[Any, str, str]:
    """The rows to score as a Spark DataFrame (id, text and, when known, label), their data
    version and a description for the log."""
    from pyspark.sql import functions as F

    if not p.input_path:
        from ..dataset import load_version

        version = load_version(ctx.data_root, p.data_name, p.data_version)
        df = read_split(spark, version, p.split)
        return df, p.data_version, f"{p.data_name}/{p.data_version} {p.split}"

    from ..csvio import DataError
    from ..spark_data import is_table_name

    table = is_table_name(p.input_path)
    path = ctx.resolve(p.input_path)
    if table or is_delta_table(path) or path.suffix == ".parquet":
        if table:  # a catalog (Unity Catalog) table: catalog.schema.table or schema.table
            fmt, path, raw = "table", Path(p.input_path), spark.table(p.input_path)
        else:
            fmt = "delta" if is_delta_table(path) else "parquet"
            raw = spark.read.format(fmt).load(str(path))
        wanted = {"text_column": p.text_column}
        if p.id_column:
            wanted["id_column"] = p.id_column
        if p.label_column:
            wanted["label_column"] = p.label_column
        lacking = {k: v for k, v in wanted.items() if v not in raw.columns}
        if lacking:
            k, v = next(iter(lacking.items()))
            raise DataError(
                f"{path}: column {v!r} (parameter {k!r}) is not in the {fmt} input; "
                f"it has {', '.join(raw.columns)}"
            )
        if not p.id_column:
            raise DataError(
                f"{path}: a {fmt} input has no row order to number its rows by; "
                "set id_column to the column that identifies a row"
            )
        cols = [
            F.coalesce(F.col(p.id_column).cast("string"), F.lit("")).alias("id"),
            F.coalesce(F.col(p.text_column).cast("string"), F.lit("")).alias("text"),
        ]
        if p.label_column:
            cols.append(F.trim(F.coalesce(F.col(p.label_column).cast("string"), F.lit(""))).alias("label"))
        # A table has a version of its own (Delta) or none (Parquet files): name it by path.
        return raw.select(*cols), f"{fmt}:{path}", str(path)

    # A CSV: parsed as the pandas engine parses it (same encodings, same refusals, ids by row
    # position), then handed to Spark.
    from .inference import load_input as load_pandas

    pdf, data_version = load_pandas(p, ctx)
    return spark.createDataFrame(pdf), data_version, str(path)


def read_split(spark: Any, version: Any, split: str) -> Any:
    """A split of a data version as a Spark DataFrame: the Delta table the spark engine's data
    stage writes, or the Parquet file of the pandas one (the manifest's `format` and `file`)."""
    from pyspark.sql import functions as F

    from ..csvio import DataError

    splits = version.manifest.get("splits", {})
    if split not in splits:
        raise DataError(
            f"split {split!r} is not part of data version {version.path.parent.name}/"
            f"{version.path.name}; available: {', '.join(sorted(splits))}"
        )
    info = splits[split]
    if info.get("format") == "delta":
        df = spark.read.format("delta").load(str(version.path / info.get("file", split)))
    else:
        df = spark.read.parquet(str(version.path / info.get("file", f"{split}.parquet")))
    return df.select(F.col("id").cast("string").alias("id"), "text", "label")
