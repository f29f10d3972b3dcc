"""The bad-dataset corpus, through the real data stage (`data.run`, as the notebook calls it).

Every bad file fails with a DataError that names the file and, where it applies, the column and the
row, and leaves nothing under the data root: no version, no temporary directory. The odd-but-valid
files (a BOM, quotes and newlines inside fields, CRLF, "NA" as a text) are read exactly.
docs/RELIABILITY.md ("Bad datasets") lists the decisions. cmd/pipectl's TestBadDatasetsThroughPipectl
runs some of these files through `pipectl run` with the local executor.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sentiment.csvio import MAX_FIELD_CHARS, DataError, read_csv
from sentiment.stages import data

H = ["Sentence", "Sentiment"]


def rows(n: int = 30, labels: tuple[str, ...] = ("positive", "negative", "neutral")) -> list[list[str]]:
    return [[f"sentence number {i} about the markets", labels[i % len(labels)]] for i in range(n)]


def csv_bytes(
    records: list[list[str]], delimiter: str = ",", encoding: str = "utf-8", lineterminator: str = "\n"
) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator=lineterminator).writerows(records)
    return buf.getvalue().encode(encoding)


GOOD = csv_bytes([H, *rows()])
CASE_VARIANTS = [["up", "Positive"], ["upper", "positive "], ["top", "POSITIVE"]]

# name -> (file content, extra parameters, [regexes the message must match besides the file name])
BAD: dict[str, tuple[bytes, dict[str, str], list[str]]] = {
    "missing_column": (csv_bytes([["Text", "Sentiment"], *rows()]), {}, [r"column 'Sentence'", "'Text'"]),
    "missing_stratify_column": (GOOD, {"stratify": '["Sentiment", "region"]'}, [r"column 'region'"]),
    "empty_file": (b"", {}, ["the file is empty"]),
    "blank_lines_only": (b"\n \n\r\n", {}, ["the file is empty"]),
    "header_only": (b"Sentence,Sentiment\n", {}, ["header .*'Sentence', 'Sentiment'.* no data rows"]),
    "single_class": (
        csv_bytes([H, *rows(labels=("neutral",))]),
        {},
        ["column 'Sentiment'", "only one class"],
    ),
    "class_with_one_row": (
        csv_bytes([H, *rows(), ["a lonely angry sentence", "angry"]]),
        {},
        ["column 'Sentiment'", "class 'angry' has 1 row", r"data row\(s\) 31\b"],
    ),
    "class_with_one_distinct_text": (
        csv_bytes([H, *rows(), *[["the same angry sentence", "angry"]] * 4]),
        {},
        ["column 'Sentiment'", "class 'angry' has 1 row.* 1 distinct text", r"data row\(s\) 31\b"],
    ),
    "non_utf8_bytes": (
        csv_bytes([H, *rows(5)]) + "Sepp\u00e4l\u00e4 rose,positive\n".encode("latin-1") + csv_bytes(rows()),
        {},
        [
            "data row 6 \\(line 7\\), column 'Sentence'",
            # the byte's value and where it is: 4 bytes into the row "Sepp\xe4l\xe4 rose"
            f"cannot decode byte 0xE4 at offset {len(csv_bytes([H, *rows(5)])) + 4} as utf-8",
            "'encoding'",
        ],
    ),
    "utf16_without_encoding": (
        ("\ufeff" + GOOD.decode()).encode("utf-16-le"),
        {},
        ["UTF-16", "encoding: 'utf-16'"],
    ),
    "nul_bytes": (
        csv_bytes([H, *rows(3)]) + b"bin\x00ary,positive\n",
        {},
        [rf"line 5 contains a NUL byte \(at offset {len(csv_bytes([H, *rows(3)])) + 3}\)"],
    ),
    "gzip_file": (b"\x1f\x8b\x08\x00" + bytes(range(256)), {}, ["gzip-compressed"]),
    "field_of_10_mb": (
        csv_bytes([H, *rows(), ["x" * (10 << 20), "positive"]]),
        {},
        [r"data row 31 \(line 32\), column 'Sentence'", "10,485,760 characters"],
    ),
    "nan_labels": (
        csv_bytes([H, *rows(), ["what now", "NaN"], ["who knows", "nan"], ["why", "None"]]),
        {},
        [
            "column 'Sentiment'",
            r"3 label\(s\) spell a missing value",
            r"31 \('NaN'\), 32 \('nan'\), 33 \('None'\)",
        ],
    ),
    "labels_differing_by_case": (
        csv_bytes([H, *rows(), *CASE_VARIANTS, ["x", "Neutral"]]),
        {},
        [
            "column 'Sentiment': labels that differ only by case would become separate classes",
            r"'positive' \(data rows 1, 4, 7 and 7 more\), 'Positive' \(data row 31\), 'positive ' "
            r"\(data row 32\), 'POSITIVE' \(data row 33\): most often 'positive'",
            r"'neutral' \(data rows 3, 6, 9 and 7 more\), 'Neutral' \(data row 34\)",
            'set label_case: "fold"',
        ],
    ),
    "duplicate_header": (
        csv_bytes([["Sentence", "Sentiment", "Sentence"], *[[*r, "x"] for r in rows()]]),
        {},
        ["line 1 \\(the header\\)", "'Sentence' appears twice \\(columns 1 and 3\\)"],
    ),
    "semicolon_delimiter": (
        csv_bytes([H, *rows()], delimiter=";"),
        {},
        ["column 'Sentence'", "separated by ';'"],
    ),
    "tab_delimiter": (
        csv_bytes([H, *rows()], delimiter="\t"),
        {},
        ["column 'Sentence'", "separated by a tab"],
    ),
    "too_many_fields": (
        csv_bytes([H, *rows(10)]) + b"up, sharply,positive\n" + csv_bytes(rows()),
        {},
        [r"data row 11 \(line 12\) has 3 field\(s\), the header 2"],
    ),
    "unbalanced_quote": (
        csv_bytes([H, *rows(10)]) + b'"never closed,positive\n' + csv_bytes(rows()),
        {},
        ["line 12", "never ends"],
    ),
    "all_texts_empty": (
        csv_bytes([H, *[["", "positive"], [" ", "negative"]] * 5]),
        {},
        ["10 empty texts in column 'Sentence'"],
    ),
    "all_labels_empty": (
        csv_bytes([H, *[[f"text {i}", ""] for i in range(10)]]),
        {},
        ["10 missing labels in column 'Sentiment'"],
    ),
    "header_row_missing": (csv_bytes(rows()), {}, ["column 'Sentence'", "columns found: 'sentence number 0"]),
}


@pytest.fixture
def stage(tmp_path: Path):
    """Run the data stage on bytes written to a file named after the case; return the root too."""
    root = tmp_path / "root"

    def _run(name: str, content: bytes, **params: str):
        src = tmp_path / f"{name}.csv"
        src.write_bytes(content)
        return src, root, lambda: data.run({"data_root": str(root), "source": str(src), **params})

    return _run


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_dataset_is_refused_and_writes_nothing(stage, name):
    content, params, patterns = BAD[name]
    src, root, run = stage(name, content, **params)
    with pytest.raises(DataError) as err:
        run()
    message = str(err.value)
    assert message.startswith(f"{src}:"), message  # the file, first
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    assert len(message) < 600, message  # a sentence, not a dump of the file
    assert _leftovers(root) == [], "a failed data stage left files under the data root"


def test_the_corpus_is_big_enough():
    assert len(BAD) >= 15


def _split_frames(result) -> pd.DataFrame:
    path = Path(result.outputs["data_path"])
    return pd.concat([pd.read_parquet(f) for f in sorted(path.glob("*.parquet"))]).sort_values(
        "id", key=lambda s: s.astype(int)
    )


ODD_TEXTS = [
    'a "quoted" word, and a comma',
    "two\nlines",
    "three\r\nlines, CRLF\ninside",
    "NA",
    "None",
    "caf\u00e9 \u20ac 5\u00a0million \U0001f4c8",
]


def _same(text: str) -> str:
    return text


@pytest.mark.parametrize(
    ("name", "encode", "expect"),
    [
        ("bom", lambda b: codecs.BOM_UTF8 + b, _same),
        # Line ends inside quoted fields are data: CRLF files keep their CRs there.
        ("crlf", lambda b: b.replace(b"\n", b"\r\n"), lambda t: t.replace("\n", "\r\n")),
        ("quotes_and_newlines", lambda b: b, _same),
        ("blank_lines_between_rows", lambda b: b.replace(b"\n", b"\n\n", 3) + b"\n\n", _same),
    ],
)
def test_odd_but_valid_files_are_read_exactly(stage, name, encode, expect):
    records = [H, *rows(), *[[t, lbl] for t, lbl in zip(ODD_TEXTS, ["positive", "negative", "neutral"] * 2)]]
    _, _, run = stage(name, encode(csv_bytes(records)))
    result = run()
    got = _split_frames(result)
    want = [expect(r[0]).strip() for r in records[1:]]
    assert got["text"].tolist() == want  # every row, in order, each text exactly (stripped)
    assert got["id"].tolist() == [str(i) for i in range(len(want))]


def test_utf16_with_the_encoding_parameter(stage):
    _, _, run = stage("utf16", ("\ufeff" + GOOD.decode()).encode("utf-16-le"), encoding="utf-16")
    assert run().metrics["rows_clean"] == 30


# Reading: whatever texts a CSV writer (Python's, Excel's dialect: CRLF rows, so that a CR inside
# a field is quoted too) writes, the reader gives back.
field_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=40
).filter(lambda s: s.strip() != "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(field_text, st.sampled_from(["pos", "neg", "neu"])), min_size=1, max_size=30))
def test_reading_round_trips_what_a_csv_writer_wrote(records):
    content = csv_bytes([H, *[list(r) for r in records]], lineterminator="\r\n")
    df = read_csv(content, "utf-8", Path("generated.csv"))
    assert df.columns.tolist() == H
    assert df["Sentence"].tolist() == [t for t, _ in records]
    assert df["Sentiment"].tolist() == [lbl for _, lbl in records]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_reading_arbitrary_bytes_gives_a_frame_or_a_data_error(content):
    try:
        read_csv(content, "utf-8", Path("fuzz.csv"))
    except DataError as exc:
        assert str(exc).startswith("fuzz.csv: ")


def test_field_limit_is_above_any_sentence():
    assert MAX_FIELD_CHARS >= 1 << 20


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.lists(field_text, min_size=1, max_size=3), min_size=1, max_size=6).map(
            lambda rs: csv_bytes(rs, lineterminator="\r\n")
        ),
    )
)
@example(b" \r\n ")  # whitespace only: "the file is empty"
@example(b"\xef\xbb\xbfSentence,Sentiment\r\n")
@example(b"Sentence,Sentiment\n\xe9t\xe9,pos\n")  # latin-1 bytes
def test_the_utf8_fast_path_answers_only_as_the_general_path_would(content):
    """UTF-8 bytes go straight to pyarrow (csvio._read_utf8_fast); what it returns must be what
    decoding and parsing give, and it must leave every file the general path refuses to it."""
    from sentiment import csvio

    try:
        fast = csvio._read_utf8_fast(content, "utf-8", Path("f.csv"))
    except DataError:
        fast = "refused"  # a binary file: the general path refuses it the same way
    try:
        text = csvio.decode(content, "utf-8", Path("f.csv"))
        if not text.strip():
            raise DataError("empty")
        header = csvio._header(text, Path("f.csv"))
        general = csvio._parse(text.encode("utf-8"))
        assert len(header) == len(general.columns)
    except (DataError, ValueError):
        general = None
    if fast is None:
        return
    if isinstance(fast, str):
        with pytest.raises(DataError):
            read_csv(content, "utf-8", Path("f.csv"))
        return
    assert general is not None, "the fast path took a file the general path refuses"
    pd.testing.assert_frame_equal(fast, general)


def test_the_fast_path_leaves_renamed_duplicates_to_the_general_path():
    from sentiment import csvio

    content = csv_bytes([["Sentence", "Sentence", "Sentiment"], *[[t, t, lbl] for t, lbl in rows(3)]])
    assert csvio._read_utf8_fast(content, "utf-8", Path("d.csv")) is None
    with pytest.raises(DataError, match="appears twice"):
        read_csv(content, "utf-8", Path("d.csv"))


def test_labels_differing_by_case_are_folded_when_asked(stage, capsys):
    import json

    records = [H, *rows(), *CASE_VARIANTS]
    _, _, run = stage("case_fold", csv_bytes(records), label_case="fold")
    result = run()
    got = _split_frames(result)
    assert sorted(got["label"].unique()) == ["negative", "neutral", "positive"]
    assert got.set_index("text").loc[["up", "upper", "top"], "label"].tolist() == ["positive"] * 3
    manifest = json.loads((Path(result.outputs["data_path"]) / "manifest.json").read_text())
    assert manifest["labels"] == ["negative", "neutral", "positive"]
    assert manifest["label_case_folds"] == {"POSITIVE": "positive", "Positive": "positive"}
    assert manifest["params"]["label_case"] == "fold"
    assert "label_case fold: 'POSITIVE' -> 'positive', 'Positive' -> 'positive'" in capsys.readouterr().out


def test_strict_label_case_keeps_the_identity_of_earlier_versions(stage):
    """Versions written before label_case existed have no such parameter in their manifest; the
    default must not make them "different content"."""
    import json

    _, _, run = stage("plain", GOOD)
    manifest = json.loads((Path(run().outputs["data_path"]) / "manifest.json").read_text())
    assert "label_case" not in manifest["params"]


def test_texts_with_replacement_characters_are_kept_with_a_warning(stage, capsys):
    import json

    records = [H, *rows(), ["Sepp\ufffdl\ufffd rose", "positive"], ["caf\ufffd up", "neutral"]]
    src, _, run = stage("damaged", csv_bytes(records))
    result = run()
    out = capsys.readouterr().out
    assert (
        f"warning: {src}: column 'Sentence': 2 text(s) contain U+FFFD, the Unicode replacement character "
        "(data row(s) 31, 32), e.g. 'Sepp\ufffdl\ufffd rose': the file was damaged before pipectl read it"
    ) in out
    assert result.metrics["texts_with_replacement_char"] == 2
    assert result.metrics["rows_clean"] == 32  # kept
    manifest = json.loads((Path(result.outputs["data_path"]) / "manifest.json").read_text())
    assert len(manifest["warnings"]) == 1 and "U+FFFD" in manifest["warnings"][0]
    _, _, clean = stage("clean", GOOD, data_version="v2")
    assert "texts_with_replacement_char" not in clean().metrics
