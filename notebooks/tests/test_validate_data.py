"""The validate_data stage in-process on a real data version of the bundled sample: expectations
that hold, and each kind that does not (columns, missing values, class balance, classes), failing
with the split, the column or class and the rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLE_CSV

from sentiment.stages import data, validate_data
from sentiment.stages.validate_data import ValidationError


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    data.run({"data_root": str(root), "source": str(SAMPLE_CSV)})
    return root


def validate(root: Path, **kw: str):
    return validate_data.run({"data_root": str(root), **kw})


def test_expectations_that_hold(root):
    result = validate(root, max_class_share="0.9", classes='["negative", "neutral", "positive"]')
    assert result.outputs["data_path"] == str(root / "financial_news" / "v1")
    assert result.outputs["rows_checked"] == 403
    m = result.metrics
    assert m["null_rate_train_text"] == 0.0
    assert sum(v for k, v in m.items() if k.startswith("class_share_train_")) == pytest.approx(1.0)
    json.dumps(result.exit_value(), allow_nan=False)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"columns": '["id", "text", "label", "source"]'}, r"split train: column\(s\) 'source' missing"),
        (
            {"max_class_share": "0.5"},
            r"split train: class 'neutral' holds 5\d\.\d% of the rows \(\d+ of \d+\), "
            r"outside \[0\.0%, 50\.0%\]",
        ),
        ({"min_class_share": "0.2", "splits": '["test"]'}, r"split test: class 'negative' holds"),
        (
            {"classes": '["negative", "positive"]'},
            r"split train: unexpected class 'neutral' in row id\(s\) \d+(, \d+){9} and \d+ more",
        ),
        ({"classes": '["negative", "neutral", "positive", "mixed"]'}, r"expected class\(es\) 'mixed' absent"),
        ({"splits": '["validation"]'}, r"split 'validation' is not part of data version"),
    ],
)
def test_violations_fail_naming_what(root, params, message):
    with pytest.raises(Exception, match=message):
        validate(root, **params)


def test_null_rate_lists_the_rows(root, tmp_path):
    # A copy of the version with two empty texts in train.
    version = root / "financial_news" / "v1"
    copy = tmp_path / "financial_news" / "v1"
    copy.mkdir(parents=True)
    for f in version.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    df = pd.read_parquet(copy / "train.parquet")
    df.loc[df.index[:2], "text"] = ["", None]
    df.to_parquet(copy / "train.parquet")
    with pytest.raises(
        ValidationError, match=r"split train: column 'text' is missing or empty in 2 of \d+ rows"
    ) as e:
        validate(tmp_path, splits='["train"]')
    ids = df["id"].astype(str).tolist()[:2]
    assert f"row id(s) {ids[0]}, {ids[1]}" in str(e.value)
    # Allowed when the bound says so.
    validate(tmp_path, splits='["train"]', max_null_rate="0.01")
