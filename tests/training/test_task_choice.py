"""Choosing the task of a run: --task, or its training columns; each task's own flags; train() with defaults."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

import pytest

from textune import ClassificationArguments, DataArguments, ModelArguments, TextuneError, TextuneTrainingArguments
from textune.cli import main
from textune.tasks import TASKS, ClassificationTask, choose_task

from conftest import toy_frame


@dataclass
class WindowArguments:
    """A stand-in task's flags: one neither built-in task has (a registered task's flag would be claimed by it)."""

    window_stride: int = field(default=128, metadata={"help": "Tokens shared by two windows of a long passage."})


class WindowTask:
    """The parts of a task that choosing it needs: its name, flags, reader and column detection."""

    name = "window-reading"
    arguments = WindowArguments

    @classmethod
    def detect(cls, columns):
        return "it has query and passage columns" if {"query", "passage"} <= set(columns) else None

    @classmethod
    def read(cls, path, encoding, flag):
        return None


@pytest.fixture
def window_task(monkeypatch):
    monkeypatch.setitem(TASKS, WindowTask.name, WindowTask)
    return WindowTask


def test_classification_is_picked_from_a_text_column_and_the_log_says_why(caplog):
    with caplog.at_level(logging.INFO, logger="textune.tasks"):
        chosen = choose_task(None, ["id", "text", "target"], "--train_file train.csv")

    assert chosen is ClassificationTask
    assert ("task: text-classification, picked from the columns of --train_file train.csv: it has a 'text' column"
            in caplog.text)


def test_another_tasks_columns_pick_it_before_the_classification_fallback(window_task, caplog):
    with caplog.at_level(logging.INFO, logger="textune.tasks"):
        chosen = choose_task(None, ["query", "passage", "text"], "--train_file qa.csv")

    assert chosen is window_task
    assert "task: window-reading, picked from the columns of --train_file qa.csv: it has query and passage" \
        in caplog.text


def test_a_table_no_task_recognises_is_classification_and_an_unknown_task_is_one_line(caplog):
    with caplog.at_level(logging.INFO, logger="textune.tasks"):
        assert choose_task(None, ["tweet", "target"], "--train_file t.csv") is ClassificationTask
    assert "no other task recognises its columns" in caplog.text
    with pytest.raises(TextuneError, match=r"--task 'summarize' is not known; use one of text-classification"):
        choose_task("summarize", ["text"], "--train_file t.csv")


def test_the_task_arguments_given_in_code_must_match_the_task_flag(window_task):
    assert choose_task(None, ["text", "label"], "code", WindowArguments()) is window_task
    with pytest.raises(TextuneError, match="the arguments of --task window-reading"):
        choose_task("text-classification", ["text", "label"], "code", WindowArguments())


def test_a_flag_of_another_task_is_refused_in_one_line(window_task, tweets_dir, tmp_path, capsys):
    argv = ["train", "--train_file", str(tweets_dir / "train.csv"), "--output_dir", str(tmp_path / "out")]

    assert main([*argv, "--window_stride", "64"]) == 2
    messages = capsys.readouterr().err.strip().splitlines()
    assert messages == ["textune: error: --window_stride is a flag of --task window-reading; pass --task "
                        "window-reading, or drop --window_stride"]
    (tmp_path / "run.yaml").write_text("window_stride: 64\n")
    assert main([*argv, "--config", str(tmp_path / "run.yaml")]) == 2
    assert "--window_stride is a flag of --task window-reading" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_train_help_lists_the_chosen_tasks_flags(window_task, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    default_help = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--task", "window-reading", "--help"])
    window_help = capsys.readouterr().out

    assert "--label_column_name" in default_help and "--window_stride" not in default_help
    assert "--window_stride" in window_help and "--label_column_name" not in window_help


def test_classification_arguments_check_their_values_with_the_flag_named():
    with pytest.raises(TextuneError, match="--problem_type 'binary' is not known"):
        ClassificationArguments(problem_type="binary")
    with pytest.raises(TextuneError, match="--max_seq_length must be positive, got 0"):
        ClassificationArguments(max_seq_length=0)
    with pytest.raises(TextuneError, match="--focal_gamma must be >= 0, got -1"):
        ClassificationArguments(focal_gamma=-1)
    with pytest.raises(TextuneError, match="--label_names mixes"):
        ClassificationArguments(label_names=["0=calm", "disaster"])
    assert ClassificationArguments(text_column_names="keyword, text").text_columns == ["keyword", "text"]


def test_train_in_code_with_only_a_train_file_trains_evaluates_and_records_the_task(tiny_model_dir, tmp_path,
                                                                                    caplog):
    from textune import train

    toy_frame(48, seed=1).rename(columns={"target": "label"}).to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "run"

    with caplog.at_level(logging.INFO, logger="textune"):
        result = train(ModelArguments(str(tiny_model_dir)), DataArguments(train_file=str(tmp_path / "train.csv")),
                       TextuneTrainingArguments(output_dir=str(out), max_steps=2, report_to="none"))

    assert "task: text-classification, picked from the columns of --train_file" in caplog.text
    assert set(result.metrics) == {"train", "eval"} and (out / "model.safetensors").is_file()
    record = json.loads((out / "textune_run.json").read_text())
    assert record["task"]["name"] == "text-classification" and record["task"]["columns"]["label"] == "label"
    assert record["task_args"] == asdict(ClassificationArguments())
    assert "label_column_name" not in record["data_args"] and record["data_args"]["task"] is None


@pytest.fixture
def hub_qa_dataset(monkeypatch):
    """--dataset_name answers QA rows (no download), and train() stops once it has chosen the task."""
    import pandas as pd

    import textune.training.train as training

    rows = pd.DataFrame({"id": ["q1", "q2"], "question": ["what burned", "what rose"],
                         "context": ["the forest burned", "the river rose"], "answer": ["the forest", "the river"]})
    monkeypatch.setattr("textune.data.splits._hub_splits", lambda data_args: {"train": rows.copy()})
    chosen = {}

    def choose_and_stop(model_args, data_args, training_args, task_args=None, **_):
        from textune.data.splits import build_task

        chosen["task_args"] = task_args
        chosen["task"] = build_task(data_args, task_args, rows.copy(), f"hub dataset {data_args.dataset_name}").name
        raise TextuneError("stopped before training")

    monkeypatch.setattr(training, "train", choose_and_stop)
    return chosen


def test_a_hub_dataset_without_task_is_detected_from_its_columns(hub_qa_dataset, tmp_path, caplog):
    argv = ["train", "--dataset_name", "someone/tweet-qa", "--output_dir", str(tmp_path / "out")]
    with caplog.at_level(logging.INFO, logger="textune.tasks"):
        assert main(argv) == 2  # the stand-in train() stops

    assert hub_qa_dataset == {"task_args": None, "task": "question-answering"}
    assert "task: question-answering, picked from the columns of hub dataset someone/tweet-qa" in caplog.text


def test_a_hub_dataset_with_a_task_flag_trains_that_flags_task(hub_qa_dataset, tmp_path, capsys):
    argv = ["train", "--dataset_name", "someone/tweet-qa", "--output_dir", str(tmp_path / "out")]

    assert main([*argv, "--doc_stride", "64"]) == 2  # a QA flag without --task: one line asking for it
    assert "--doc_stride is a flag of --task question-answering; pass --task question-answering" in \
        capsys.readouterr().err
    assert main([*argv, "--task", "question-answering", "--doc_stride", "64"]) == 2
    assert hub_qa_dataset["task"] == "question-answering" and hub_qa_dataset["task_args"].doc_stride == 64
