"""The data stage's spark engine (sentiment/spark_data.py) against the pandas engine: the same
cleaning, the same split row for row, Delta splits the train stage reads, and the size refusal.

Runs in the Spark venv (notebooks/requirements-spark.txt; `make py-test-spark`), on one local[2]
session for the module; the pandas venv skips it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pyspark")
pytest.importorskip("delta")

from conftest import REPO, SAMPLE_CSV, SHARED_CSV

from sentiment.dataset import SplitTooLargeError, load_split, load_version
from sentiment.stages import data


@pytest.fixture(scope="module")
def spark():
    from sentiment.spark import get_spark

    session = get_spark(app_name="pipectl tests")
    yield session
    session.stop()


def run(source: Path | str, engine: str, root: Path, **params: str) -> dict:
    raw = {
        "source": str(source),
        "engine": engine,
        "data_root": str(root / engine),
        "data_name": "d",
        "data_version": "v1",
        "project_root": str(REPO),
        **params,
    }
    data.run(raw)
    return json.loads((root / engine / "d" / "v1" / "manifest.json").read_text())


def assert_same(root: Path, pandas_m: dict, spark_m: dict) -> None:
    assert spark_m["cleaning"] == pandas_m["cleaning"]
    assert spark_m["labels"] == pandas_m["labels"]
    assert spark_m["source"]["sha256"] == pandas_m["source"]["sha256"]
    assert spark_m["source"]["rows"] == pandas_m["source"]["rows"]
    assert set(spark_m["splits"]) == set(pandas_m["splits"])
    for name, info in pandas_m["splits"].items():
        other = spark_m["splits"][name]
        assert other["format"] == "delta"
        assert (other["rows"], other["labels"], other["sha256"]) == (
            info["rows"],
            info["labels"],
            info["sha256"],
        )
        # Row for row: the ids, texts and labels as the train stage reads them.
        a = load_split(load_version(root / "pandas", "d", "v1"), name)
        b = load_split(load_version(root / "spark", "d", "v1"), name)
        assert b["id"].tolist() == a["id"].tolist()
        assert b.equals(a)


def test_sample_split_is_the_pandas_split(spark, tmp_path: Path) -> None:
    assert_same(tmp_path, run(SAMPLE_CSV, "pandas", tmp_path), run(SAMPLE_CSV, "spark", tmp_path))


@pytest.mark.skipif(not SHARED_CSV.exists(), reason=f"{SHARED_CSV} not found (set PIPECTL_SHARED_DATA)")
def test_financial_news_split_is_the_pandas_split(spark, tmp_path: Path) -> None:
    pandas_m = run(SHARED_CSV, "pandas", tmp_path)
    spark_m = run(SHARED_CSV, "spark", tmp_path)
    # 6 duplicates and 514 conflicting sentences (/work/shared/data/README.md) go the same way.
    assert spark_m["cleaning"]["conflict_groups"] == 514
    assert_same(tmp_path, pandas_m, spark_m)


@pytest.mark.parametrize("conflicts", ["drop", "majority", "prefer_non_neutral"])
def test_rules_match_on_awkward_rows(spark, tmp_path: Path, conflicts: str) -> None:
    """Surrounding and Unicode spaces, case and spacing variants of one sentence with other labels,
    quoted newlines and commas, empty texts and labels, a byte order mark, label case folding, a
    second stratification column."""
    rows = ["\ufeffSentence,Sentiment,Source"]
    for i in range(60):
        label = ["positive", "negative", "neutral"][i % 3]
        rows.append(f'"Sentence number {i}, with a comma",{label},{"ab"[i % 2]}')
    rows += [
        '"  Profit rose\u00a0",positive,a',
        '"profit   ROSE",neutral,b',
        '"Profit rose",negative,a',
        '"Profit rose",neutral,a',
        '"Two\nlines",Positive,b',
        '"Two\nlines",positive,b',
        ",neutral,a",
        '"No label",,b',
        '"Sentence number 1, with a comma",negative,b',
    ]
    path = tmp_path / "awkward.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    params = {
        "conflicts": conflicts,
        "label_case": "fold",
        "stratify": '["Sentiment", "Source"]',
        "seed": "7",
    }
    assert_same(tmp_path, run(path, "pandas", tmp_path, **params), run(path, "spark", tmp_path, **params))


def test_same_refusals(spark, tmp_path: Path) -> None:
    from sentiment.csvio import DataError

    path = tmp_path / "missing.csv"
    path.write_text("Sentence,Sentiment\nGood,positive\nBad,N/A\nFine,neutral\n", encoding="utf-8")
    errors = []
    for engine in ("pandas", "spark"):
        with pytest.raises(DataError) as exc:
            run(path, engine, tmp_path)
        errors.append(str(exc.value))
    assert errors[0] == errors[1]
    wrong = tmp_path / "cols.csv"
    wrong.write_text("Text,Label\nGood,positive\n", encoding="utf-8")
    errors = []
    for engine in ("pandas", "spark"):
        with pytest.raises(DataError) as exc:
            run(wrong, engine, tmp_path)
        errors.append(str(exc.value))
    assert errors[0] == errors[1]


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        ("Sentence,Sentiment\nGood,positive\nCaf\xe9 bad,negative\n".encode("latin-1"), "utf-8"),
        (b"Sentence,Sentiment\nGood,positive\nB\x00ad,negative\n", "utf-8"),
        (b"\x1f\x8b\x08\x00rest", "utf-8"),
        (b"Sentence,Sentiment\nGood,positive\n", "no-such-codec"),
        (b"", "utf-8"),
    ],
    ids=["undecodable", "nul", "gzip", "unknown-encoding", "empty"],
)
def test_same_file_refusals(spark, tmp_path: Path, content: bytes, encoding: str) -> None:
    from sentiment.params import ParamError

    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    errors = []
    for engine in ("pandas", "spark"):
        with pytest.raises((ValueError, ParamError)) as exc:
            run(path, engine, tmp_path, encoding=encoding)
        errors.append(str(exc.value))
    assert errors[0] == errors[1]


def test_delta_table_source(spark, tmp_path: Path) -> None:
    """A Delta table as the source: rows are numbered in (text, label) order; cleaning and class
    counts are the CSV's."""
    pandas_m = run(SAMPLE_CSV, "pandas", tmp_path)
    table = tmp_path / "raw_delta"
    spark.read.option("header", "true").option("multiLine", "true").option("escape", '"').csv(
        str(SAMPLE_CSV)
    ).write.format("delta").save(str(table))
    spark_m = run(table, "spark", tmp_path)
    assert spark_m["source"]["format"] == "table"
    assert spark_m["source"]["table_version"] == 0
    assert spark_m["cleaning"] == pandas_m["cleaning"]
    assert {k: v["rows"] for k, v in spark_m["splits"].items()} == {
        k: v["rows"] for k, v in pandas_m["splits"].items()
    }


def test_train_refuses_a_split_above_its_limits(spark, tmp_path: Path) -> None:
    run(SAMPLE_CSV, "spark", tmp_path)
    version = load_version(tmp_path / "spark", "d", "v1")
    rows = version.manifest["splits"]["train"]["rows"]
    with pytest.raises(SplitTooLargeError, match=rf"{rows} rows, above max_split_rows 100"):
        load_split(version, "train", max_rows=100)
    with pytest.raises(SplitTooLargeError, match=r"bytes of Parquet .* above max_split_bytes 1000:"):
        load_split(version, "train", max_bytes=1000)
    assert len(load_split(version, "train", max_rows=rows)) == rows

    # Through the train stage's parameters: refused before any MLflow run starts.
    from sentiment.stages import train

    with pytest.raises(SplitTooLargeError, match="max_split_rows 10"):
        train.run(
            {
                "data_root": str(tmp_path / "spark"),
                "data_name": "d",
                "data_version": "v1",
                "project_root": str(REPO),
                "max_split_rows": "10",
                "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
            }
        )


def test_rows_are_numbered_in_order_without_one_big_task(spark) -> None:
    """Row numbers follow the partitions' order (a file's, or a sort's) and stay consecutive across
    partitions of unequal sizes; the numbered rows are spread over partitions, not gathered into one
    task (a window without a partition did that: at 10 M rows it ran out of the driver's heap)."""
    from pyspark.sql import functions as F

    from sentiment.spark_data import number_rows

    # Three partitions of 5, 0 and 995 rows, in that order: 1000 rows whose value is their position.
    parts = spark.range(0, 5, numPartitions=1).union(spark.range(5, 5, numPartitions=1))
    source = parts.union(spark.range(5, 1000, numPartitions=1))
    numbered = number_rows(source)
    rows = numbered.select("id", "__row").collect()
    assert sorted((r["__row"], r["id"]) for r in rows) == [(i, i) for i in range(1000)]
    # Spark merges small partitions into one (adaptive execution): at 1000 rows, only without that.
    spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
    try:
        # Collected whole: a query of the partition ids alone would skip computing `__row`.
        spread = numbered.select("__row", F.spark_partition_id().alias("part")).collect()
        assert len({r["part"] for r in spread}) > 1
    finally:
        spark.conf.unset("spark.sql.adaptive.coalescePartitions.enabled")

    reverse = number_rows(spark.range(0, 1000, numPartitions=4).orderBy(F.col("id").desc()))
    assert {r["__row"]: r["id"] for r in reverse.collect()} == {i: 999 - i for i in range(1000)}


def test_large_inputs_get_more_shuffle_partitions(spark, monkeypatch) -> None:
    """Shuffles scale with the rows (one partition per `_ROWS_PER_PARTITION`), never below the
    session's setting: 4 fixed partitions held 2.5 M rows per task at 10 M rows and ran out of heap."""
    from sentiment import spark_data

    before = spark.conf.get("spark.sql.shuffle.partitions")
    monkeypatch.setattr(spark_data, "_ROWS_PER_PARTITION", 100)
    try:
        spark_data.number_rows(spark.range(0, 1000, numPartitions=2))
        assert int(spark.conf.get("spark.sql.shuffle.partitions")) == max(10, int(before))
        spark_data.number_rows(spark.range(0, 10, numPartitions=1))
        assert int(spark.conf.get("spark.sql.shuffle.partitions")) == max(10, int(before))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)
