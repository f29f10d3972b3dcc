"""The `engine` parameter of the data and inference stages, in the pandas venv."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_CSV

from sentiment.params import ParamError
from sentiment.stages import data


def test_engine_is_pandas_or_spark() -> None:
    raw = {**data.WIDGETS, "engine": "dask"}
    with pytest.raises(ParamError, match="parameter 'engine' must be one of pandas, spark; got"):
        data.DataParams.parse(raw)
    assert data.DataParams.parse({**data.WIDGETS, "engine": ""}).engine == "pandas"


def test_engine_is_not_part_of_a_versions_identity() -> None:
    a = data.DataParams.parse({**data.WIDGETS, "engine": "pandas"})
    b = data.DataParams.parse({**data.WIDGETS, "engine": "spark"})
    assert "engine" not in a.manifest_params()
    assert a.manifest_params() == b.manifest_params()


@pytest.mark.skipif(importlib.util.find_spec("pyspark") is not None, reason="pyspark is installed here")
def test_spark_without_pyspark_says_which_venv(tmp_path: Path) -> None:
    from sentiment.spark import SparkUnavailableError

    with pytest.raises(SparkUnavailableError, match=r"requirements-spark\.txt .*pipectl dev python --spark"):
        data.run(
            {
                "source": str(SAMPLE_CSV),
                "engine": "spark",
                "data_root": str(tmp_path),
                "project_root": str(REPO),
            }
        )
