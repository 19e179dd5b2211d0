"""Training from memory-mapped Arrow on disk (--large_data): same rows, same inputs, same run as in memory."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from textune.training.arguments import DataArguments
from textune.cli import main
from textune.errors import TextuneError
from textune.tasks.classification.labels import LabelSpec
from textune.data.large_data import OnDiskSplits, encode_split, load_run_splits, use_large_data
from textune.data.splits import load_splits
from textune.tasks import ClassificationTask

from conftest import split_flags, toy_frame


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """HF_DATASETS_CACHE in the test's folder, where the on-disk mode writes its Arrow files."""
    import datasets

    folder = tmp_path / "hf-datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", folder)
    return folder / "textune-large-data"


def leftovers(cache) -> list:
    return list(cache.iterdir()) if cache.exists() else []


def tokenizer_of(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def test_on_disk_splits_hold_out_shuffle_and_cap_the_same_rows_as_in_memory(tweets_dir, hf_cache):
    frame = toy_frame(300, seed=4)
    frame.loc[[5, 17], "text"] = ""
    frame.loc[9, "target"] = None
    frame.to_csv(tweets_dir / "big.csv", index=False)
    args, task_args = split_flags(train_file=str(tweets_dir / "big.csv"), label_column_name="target",
                                  large_data="true", shuffle_train_dataset=True, max_train_samples=200,
                                  text_column_names="keyword,text")
    in_memory = load_splits(replace(args, large_data="false"), seed=7, task_args=task_args)
    on_disk = load_run_splits(args, seed=7, task_args=task_args)
    assert isinstance(on_disk, OnDiskSplits) and args.large_data == "true"
    assert on_disk.task.columns == in_memory.task.columns
    for role in ("train", "validation"):
        rows = on_disk.table.select(on_disk.rows[role]).to_pandas()
        assert on_disk.task.columns.texts(rows) == in_memory.task.columns.texts(getattr(in_memory, role))
        assert getattr(on_disk, role)["target"].tolist() == getattr(in_memory, role)["target"].tolist()
    # the report's row accounting, counted during the one pass over the file: 297 usable, 30 held out, 200 used
    assert on_disk.accounting["train"] == {"source": args.train_file, "read": 300, "held_out": 30, "capped": 67,
                                           "dropped": {"empty_text": 2, "missing_label": 1}}


@pytest.mark.parametrize("kind", ["single", "multi", "regression"])
def test_tokenized_rows_on_disk_equal_the_in_memory_encoding_and_live_in_cache_files(tiny_model_dir, tmp_path,
                                                                                    hf_cache, kind):
    rng = np.random.default_rng(0)
    frame = toy_frame(120, seed=6)
    if kind == "multi":
        frame["target"] = [rng.choice(["fire", "flood", "fire|flood", "calm"]) for _ in range(len(frame))]
    elif kind == "regression":
        frame["target"] = rng.random(len(frame)).round(3)
    frame.to_csv(tmp_path / "train.csv", index=False)
    args, task_args = split_flags(train_file=str(tmp_path / "train.csv"), label_column_name="target",
                                  large_data="true", label_delimiter="|" if kind == "multi" else None,
                                  preprocess="join_keyword_location")
    splits = load_run_splits(args, seed=1, task_args=task_args)
    reference = load_splits(replace(args, large_data="false"), seed=1, task_args=task_args)
    labels = LabelSpec.infer(splits.train["target"], delimiter=task_args.label_delimiter)
    assert labels == LabelSpec.infer(reference.train["target"], delimiter=task_args.label_delimiter)
    task = ClassificationTask(splits.task.columns, labels, max_seq_length=8, preprocess=["join_keyword_location"])
    tokenizer = tokenizer_of(tiny_model_dir)

    train_set = encode_split(task, splits, "train", tokenizer, "--train_file")
    expected = task.encode(reference.train, tokenizer)
    assert train_set.column_names == expected.column_names
    for name in expected.column_names:
        if kind == "regression" and name == "labels":  # float32 on disk, as Trainer gets them in memory
            assert train_set[name][:] == pytest.approx(expected[name][:])
        else:
            assert train_set[name][:] == expected[name][:]
    # memory-mapped from a file of this run's cache folder, not a table in RAM
    assert train_set.cache_files and all(f["filename"].startswith(str(splits.cache_dir))
                                         for f in train_set.cache_files)
    assert splits.table.cache_files and type(train_set.data).__name__ == "MemoryMappedTable"
    del splits, train_set
    import gc

    gc.collect()
    assert leftovers(hf_cache) == []  # the Arrow files go with the run


def test_large_data_run_trains_like_the_in_memory_run_and_its_folder_predicts(tiny_model_dir, tweets_dir, tmp_path,
                                                                             hf_cache):
    toy_frame(120, seed=8).to_csv(tweets_dir / "train.csv", index=False)
    runs = {}
    for mode in ("false", "true"):
        runs[mode] = tmp_path / f"run-{mode}"
        assert main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", f"{tweets_dir}/train.csv",
                     "--test_file", f"{tweets_dir}/test.csv", "--label_column_name", "target",
                     "--large_data", mode, "--max_steps", "6", "--per_device_train_batch_size", "8",
                     "--learning_rate", "1e-3", "--do_train", "--do_eval", "--do_predict", "--report_to", "none",
                     "--output_dir", str(runs[mode])]) == 0
    on_disk, in_memory = (json.loads((runs[m] / "all_results.json").read_text()) for m in ("true", "false"))
    assert on_disk["train_samples"] == in_memory["train_samples"] == 108
    # the same rows in the same order with the same inputs: the same training, step for step
    assert on_disk["eval_loss"] == pytest.approx(in_memory["eval_loss"], abs=1e-5)
    assert on_disk["train_loss"] == pytest.approx(in_memory["train_loss"], abs=1e-5)
    record = json.loads((runs["true"] / "textune_run.json").read_text())
    assert record["data_args"]["large_data"] == "true"
    assert len(pd.read_csv(runs["true"] / "predictions.csv")) == 12
    assert "seeded sample" not in (runs["true"] / "report.md").read_text()  # small enough to report every row
    assert leftovers(hf_cache) == []

    assert main(["predict", "--model", str(runs["true"]), "--input", f"{tweets_dir}/test.csv",
                 "--output", str(tmp_path / "preds.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "preds.csv")) == 12


def test_auto_mode_goes_to_disk_for_train_files_above_the_threshold(tweets_dir, monkeypatch):
    import textune.data.large_data as large_data

    args = DataArguments(train_file=str(tweets_dir / "train.csv"))
    assert args.large_data == "auto" and not use_large_data(args)
    monkeypatch.setattr(large_data, "LARGE_FILE_BYTES", 1024)
    assert use_large_data(args)
    assert not use_large_data(DataArguments(train_file=str(tweets_dir / "train.csv"), large_data=False))
    assert not use_large_data(DataArguments())  # the demo data is small and packaged


def test_large_data_without_a_train_file_is_a_one_line_error():
    with pytest.raises(TextuneError, match="--large_data true reads --train_file"):
        use_large_data(DataArguments(dataset_name="imdb", large_data="true"))
    with pytest.raises(TextuneError, match="--large_data must be auto, true or false"):
        DataArguments(large_data="sometimes")


def squad_file(folder, rows: int = 40):
    """A SQuAD v1.1 JSON train file: QA, which cannot be trained from a file read in chunks."""
    paragraphs = [{"context": f"a fire broke out in town {i}", "qas": [
        {"id": f"q{i}", "question": "what broke out", "answers": [{"text": "fire", "answer_start": 2}]}]}
        for i in range(rows)]
    path = folder / "squad.json"
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}),
                    encoding="utf-8")
    return path


def test_large_data_true_for_a_task_that_cannot_train_on_disk_is_a_one_line_error(tiny_model_dir, tmp_path, capsys,
                                                                                  hf_cache):
    path = squad_file(tmp_path)
    code = main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(path),
                 "--large_data", "true", "--output_dir", str(tmp_path / "out")])
    messages = [line for line in capsys.readouterr().err.splitlines() if line.startswith("textune:")]
    assert code == 2 and len(messages) == 1
    assert "--large_data" in messages[0] and "question-answering" in messages[0]
    assert leftovers(hf_cache) == [] and not (tmp_path / "out").exists()


def test_auto_mode_reads_a_large_file_in_memory_for_a_task_that_cannot_train_on_disk(tmp_path, monkeypatch, caplog,
                                                                                   hf_cache):
    import logging

    import textune.data.large_data as large_data

    monkeypatch.setattr(large_data, "LARGE_FILE_BYTES", 1024)
    args = DataArguments(train_file=str(squad_file(tmp_path)))  # no --task: picked from the file
    with caplog.at_level(logging.INFO, logger="textune"):
        splits = load_run_splits(args, seed=0)
    assert not isinstance(splits, OnDiskSplits) and args.large_data == "false"
    assert splits.task.name == "question-answering" and len(splits.train) + len(splits.validation) == 40
    assert "reading it into memory" in caplog.text and leftovers(hf_cache) == []


def test_bad_train_file_fails_as_in_memory_and_leaves_no_arrow_files(tiny_model_dir, tweets_dir, tmp_path, hf_cache,
                                                                     capsys):
    code = main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", f"{tweets_dir}/train.csv",
                 "--label_column_name", "label_typo", "--large_data", "true", "--output_dir", str(tmp_path / "out")])
    messages = [line for line in capsys.readouterr().err.splitlines() if line.startswith("textune:")]
    assert code == 2 and len(messages) == 1
    assert "has no column 'label_typo'" in messages[0] and "--label_column_name" in messages[0]
    assert leftovers(hf_cache) == [] and not (tmp_path / "out").exists()


def test_the_report_reads_a_seeded_sample_with_texts_and_the_full_row_accounting(tweets_dir, hf_cache, monkeypatch):
    import textune.data.large_data as large_data

    monkeypatch.setattr(large_data, "REPORT_SAMPLE_ROWS", 20)
    toy_frame(300, seed=4).to_csv(tweets_dir / "big.csv", index=False)
    args, task_args = split_flags(train_file=str(tweets_dir / "big.csv"), label_column_name="target",
                                  test_file=str(tweets_dir / "test.csv"), large_data="true")
    splits = load_run_splits(args, seed=3, task_args=task_args)
    report = splits.for_report()
    assert len(report.train) == 20 and len(report.validation) == 20 and len(report.test) == 12
    assert {"text", "keyword", "target"} <= set(report.train.columns)
    sampled = report.train.merge(toy_frame(300, seed=4).astype({"id": str}), on=["id", "text"])
    assert sampled["target_x"].tolist() == sampled["target_y"].tolist()  # each sampled text keeps its own label
    rows = {entry.split: entry for entry in report.row_accounting}
    assert (rows["train"].read, rows["train"].held_out, rows["train"].used) == (300, 30, 270)
    assert (rows["validation"].source, rows["validation"].used) == ("held out from train", 30)
    assert rows["test"].read == 12
    assert "seeded sample of train (20 of 270 rows), validation (20 of 30 rows)" in report.notes[0]
