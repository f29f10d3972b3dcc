"""The data stage on Spark (`engine: "spark"`, docs/STAGES.md, "Engines").

The same rules as the pandas engine, computed on Spark, and the same split row for row:

- The source is a CSV file (read by Spark: same header, quoting and encoding; each row's id is its
  0-based data row, from the file's order), a Delta table (a directory with `_delta_log`) or a
  table name (`catalog.schema.table`, Unity Catalog or the session's catalog). A table has no row
  order: its rows are numbered in (text, label) order, so the id is still deterministic.
- The labels are checked with the pandas engine's own functions (missing-value spellings, case
  clashes): on the distinct spellings first; the column comes to the driver only when they find one.
- Cleaning reuses the pure-Python rules: surrounding whitespace (`str.strip`) and the group key
  (`textkey.group_key`) in Python UDFs, exact duplicates and conflicting groups in Spark, the few
  conflicting groups resolved on the driver with `cleaning.resolve_labels`.
- The split is `split.split_strata`, the pandas engine's deal, fed the sizes of each stratum's groups
  in key order: Spark aggregates the groups and ranks them by key (code point order, as Python's
  `sorted`); the driver gets three integers per group and the assignment goes back as one byte per
  group in a pandas UDF looked up by (stratum, rank). Identical to the pandas engine by construction.
- The splits are Delta tables `<version>/<split>/`; the manifest is the pandas engine's, with
  `"format": "delta"` per split and the same content hashes (rows streamed to the driver in id
  order through `dataset.content_sha256_chunks`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cleaning import CleaningReport, resolve_labels
from .csvio import DELIMITERS, MISSING_LABELS, DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from .context import Context
    from .result import StageResult
    from .stages.data import DataParams

#: A table name: two or three dotted identifiers, no path separator.
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){1,2}$")
_HASH_CHUNK_ROWS = 50_000


def is_table_name(source: str) -> bool:
    return bool(_TABLE_NAME.match(source)) and not source.lower().endswith((".csv", ".txt", ".tsv"))


def _strip(value: str | None) -> str:
    return "" if value is None else value.strip()


def _read_source(spark: SparkSession, p: DataParams, ctx: Context) -> tuple[DataFrame, dict[str, Any], Any]:
    """The source as a DataFrame with a 0-based `__row` column (long), its manifest entry and
    what names it in messages."""
    from pyspark.sql import functions as F

    def numbered(df: DataFrame, order: list[Any] | None = None) -> DataFrame:
        return number_rows(df if order is None else df.orderBy(*order))

    def table_order(df: DataFrame) -> list[Any]:
        first = [p.text_column, p.label_column]
        return [F.col(c).asc_nulls_first() for c in [*first, *[c for c in df.columns if c not in first]]]

    if is_table_name(p.source):
        df = spark.table(p.source)
        columns = [str(c) for c in df.columns]
        entry = _table_entry(spark, p.source, p.source, columns)
        _require(columns, p, p.source)
        return numbered(df, table_order(df)), entry, p.source
    src = ctx.resolve(p.source)
    if (Path(src) / "_delta_log").is_dir():
        df = spark.read.format("delta").load(str(src))
        columns = [str(c) for c in df.columns]
        entry = _table_entry(spark, p.source, f"delta.`{src}`", columns, resolved=str(src))
        _require(columns, p, src)
        return numbered(df, table_order(df)), entry, src
    return _read_csv(spark, p, src, numbered)


def number_rows(df: DataFrame) -> DataFrame:
    """`df` with a 0-based `__row` column (long) in its current order: partition by partition, row
    by row — a CSV file's order, or a sort's. No RDD API (Spark Connect and Databricks serverless
    lack `zipWithIndex`), and no window without a partition: that moves every row into one task
    and, at 10 M rows, out of the driver's heap. The monotonically increasing id is (partition,
    position); one small job counts each partition's rows, and their running sum makes the numbers
    consecutive. The rows are then spread over the shuffle partitions, so the stages after run on
    every core (a multi-line CSV file is read as one partition)."""
    from pyspark.sql import functions as F

    # Not cached: the ids are the same when recomputed (the same file or sort, the same partitions).
    df = df.withColumn("__id", F.monotonically_increasing_id())
    part = F.shiftright(F.col("__id"), 33)
    counts = sorted((int(r["p"]), int(r["count"])) for r in df.groupBy(part.alias("p")).count().collect())
    starts, total = [], 0
    for p, n in counts:
        starts += [F.lit(p).cast("long"), F.lit(total).cast("long")]
        total += n
    first = F.create_map(*starts)[part] if starts else F.lit(0).cast("long")
    row = first + (F.col("__id") - F.shiftleft(part, 33))
    _scale_shuffles(df.sparkSession, total)
    return df.withColumn("__row", row).drop("__id").repartition(F.col("__row"))


#: Rows per shuffle partition the data stage aims at: at 1 M rows, 4 partitions (250 k rows each)
#: fit a 2g local heap; at 10 M rows 4 partitions did not (B7).
_ROWS_PER_PARTITION = 250_000


def _scale_shuffles(spark: SparkSession, rows: int) -> None:
    """Raise the session's shuffle partitions to one per `_ROWS_PER_PARTITION` rows (never lower
    them: a cluster's setting stays when it is larger). The local session's 4 keep small inputs
    fast (200 made the tests 5x slower); this keeps large ones from holding millions of rows per
    task."""
    import math

    wanted = math.ceil(rows / _ROWS_PER_PARTITION)
    try:
        current = int(spark.conf.get("spark.sql.shuffle.partitions", "200"))
        if wanted > current:
            spark.conf.set("spark.sql.shuffle.partitions", str(wanted))
            print(f"spark engine: {wanted} shuffle partitions for {rows} rows")
    except Exception:  # noqa: BLE001 - a compute that refuses the setting keeps its own
        return


def _table_entry(
    spark: SparkSession, path: str, ref: str, columns: list[str], resolved: str | None = None
) -> dict[str, Any]:
    """A table's manifest entry: its name or path and the Delta version read, fingerprinted."""
    version = None
    try:
        version = spark.sql(f"DESCRIBE HISTORY {ref} LIMIT 1").collect()[0]["version"]
    except Exception:  # noqa: BLE001 - not a Delta table (a view, another format): no version to record
        version = None
    fingerprint = f"table {ref} version {version}"
    return {
        "path": path,
        **({"resolved_path": resolved} if resolved else {}),
        "format": "table",
        "table_version": version,
        "sha256": hashlib.sha256(fingerprint.encode()).hexdigest(),
        "columns": columns,
    }


def _require(columns: list[str], p: DataParams, src: Any) -> None:
    from .csvio import require_columns

    class _Cols:  # require_columns reads `.columns` only
        def __init__(self, cols: list[str]) -> None:
            self.columns = cols

    wanted = {"text_column": p.text_column, "label_column": p.label_column}
    for i, col in enumerate(p.stratify or []):
        wanted[f"stratify[{i}]"] = col
    require_columns(_Cols(columns), wanted, src)  # type: ignore[arg-type]


def _read_csv(
    spark: SparkSession, p: DataParams, src: Path, numbered: Any
) -> tuple[DataFrame, dict[str, Any], Any]:
    import codecs

    from .csvio import check_not_binary, decode, read_bytes

    decode(b"", p.encoding, src)  # an unknown encoding: the pandas engine's refusal
    if not Path(src).exists():
        read_bytes(src)  # its refusal names the file
    # The fingerprint and the encoding check stream the file: the driver never holds it whole,
    # unless it is refused: then the pandas engine's decode reads it to name the row and column.
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(p.encoding)("strict")
    size = 0
    with open(src, "rb") as f:
        while chunk := f.read(1 << 22):
            if size == 0:
                check_not_binary(chunk[:8], p.encoding, src)  # magic numbers, byte order marks
            digest.update(chunk)
            try:
                decoder.decode(chunk)
                bad = b"\x00" in chunk and not codecs.lookup(p.encoding).name.startswith(("utf-16", "utf-32"))
            except UnicodeDecodeError:
                bad = True
            if bad:
                decode(read_bytes(src), p.encoding, src)  # raises, as the pandas engine would
            size += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        decode(read_bytes(src), p.encoding, src)
    if size == 0:
        raise DataError(f"{src}: the file is empty; expected a header row, then one row per text")
    reader = (
        spark.read.option("header", "true")
        .option("multiLine", "true")  # quoted fields may hold newlines; one file, read in order
        .option("escape", '"')  # RFC 4180 quoting, as pandas reads it
        .option("encoding", p.encoding)
        .option("sep", DELIMITERS[p.delimiter])
        .option("mode", "FAILFAST")
        .option("inferSchema", "false")
        .option("enforceSchema", "false")
    )
    df = reader.csv(str(src))
    # A UTF-8 byte order mark stays on the first header name in Spark; pandas drops it.
    renamed = [c.lstrip("\ufeff") for c in df.columns]
    df = df.toDF(*renamed)
    columns = [str(c) for c in df.columns]
    _require(columns, p, src)
    entry = {
        "path": p.source,
        "resolved_path": str(src),
        "sha256": digest.hexdigest(),
        "bytes": size,
        "encoding": p.encoding,
        "columns": columns,
    }
    return numbered(df), entry, src


def create_spark(p: DataParams, ctx: Context) -> StageResult:
    from .spark import get_spark

    # First: without pyspark it raises the error that names the Spark venv.
    spark = get_spark(app_name=f"pipectl data {p.data_name}/{p.data_version}")

    import numpy as np
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, IntegerType, StringType, StructField, StructType

    from .csvio import check_labels, label_case_folds
    from .dataset import content_sha256_chunks
    from .split import TRAIN, SplitError, split_strata
    from .stages.data import build_manifest, finish, strata_error
    from .textkey import group_key

    df, source, src = _read_source(spark, p, ctx)
    df = df.transform(_cache)
    n_raw = df.count()
    if n_raw == 0:
        raise DataError(
            f"{src}: the file has a header ({', '.join(repr(c) for c in source['columns'])}) but no data rows"
        )
    source["rows"] = n_raw

    # The labels' checks look at the distinct spellings (few); only when one finds something (a
    # missing-value spelling, labels differing by case) does the label column come to the driver,
    # in row order, through the pandas engine's own functions, for their exact messages and folds.
    spellings = [
        r["l"] for r in df.select(F.col(p.label_column).cast("string").alias("l")).distinct().collect()
    ]
    stripped = {x.strip() for x in spellings if x is not None and x.strip()}
    by_case: dict[str, set[str]] = {}
    for x in stripped:
        by_case.setdefault(x.casefold(), set()).add(x)
    folds: dict[str, str] = {}
    if any(x.lower() in MISSING_LABELS for x in stripped) or any(len(v) > 1 for v in by_case.values()):
        import pandas as pd

        label_rows = df.select("__row", F.col(p.label_column).cast("string").alias("l")).orderBy("__row")
        labels = pd.DataFrame({p.label_column: [r["l"] for r in label_rows.toLocalIterator()]})
        check_labels(labels, p.label_column, src)
        folds = label_case_folds(labels, p.label_column, src, p.label_case)
        del labels

    # The UDFs run the pandas engine's own Python (str.strip, textkey.group_key), shipped by value:
    # the Python workers (local, or a cluster's) need not import this package.
    _ship_by_value()
    strip_udf = F.udf(lambda v: _strip(v), StringType())
    key_udf = F.udf(lambda t: group_key(t), StringType())
    extra = [c for c in (p.stratify or []) if c not in (p.label_column, p.text_column)]
    frame = df.select(
        F.col("__row").alias("row"),
        strip_udf(F.col(p.text_column).cast("string")).alias("text"),
        strip_udf(F.col(p.label_column).cast("string")).alias("label"),
        *[F.coalesce(F.col(c).cast("string"), F.lit("")).alias(f"stratum_{i}") for i, c in enumerate(extra)],
    )
    if folds:
        mapping = F.create_map(*[F.lit(x) for kv in folds.items() for x in kv])
        frame = frame.withColumn("label", F.coalesce(mapping[F.col("label")], F.col("label")))
        print(
            "label_case fold: "
            + ", ".join(f"{old!r} -> {new!r}" for old, new in sorted(folds.items()))
            + f" in column {p.label_column!r}"
        )

    damaged_rows = (
        df.filter(F.instr(F.coalesce(F.col(p.text_column).cast("string"), F.lit("")), "\ufffd") > 0)
        .select("__row", F.col(p.text_column).cast("string").alias("t"))
        .orderBy("__row")
    )
    n_damaged = damaged_rows.count()
    damaged = None
    warnings: list[str] = []
    if n_damaged:
        from .csvio import replacement_message

        first = damaged_rows.limit(5).collect()
        msg = replacement_message(
            src, p.text_column, n_damaged, [r["__row"] + 1 for r in first], first[0]["t"]
        )
        damaged = (n_damaged, msg)
        warnings = [msg]
        print(f"warning: {msg}")
    print(f"read {n_raw} rows from {src}")

    report = CleaningReport(rows_raw=n_raw)
    frame = frame.transform(_cache)
    counts = frame.agg(
        F.sum((F.col("text") == "").cast("long")).alias("empty"),
        F.sum(((F.col("label") == "") & (F.col("text") != "")).cast("long")).alias("missing"),
    ).collect()[0]
    report.empty_text = int(counts["empty"] or 0)
    report.missing_label = int(counts["missing"] or 0)
    kept = frame.filter((F.col("text") != "") & (F.col("label") != ""))
    # Exact duplicates: the first occurrence (lowest row) of each (text, label) stays.
    first = Window.partitionBy("text", "label").orderBy("row")
    deduped = kept.withColumn("_n", F.row_number().over(first)).filter(F.col("_n") == 1).drop("_n")
    deduped = deduped.withColumn("group", key_udf(F.col("text"))).transform(_cache)
    n_deduped = deduped.count()
    report.duplicates_removed = (n_raw - report.empty_text - report.missing_label) - n_deduped

    conflicting = deduped.groupBy("group").agg(F.countDistinct("label").alias("n")).filter(F.col("n") > 1)
    conflict_rows = (
        deduped.join(conflicting.select("group"), "group")
        .groupBy("group")
        .agg(F.sort_array(F.collect_list(F.struct("row", "label"))).alias("rows"))
        .collect()
    )
    report.conflict_groups = len(conflict_rows)
    cleaned = deduped
    if conflict_rows:
        resolved = {
            r["group"]: resolve_labels([x["label"] for x in r["rows"]], p.conflicts) for r in conflict_rows
        }
        report.conflict_groups_dropped = sum(v is None for v in resolved.values())
        report.conflict_rows_relabelled = sum(
            1 for r in conflict_rows for x in r["rows"] if resolved[r["group"]] not in (None, x["label"])
        )
        table = spark.createDataFrame(
            [(g, v) for g, v in resolved.items()],
            StructType(
                [StructField("group", StringType(), False), StructField("resolved", StringType(), True)]
            ),
        )
        marked = deduped.join(F.broadcast(table.withColumn("_c", F.lit(True))), "group", "left")
        in_conflict = F.col("_c").isNotNull()
        relabelled = marked.filter(~in_conflict | F.col("resolved").isNotNull()).withColumn(
            "label", F.when(in_conflict, F.col("resolved")).otherwise(F.col("label"))
        )
        # Relabelled rows can now equal another row of their group: the first stays.
        again = Window.partitionBy("text", "label").orderBy("row")
        cleaned = (
            relabelled.withColumn("_n", F.when(in_conflict, F.row_number().over(again)).otherwise(F.lit(1)))
            .filter(F.col("_n") == 1)
            .drop("_n", "_c", "resolved")
        )
    cleaned = cleaned.transform(_cache)
    report.rows_clean = cleaned.count()
    report.conflict_rows_removed = n_deduped - report.rows_clean
    print("cleaning: " + ", ".join(f"{k}={v}" for k, v in report.as_dict().items()))
    if report.rows_clean == 0:
        raise DataError(
            f"{src}: no rows left after cleaning ({report.empty_text} empty texts in column "
            f"{p.text_column!r}, {report.missing_label} missing labels in column {p.label_column!r}, "
            f"{report.duplicates_removed} duplicates, {report.conflict_rows_removed} removed by "
            f"conflicts={p.conflicts})"
        )
    classes = sorted(r["label"] for r in cleaned.select("label").distinct().collect())
    if len(classes) < 2:
        raise DataError(
            f"{src}: only one class ({classes[0]!r}, {report.rows_clean} rows) is left after "
            f"cleaning column {p.label_column!r}; a classifier needs at least two"
        )

    # The stratum of a row, as the pandas engine spells it: a value, or a tuple of values.
    def stratum_expr(col: str) -> Any:
        if col == p.label_column:
            return F.col("label")
        if col == p.text_column:
            return F.col("text")
        return F.col(f"stratum_{extra.index(col)}")

    strat_cols = [stratum_expr(c) for c in p.stratify] if p.stratify is not None else [F.lit("")]
    with_stratum = cleaned.withColumn("stratum", F.array(*strat_cols))
    groups = with_stratum.groupBy("group").agg(
        F.count(F.lit(1)).alias("size"), F.min_by("stratum", "row").alias("stratum")
    )

    def as_stratum(values: list[str]) -> Any:
        return (
            values[0] if len(values) == 1 and (p.stratify is None or len(p.stratify) == 1) else tuple(values)
        )

    # The strata are few: number them, and each group by its key's rank within its stratum (Spark
    # orders strings by code point, as Python's sorted does). The driver gets three numbers per group.
    per = (
        groups.groupBy("stratum")
        .agg(F.count(F.lit(1)).alias("groups"), F.sum("size").alias("rows"))
        .orderBy("stratum")
        .collect()
    )
    strata = [as_stratum(list(r["stratum"])) for r in per]
    fractions = {"test": p.test_size}
    if p.holdout:
        fractions["holdout"] = p.holdout_size
    needed = len(fractions) + 1
    if p.stratify is not None:
        for s, r in sorted(zip(strata, per, strict=True), key=lambda x: repr(x[0])):
            if r["groups"] < needed:
                rows = (
                    with_stratum.filter(F.col("stratum") == F.array(*[F.lit(v) for v in r["stratum"]]))
                    .select("row")
                    .orderBy("row")
                    .limit(5)
                    .collect()
                )
                first_rows = [x["row"] + 1 for x in rows]
                raise strata_error(p, src, s, first_rows, int(r["rows"]), int(r["groups"]), needed)
    codes = spark.createDataFrame(
        [(list(r["stratum"]), i) for i, r in enumerate(per)],
        StructType(
            [
                StructField("stratum", ArrayType(StringType()), False),
                StructField("code", IntegerType(), False),
            ]
        ),
    )
    ranked = (
        groups.join(F.broadcast(codes), "stratum")
        .withColumn("rank", F.row_number().over(Window.partitionBy("code").orderBy("group")) - F.lit(1))
        .select("group", "code", "rank", "size")
        .transform(_cache)
    )
    table = ranked.select("code", "rank", "size").toArrow()
    code = table.column("code").to_numpy()
    rank = table.column("rank").to_numpy()
    size = table.column("size").to_numpy()
    del table
    by = np.lexsort((rank, code))  # by stratum, then key order
    code, rank, size = code[by], rank[by], size[by]
    bounds = np.searchsorted(code, np.arange(len(per) + 1))
    sizes_by_stratum = {strata[i]: size[bounds[i] : bounds[i + 1]] for i in range(len(per))}
    try:
        dest = split_strata(sizes_by_stratum, fractions, p.seed)
    except SplitError as exc:
        raise DataError(f"{src}: column {p.label_column!r}: {exc}") from None
    dest_all = np.concatenate([dest[strata[i]] for i in range(len(per))]) if per else np.zeros(0, np.int8)
    # The assignment goes back as one byte per group inside a vectorised UDF (Spark ships a large
    # function once per executor), not as a DataFrame built on the driver: at 1 M groups that was a
    # 24 MB task and, at 10 M, more than the driver's heap.
    dest_of = dest_lookup(dest_all, bounds[:-1])
    names = F.array(*[F.lit(n) for n in [TRAIN, *fractions]])
    final = (
        ranked.select("group", names[dest_of(F.col("code"), F.col("rank")).cast("int")].alias("split"))
        .join(cleaned, "group")
        .select(F.col("row").cast("string").alias("id"), "text", "label", "split", F.col("row"))
        .transform(_cache)
    )

    split_info: dict[str, dict[str, Any]] = {}
    for name in [TRAIN, *fractions]:
        part = final.filter(F.col("split") == name).orderBy("row").select("id", "text", "label")
        label_counts = {str(r["label"]): int(r["count"]) for r in part.groupBy("label").count().collect()}
        chunks = _chunks((r["id"], r["text"], r["label"]) for r in part.toLocalIterator())
        split_info[name] = {
            "file": name,
            "format": "delta",
            "rows": sum(label_counts.values()),
            "labels": dict(sorted(label_counts.items())),
            "sha256": content_sha256_chunks(chunks),
        }

    def write(tmp: Path) -> None:
        for name in split_info:
            (
                final.filter(F.col("split") == name)
                .orderBy("row")
                .select("id", "text", "label")
                .write.format("delta")
                .mode("errorifexists")
                .save(str(tmp / name))
            )

    manifest = build_manifest(p, ctx, source, report.as_dict(), classes, folds, warnings, split_info)
    manifest["engine"] = "spark"
    try:
        master = spark.conf.get("spark.master", "Databricks")
    except Exception:  # noqa: BLE001 - serverless compute hides some configurations
        master = "Databricks"
    print(f"spark engine: Spark {spark.version}, {master}")
    return finish(p, ctx, write, manifest, damaged)


def dest_lookup(dest: Any, starts: Any) -> Any:
    """A pandas UDF (code, rank) -> dest[starts[code] + rank]: the split of the rank-th group of the
    code-th stratum, from the deal's flat array (strata in code order, groups in rank order)."""
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F
    from pyspark.sql.types import ByteType

    dest = np.asarray(dest, dtype=np.int8)
    starts = np.asarray(starts, dtype=np.int64)

    def lookup(code: pd.Series, rank: pd.Series) -> pd.Series:
        return pd.Series(dest[starts[code.to_numpy()] + rank.to_numpy()], dtype=np.int8)

    # Spark reads the UDF's kind from its type hints; this module's are strings (PEP 563).
    lookup.__annotations__ = {"code": pd.Series, "rank": pd.Series, "return": pd.Series}
    return F.pandas_udf(lookup, ByteType())


def _ship_by_value() -> None:
    """Pickle the UDFs' modules by value (pyspark's cloudpickle), like models.pickled_by_value."""
    import sys

    from pyspark import cloudpickle

    from . import textkey

    cloudpickle.register_pickle_by_value(textkey)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _cache(df: DataFrame) -> DataFrame:
    """Cache where the compute allows it (Databricks serverless does not): recomputing is correct,
    only slower."""
    try:
        return df.cache()
    except Exception:  # noqa: BLE001 - the compute refuses caching: go on without
        return df


def _chunks(rows: Any, size: int = _HASH_CHUNK_ROWS) -> Any:
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
