"""Unit tests for textune.data.tables: reading tables, choosing columns, dropping unusable rows, splitting."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from textune.data.tables import decode_escapes, read_table, stratified_split
from textune.tasks.classification.columns import ColumnSpec, drop_unusable_rows, resolve_columns
from textune.errors import TextuneError

from conftest import toy_frame

ROWS = pd.DataFrame({"text": ["NA", "fire near my house", "null", "lovely sunny day"], "label": [1, 1, 0, 0]})

WRITERS = {
    "train.csv": lambda frame, path: frame.to_csv(path, index=False),
    "train.tsv": lambda frame, path: frame.to_csv(path, sep="\t", index=False),
    "array.json": lambda frame, path: frame.to_json(path, orient="records"),
    "train.jsonl": lambda frame, path: frame.to_json(path, orient="records", lines=True),
    # datasets' to_json writes JSON Lines under a .json name
    "lines.json": lambda frame, path: frame.to_json(path, orient="records", lines=True),
    "train.parquet": lambda frame, path: frame.to_parquet(path),
    "train.csv.gz": lambda frame, path: frame.to_csv(path, index=False, compression="gzip"),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_read_table_reads_every_supported_format(tmp_path, name):
    path = tmp_path / name
    WRITERS[name](ROWS, path)

    frame = read_table(path)

    assert list(frame.columns) == ["text", "label"]
    assert frame["text"].tolist() == ROWS["text"].tolist()
    assert frame["label"].tolist() == [1, 1, 0, 0]


@pytest.mark.parametrize("name", ["train.jsonl.gz", "train.json.gz"])
def test_read_table_reads_gzip_compressed_json_lines(tmp_path, name):
    path = tmp_path / name
    ROWS.to_json(path, orient="records", lines=True, compression="gzip")

    frame = read_table(path)

    assert frame["text"].tolist() == ROWS["text"].tolist()


@pytest.mark.parametrize("name", ["train.csv", "train.tsv", "train.jsonl", "train.parquet"])
@pytest.mark.parametrize("word", ["NA", "N/A", "null", "None", "nan"])
def test_read_table_keeps_the_text_NA_as_text(tmp_path, name, word):
    path = tmp_path / name
    WRITERS[name](pd.DataFrame({"text": [word, "storm"], "label": [0, 1]}), path)

    frame = read_table(path)

    assert frame["text"].tolist() == [word, "storm"]
    assert not frame["text"].isna().any()


def test_read_table_reads_an_empty_csv_cell_as_missing(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\nfire,1\n,0\n")

    frame = read_table(path)

    assert frame["text"].isna().tolist() == [False, True]


def test_read_table_rejects_a_missing_file_naming_it_and_the_flag(tmp_path):
    path = tmp_path / "nope.csv"

    with pytest.raises(TextuneError, match="no such file") as caught:
        read_table(path, flag="--validation_file")

    assert str(path) in str(caught.value)
    assert "--validation_file" in str(caught.value)


def test_read_table_rejects_a_directory_naming_it(tmp_path):
    with pytest.raises(TextuneError, match="is a directory") as caught:
        read_table(tmp_path)

    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize("name", ["train.txt", "train.xlsx", "train"])
def test_read_table_rejects_an_unsupported_extension_listing_the_supported_ones(tmp_path, name):
    path = tmp_path / name
    path.write_text("text,label\nfire,1\n")

    with pytest.raises(TextuneError, match="unsupported file type") as caught:
        read_table(path)

    message = str(caught.value)
    assert str(path) in message
    assert all(ext in message for ext in (".csv", ".tsv", ".json", ".jsonl", ".parquet"))


@pytest.mark.parametrize("name", [
    "train.csv", "train.tsv", "train.json", "train.jsonl", "train.parquet", "train.csv.gz",
])
def test_read_table_rejects_an_empty_file_naming_it(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")

    with pytest.raises(TextuneError) as caught:
        read_table(path)

    assert str(path) in str(caught.value)


def test_read_table_rejects_a_csv_with_a_header_but_no_rows(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\n")

    with pytest.raises(TextuneError, match="no data rows") as caught:
        read_table(path)

    assert str(path) in str(caught.value)


def test_read_table_reads_a_windows_1252_export_and_says_so(tmp_path, caplog):
    path = tmp_path / "train.csv"
    path.write_bytes("text,label\ncaf\u00e9 \u201cfire\u201d,1\n".encode("cp1252"))

    with caplog.at_level(logging.WARNING, logger="textune"):
        assert read_table(path)["text"].tolist() == ["caf\u00e9 \u201cfire\u201d"]
    assert "not UTF-8; read it as cp1252" in caplog.text and "--encoding" in caplog.text


def test_read_table_names_the_encoding_flag_when_no_common_encoding_fits(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\nbad \x81\x8d byte,1\n")  # undefined in both UTF-8 and cp1252

    with pytest.raises(TextuneError, match="--encoding"):
        read_table(path)
    assert read_table(path, encoding="latin-1")["text"].tolist() == ["bad \x81\x8d byte"]


@pytest.mark.parametrize(("typed", "meant"), [
    ("\\n", "\n"),
    ("\\t", "\t"),
    ("\\r", "\r"),
    ("\\\\", "\\"),
    (" [SEP] ", " [SEP] "),
    ("a\\nb\\tc", "a\nb\tc"),
    ("\\x", "\\x"),  # an unknown escape stays as typed
    ("\\", "\\"),  # a trailing backslash stays as typed
])
def test_decode_escapes_turns_shell_escapes_into_characters(typed, meant):
    assert decode_escapes(typed) == meant


def test_resolve_columns_defaults_to_the_text_column_and_finds_the_id():
    columns = resolve_columns(toy_frame(4), None, "target")

    assert columns.text == ["text"]
    assert columns.label == "target"
    assert columns.id == "id"
    assert columns.text_pair is None


def test_resolve_columns_prefers_sentence_over_text_and_defaults_the_label_to_label():
    frame = pd.DataFrame({"text": ["b"], "sentence": ["a"], "label": [1]})

    columns = resolve_columns(frame, None, None)

    assert columns.text == ["sentence"]
    assert columns.label == "label"
    assert columns.id is None


def test_resolve_columns_without_a_default_text_column_names_the_found_columns_and_the_flag():
    frame = toy_frame(4).rename(columns={"text": "tweet"})

    with pytest.raises(TextuneError, match="--text_column_names") as caught:
        resolve_columns(frame, None, "target")

    assert "id, keyword, location, tweet, target" in str(caught.value)


def test_resolve_columns_with_a_mistyped_label_column_names_the_found_columns_and_suggests_the_closest():
    with pytest.raises(TextuneError) as caught:
        resolve_columns(toy_frame(4), None, "targt", where="--train_file")

    message = str(caught.value)
    assert "'targt'" in message
    assert "found: id, keyword, location, text, target" in message
    assert "--label_column_name" in message
    assert "did you mean 'target'?" in message


def test_resolve_columns_with_a_mistyped_text_column_suggests_the_closest():
    with pytest.raises(TextuneError, match="did you mean 'text'") as caught:
        resolve_columns(toy_frame(4), ["txt"], "target")

    assert "--text_column_names" in str(caught.value)


def test_resolve_columns_decodes_the_delimiter():
    columns = resolve_columns(toy_frame(4), ["keyword", "text"], "target", delimiter="\\t")

    assert columns.delimiter == "\t"


def test_column_spec_texts_joins_several_columns_with_the_delimiter():
    frame = pd.DataFrame({"keyword": ["fire", None], "text": ["big fire", "calm day"], "label": [1, 0]})
    columns = ColumnSpec(text=["keyword", "text"], label="label", delimiter=" | ")

    assert columns.texts(frame) == ["fire | big fire", " | calm day"]


def test_column_spec_texts_of_one_column_is_that_column_with_missing_cells_empty():
    frame = pd.DataFrame({"text": ["big fire", None], "label": [1, 0]})

    assert ColumnSpec(text=["text"], label="label").texts(frame) == ["big fire", ""]


def test_drop_unusable_rows_drops_empty_text_and_missing_labels_and_logs_the_counts(caplog):
    frame = pd.DataFrame({
        "text": ["big fire", "calm day", "", "   ", None, "flood"],
        "label": [1, 0, 1, 0, 1, None],
    })
    columns = ColumnSpec(text=["text"], label="label")

    with caplog.at_level(logging.WARNING, logger="textune.data.tables"):
        kept = drop_unusable_rows(frame, columns, "train")

    assert kept["text"].tolist() == ["big fire", "calm day"]
    assert kept.index.tolist() == [0, 1]
    assert "train: dropped 4 of 6 rows (3 with empty text, 1 with a missing label)" in caplog.text


def test_drop_unusable_rows_keeps_rows_without_labels_when_labels_are_not_needed(caplog):
    frame = pd.DataFrame({"text": ["big fire", ""], "label": [None, None]})
    columns = ColumnSpec(text=["text"], label="label")

    with caplog.at_level(logging.WARNING, logger="textune.data.tables"):
        kept = drop_unusable_rows(frame, columns, "test", with_label=False)

    assert kept["text"].tolist() == ["big fire"]
    assert "test: dropped 1 of 2 rows (1 with empty text, 0 with a missing label)" in caplog.text


def test_drop_unusable_rows_keeps_the_text_NA_and_logs_nothing_when_all_rows_are_usable(caplog):
    frame = pd.DataFrame({"text": ["NA", "fire"], "label": [0, 1]})

    with caplog.at_level(logging.WARNING, logger="textune.data.tables"):
        kept = drop_unusable_rows(frame, ColumnSpec(text=["text"], label="label"), "train")

    assert kept["text"].tolist() == ["NA", "fire"]
    assert caplog.text == ""


def test_drop_unusable_rows_keeps_an_empty_multi_label_list():
    frame = pd.DataFrame({"text": ["fire", "calm"], "label": [["disaster"], []]})

    kept = drop_unusable_rows(frame, ColumnSpec(text=["text"], label="label"), "train")

    assert len(kept) == 2


def imbalanced_frame() -> pd.DataFrame:
    frame = toy_frame(100)
    frame["target"] = [0] * 70 + [1] * 30
    return frame


def test_stratified_split_keeps_label_proportions():
    train, validation = stratified_split(imbalanced_frame(), percentage=20, seed=3, stratify_by=imbalanced_frame()["target"])

    assert (len(train), len(validation)) == (80, 20)
    assert validation["target"].value_counts().to_dict() == {0: 14, 1: 6}
    assert train["target"].value_counts().to_dict() == {0: 56, 1: 24}
    assert set(train["id"]).isdisjoint(validation["id"])


def test_stratified_split_is_seeded():
    frame = imbalanced_frame()

    _, first = stratified_split(frame, percentage=20, seed=3, stratify_by=frame["target"])
    _, again = stratified_split(frame, percentage=20, seed=3, stratify_by=frame["target"])
    _, other = stratified_split(frame, percentage=20, seed=4, stratify_by=frame["target"])

    assert first["id"].tolist() == again["id"].tolist()
    assert first["id"].tolist() != other["id"].tolist()


def test_stratified_split_falls_back_to_a_random_split_when_a_class_has_one_row():
    frame = toy_frame(10)
    frame["target"] = [0] * 9 + [1]

    train, validation = stratified_split(frame, percentage=20, seed=0, stratify_by=frame["target"])

    assert (len(train), len(validation)) == (8, 2)


def test_stratified_split_refuses_fewer_than_two_rows():
    with pytest.raises(TextuneError, match="fewer than 2 usable rows"):
        stratified_split(toy_frame(1), percentage=20, seed=0)
