"""The data stage end to end in-process: reading, errors, versions, manifest, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLE_CSV

from sentiment import dataset
from sentiment.csvio import DataError, read_bytes
from sentiment.dataset import VersionConflictError
from sentiment.stages import data
from sentiment.textkey import group_key


def run(tmp_path: Path, **kw: str):
    params = {"data_root": str(tmp_path / "root"), "source": str(SAMPLE_CSV), **kw}
    return data.run(params)


def test_sample_dataset_version(tmp_path):
    result = run(tmp_path, git_commit="abc123", pipectl_run_id="r1")
    out = result.outputs
    path = Path(out["data_path"])
    assert path == tmp_path / "root" / "financial_news" / "v1"
    assert sorted(p.name for p in path.iterdir()) == [
        "holdout.parquet",
        "manifest.json",
        "test.parquet",
        "train.parquet",
    ]
    m = json.loads((path / "manifest.json").read_text())
    assert dataset.sha256_bytes((path / "manifest.json").read_bytes()) == out["manifest_sha256"]
    assert m["source"]["sha256"] == dataset.sha256_bytes(SAMPLE_CSV.read_bytes())
    assert m["cleaning"] == {
        "rows_raw": 406,
        "empty_text": 1,
        "missing_label": 0,
        "duplicates_removed": 1,
        "conflict_groups": 1,
        "conflict_groups_dropped": 0,
        "conflict_rows_relabelled": 1,
        "conflict_rows_removed": 1,
        "rows_clean": 403,
    }
    assert m["code"]["git_commit"] == "abc123" and m["pipectl"] == {"run_id": "r1"}
    assert m["params"]["stratify"] == ["Sentiment"] and "overwrite" not in m["params"]
    assert m["columns"] == {"id": "0-based data row of the source", "text": "Sentence", "label": "Sentiment"}

    splits = {s: pd.read_parquet(path / f"{s}.parquet") for s in ("train", "test", "holdout")}
    total = sum(len(df) for df in splits.values())
    assert total == 403 == result.metrics["rows_clean"]
    for name, df in splits.items():
        assert list(df.columns) == ["id", "text", "label"]
        assert m["splits"][name]["rows"] == len(df) == out[f"rows_{name}"]
        assert m["splits"][name]["labels"] == df["label"].value_counts().sort_index().to_dict()
        assert set(df["label"]) == {"negative", "neutral", "positive"}
    assert abs(len(splits["test"]) - 0.2 * 403) <= 3 and abs(len(splits["holdout"]) - 0.1 * 403) <= 3
    # Group-aware: no sentence (up to case and spacing) in two splits.
    keys = {name: {group_key(t) for t in df["text"]} for name, df in splits.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["holdout"]
    assert not keys["test"] & keys["holdout"]
    # The ids point back at the source rows.
    raw = pd.read_csv(SAMPLE_CSV, keep_default_na=False)
    row = splits["train"].iloc[0]
    assert raw.loc[int(row["id"]), "Sentence"].strip() == row["text"]


def test_identical_inputs_are_a_no_op(tmp_path):
    first = run(tmp_path)
    manifest = Path(first.outputs["data_path"]) / "manifest.json"
    before = manifest.stat().st_mtime_ns
    again = run(tmp_path)
    assert again.exit_value() == first.exit_value()
    assert manifest.stat().st_mtime_ns == before


def test_the_same_file_by_another_path_is_the_same_version(tmp_path):
    first = run(tmp_path)
    again = data.run(
        {
            "data_root": str(tmp_path / "root"),
            "project_root": str(SAMPLE_CSV.parents[2]),
            "source": "data/sample/financial_news.csv",
        }
    )
    assert again.outputs == first.outputs


def test_different_content_is_an_error_unless_overwrite(tmp_path):
    first = run(tmp_path)
    with pytest.raises(VersionConflictError) as err:
        run(tmp_path, test_size="0.25")
    msg = str(err.value)
    assert "financial_news/v1 already exists" in msg and "test_size 0.2 -> 0.25" in msg
    assert (
        json.loads((Path(first.outputs["data_path"]) / "manifest.json").read_text())["params"]["test_size"]
        == 0.2
    )
    changed = run(tmp_path, test_size="0.25", overwrite="true")
    assert changed.outputs["manifest_sha256"] != first.outputs["manifest_sha256"]
    assert changed.outputs["rows_test"] > first.outputs["rows_test"]
    assert not [p for p in (tmp_path / "root" / "financial_news").iterdir() if p.name.startswith(".")]


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def exploding(df, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        df.to_parquet(path)

    monkeypatch.setattr(dataset, "_write_parquet", exploding)
    with pytest.raises(DataError, match=r"cannot write data version financial_news/v1 .*disk full"):
        run(tmp_path)
    parent = tmp_path / "root" / "financial_news"
    assert list(parent.iterdir()) == []  # neither the version nor a temporary directory


def test_holdout_off_and_no_stratification(tmp_path):
    result = run(tmp_path, holdout="false", stratify="null", data_version="flat")
    assert result.outputs["rows_holdout"] == 0
    assert not (Path(result.outputs["data_path"]) / "holdout.parquet").exists()
    assert result.outputs["rows_test"] == round(0.2 * 403)


@pytest.mark.parametrize(
    ("policy", "clean_rows"), [("drop", 402), ("majority", 402), ("prefer_non_neutral", 403)]
)
def test_conflict_policies_on_the_sample(tmp_path, policy, clean_rows):
    result = run(tmp_path, conflicts=policy)
    assert result.metrics["rows_clean"] == clean_rows
    assert result.metrics["conflicts_resolved"] == 1


def test_missing_column_names_it_and_the_columns_found(tmp_path, write_csv):
    src = write_csv([["text", "label"], ["a", "b"]])
    with pytest.raises(
        DataError,
        match=r"column 'Sentence' \(parameter 'text_column'\) not found; "
        r"columns found: 'text', 'label'",
    ):
        run(tmp_path, source=str(src))
    with pytest.raises(DataError, match=r"column 'region' \(parameter 'stratify\[1\]'\)"):
        run(
            tmp_path,
            source=str(src),
            text_column="text",
            label_column="label",
            stratify='["label", "region"]',
        )


def test_encoding_errors_name_the_line(tmp_path, write_csv):
    src = write_csv(
        [["Sentence", "Sentiment"], ["ok", "neutral"], ["Sepp\u00e4l\u00e4 rose", "positive"]],
        encoding="latin-1",
    )
    with pytest.raises(
        DataError,
        match=r"data row 2 \(line 3\), column 'Sentence': cannot decode byte 0xE4 at offset 34 as utf-8"
        r".*'encoding'",
    ):
        run(tmp_path, source=str(src))


def test_latin1_with_the_encoding_param(tmp_path, write_csv):
    rows = [["Sentence", "Sentiment"]] + [
        [f"Sepp\u00e4l\u00e4 news {i}", lbl]
        for i in range(30)
        for lbl in ["positive", "neutral"][i % 2 : i % 2 + 1]
    ]
    src = write_csv(rows, encoding="latin-1")
    result = run(tmp_path, source=str(src), encoding="latin-1")
    df = pd.read_parquet(Path(result.outputs["data_path"]) / "train.parquet")
    assert df["text"].str.startswith("Sepp\u00e4l\u00e4").all()


def test_no_rows_left(tmp_path, write_csv):
    src = write_csv([["Sentence", "Sentiment"], ["", "neutral"], ["  ", "positive"], ["x", ""]])
    with pytest.raises(
        DataError,
        match="no rows left after cleaning \\(2 empty texts in column 'Sentence', 1 missing labels in column",
    ):
        run(tmp_path, source=str(src))


def test_single_class(tmp_path, write_csv):
    src = write_csv([["Sentence", "Sentiment"]] + [[f"s{i}", "neutral"] for i in range(20)])
    with pytest.raises(DataError, match=r"only one class \('neutral', 20 rows\)"):
        run(tmp_path, source=str(src))


def test_class_too_small(tmp_path, write_csv):
    rows = [[f"s{i}", "neutral" if i % 2 else "positive"] for i in range(40)]
    rows += [["bad news", "negative"], ["worse news", "negative"]]
    src = write_csv([["Sentence", "Sentiment"], *rows])
    with pytest.raises(
        DataError, match=r"column 'Sentiment': class 'negative' has 2 row\(s\).*data row\(s\) 41, 42"
    ):
        run(tmp_path, source=str(src))


def test_relative_source_resolves_against_project_root(tmp_path, write_csv):
    write_csv([["Sentence", "Sentiment"]] + [[f"s{i}", ["a", "b"][i % 2]] for i in range(30)], name="rel.csv")
    result = data.run({"project_root": str(tmp_path), "source": "rel.csv"})
    assert Path(result.outputs["data_path"]) == tmp_path / ".pipectl" / "data" / "financial_news" / "v1"


def test_malformed_csv(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text("Sentence,Sentiment\nfine,neutral\ntoo,many,fields\n")
    with pytest.raises(DataError, match=r"bad\.csv: data row 2 \(line 3\) has 3 field\(s\), the header 2"):
        run(tmp_path, source=str(src))


def test_missing_volume_input_names_setup() -> None:
    """A raw file missing from a Volume points at pipectl setup --upload."""
    with pytest.raises(
        DataError, match=r"input file not found: /Volumes/dev/s/v/raw/x\.csv \(upload it with: pipectl setup"
    ):
        read_bytes(Path("/Volumes/dev/s/v/raw/x.csv"))
    with pytest.raises(DataError, match=r"^input file not found: /nonexistent/x\.csv$"):
        read_bytes(Path("/nonexistent/x.csv"))
