"""The inference stage on Spark (engine "spark") gives what the pandas engine gives: the same
predictions row for row, the same probabilities, counts and metrics, the same columns; only the
predictions are a Delta table. One local[2] session for the module (get_spark); skipped where
pyspark is not installed (the pandas venv), except the tests that need no Spark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, SAMPLE_CSV


def _run(notebook_module: Any, **params: Any) -> Any:
    return notebook_module.run({k: v if isinstance(v, str) else str(v) for k, v in params.items()})


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    pytest.importorskip("delta")
    from sentiment.spark import get_spark

    return get_spark()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, spark: Any) -> dict[str, Any]:
    """A data version of the sample and a registered logistic regression, in a temporary store."""
    import os

    from sentiment.stages import data, train

    root = tmp_path_factory.mktemp("spark-inference")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ctx = {
        "data_root": str(root / "data"),
        "output_root": str(root / "predictions"),
        "project_root": str(REPO),
        "mlflow_tracking_uri": uri,
        "mlflow_registry_uri": uri,
    }
    cwd = os.getcwd()
    os.chdir(root)  # a sqlite store puts its artifacts under ./mlruns
    try:
        _run(data, **ctx, source=str(SAMPLE_CSV), data_name="fn", data_version="v1")
        trained = _run(
            train,
            **ctx,
            data_name="fn",
            data_version="v1",
            model_name="m",
            model_type="logistic_regression",
            features='{"char_ngram": null}',
            pipectl_run_id="train-1",
        )
    finally:
        os.chdir(cwd)
    return {"ctx": ctx, "model": trained.outputs["model_uri"], "root": root}


def _infer(store: dict[str, Any], engine: str, run_id: str, **params: Any) -> Any:
    from sentiment.stages import inference

    return _run(
        inference, **store["ctx"], model=store["model"], engine=engine, pipectl_run_id=run_id, **params
    )


def _frame(spark: Any, result: Any) -> Any:
    """The predictions of a run, ordered by id (a Delta table has no row order)."""
    import pandas as pd

    path = result.outputs["predictions_path"]
    if path.endswith(".delta"):
        df = spark.read.format("delta").load(path).toPandas()
    else:
        df = pd.read_parquet(path)
    return df.sort_values("id", key=lambda s: s.astype(int)).reset_index(drop=True)


def _same_as_pandas(spark: Any, pandas_result: Any, spark_result: Any) -> None:
    import pandas as pd

    a, b = _frame(spark, pandas_result), _frame(spark, spark_result)
    assert spark_result.outputs["predictions_path"].endswith("/predictions.delta")
    assert list(b.columns) == list(a.columns)
    probas = [c for c in a.columns if c.startswith("proba_")]
    rest = [c for c in a.columns if c not in probas]
    pd.testing.assert_frame_equal(b[rest], a[rest], check_dtype=False)  # predictions row for row
    assert (b[probas] - a[probas]).abs().max().max() < 1e-12
    same = {k: v for k, v in pandas_result.outputs.items() if k != "predictions_path"}
    assert {k: v for k, v in spark_result.outputs.items() if k != "predictions_path"} == same
    assert spark_result.metrics.keys() == pandas_result.metrics.keys()
    for k, v in pandas_result.metrics.items():
        assert spark_result.metrics[k] == pytest.approx(v, abs=1e-12), k


def test_split_scores_as_pandas_does(spark: Any, store: dict[str, Any]) -> None:
    split = {"data_name": "fn", "data_version": "v1", "split": "holdout"}
    pandas_result = _infer(store, "pandas", "split-pandas", **split)
    spark_result = _infer(store, "spark", "split-spark", **split)
    _same_as_pandas(spark, pandas_result, spark_result)
    assert {"accuracy", "f1_macro"} <= spark_result.metrics.keys()
    log = Path(spark_result.outputs["predictions_path"]) / "_delta_log"
    assert log.is_dir()


def test_spark_data_version_scores_as_pandas_does(spark: Any, store: dict[str, Any]) -> None:
    """A data version the spark engine wrote (Delta splits) is read by both engines; the split is
    the pandas one row for row, so are the predictions."""
    from sentiment.stages import data

    _run(data, **store["ctx"], source=str(SAMPLE_CSV), data_name="fn", data_version="v2", engine="spark")
    split = {"data_name": "fn", "data_version": "v2", "split": "holdout"}
    pandas_v1 = _infer(store, "pandas", "v1-pandas", data_name="fn", data_version="v1", split="holdout")
    spark_v2 = _infer(store, "spark", "v2-spark", **split)
    pandas_v2 = _infer(store, "pandas", "v2-pandas", **split)
    _same_as_pandas(spark, pandas_v2, spark_v2)
    a, b = _frame(spark, pandas_v1), _frame(spark, spark_v2)
    assert b["prediction"].tolist() == a["prediction"].tolist()
    assert b["id"].tolist() == a["id"].tolist()


def test_csv_with_labels_scores_as_pandas_does(spark: Any, store: dict[str, Any]) -> None:
    csv = {"input_path": str(SAMPLE_CSV), "text_column": "Sentence", "label_column": "Sentiment"}
    pandas_result = _infer(store, "pandas", "csv-pandas", **csv)
    spark_result = _infer(store, "spark", "csv-spark", **csv)
    _same_as_pandas(spark, pandas_result, spark_result)
    assert spark_result.outputs["rows"] == 406


def test_delta_table_input(spark: Any, store: dict[str, Any]) -> None:
    """A Delta table as input (here the predictions of another run): it needs id_column, having
    no row order; scored again, the predictions are the same."""
    from sentiment.csvio import DataError

    first = _infer(store, "spark", "table-1", data_name="fn", data_version="v1", split="holdout")
    table = first.outputs["predictions_path"]
    with pytest.raises(DataError, match="set id_column"):
        _infer(store, "spark", "table-2", input_path=table, text_column="text")
    with pytest.raises(DataError, match="column 'no_such'"):
        _infer(store, "spark", "table-2", input_path=table, text_column="no_such", id_column="id")
    again = _infer(
        store, "spark", "table-3", input_path=table, text_column="text", id_column="id", label_column="label"
    )
    a, b = _frame(spark, first), _frame(spark, again)
    assert b["prediction"].tolist() == a["prediction"].tolist()
    assert again.metrics == pytest.approx(first.metrics)
    assert set(b["data_version"]) == {f"delta:{table}"}

    # The same rows as a catalog table (Unity Catalog on Databricks; the session's catalog here).
    spark.read.format("delta").load(table).write.format("delta").mode("overwrite").saveAsTable(
        "default.scored_once"
    )
    named = _infer(
        store,
        "spark",
        "table-4",
        input_path="default.scored_once",
        text_column="text",
        id_column="id",
        label_column="label",
    )
    assert _frame(spark, named)["prediction"].tolist() == a["prediction"].tolist()
    assert set(_frame(spark, named)["data_version"]) == {"table:default.scored_once"}


def test_rerun_replaces_the_table(spark: Any, store: dict[str, Any]) -> None:
    """The same run id again (a retried attempt) leaves one table of the latest rows, not two
    runs' rows."""
    split = {"data_name": "fn", "data_version": "v1", "split": "holdout"}
    first = _infer(store, "spark", "again", **split)
    second = _infer(store, "spark", "again", **split)
    assert len(_frame(spark, second)) == second.outputs["rows"] == first.outputs["rows"]


def test_macro_f1_matches_scikit_learn() -> None:
    """summarise's arithmetic is scikit-learn's f1_score(average="macro", zero_division=0),
    including a class never predicted and a label the model does not know. No Spark needed."""
    from sklearn.metrics import accuracy_score, f1_score

    from sentiment.stages.inference_spark import summarise

    classes = ["negative", "neutral", "positive"]
    y_true = ["negative", "neutral", "neutral", "positive", "mixed", "neutral", "", "positive"]
    y_pred = ["neutral", "neutral", "neutral", "positive", "neutral", "positive", "neutral", "neutral"]
    tally: dict[str, Any] = {"rows": len(y_true)}
    known = [(t, p) for t, p in zip(y_true, y_pred, strict=True) if t]
    tally["labelled"] = len(known)
    tally["correct"] = sum(t == p for t, p in known)
    tally["unknown_labelled"] = sum(t not in classes for t, _ in known)
    for i, c in enumerate(classes):
        tally[f"predicted_{i}"] = y_pred.count(c)
        tally[f"actual_{i}"] = sum(t == c for t, _ in known)
        tally[f"labelled_predicted_{i}"] = sum(p == c for _, p in known)
        tally[f"tp_{i}"] = sum(t == c == p for t, p in known)
    rows, counts, metrics = summarise(tally, classes, True, extra_labels=1)
    t, p = [k[0] for k in known], [k[1] for k in known]
    assert rows == 8 and counts == {"negative": 0, "neutral": 6, "positive": 2}
    assert metrics["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert metrics["f1_macro"] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
