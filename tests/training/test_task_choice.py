"""Choosing the task of a run: --task, or its training columns; each task's own flags; train() with defaults."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import pytest

from textune import ClassificationArguments, DataArguments, ModelArguments, TextuneError, TextuneTrainingArguments
from textune.cli import main
from textune.tasks import TASKS, ClassificationTask, choose_task

from conftest import toy_frame


@pytest.fixture
def window_task():
    """Question answering: a task with columns and flags of its own (its windows' --doc_stride)."""
    return TASKS["question-answering"]


def test_classification_is_picked_from_a_text_column_and_the_log_says_why(caplog):
    with caplog.at_level(logging.INFO, logger="textune.tasks"):
        chosen = choose_task(None, ["id", "text", "target"], "--train_file train.csv")

    assert chosen is ClassificationTask
    assert ("task: text-classification, picked from the columns of --train_file train.csv: it has a 'text' column"
            in caplog.text)


def test_another_tasks_columns_pick_it_before_the_classification_fallback(window_task, caplog):
    with caplog.at_level(logging.INFO, logger="textune.tasks"):
        chosen = choose_task(None, ["question", "context", "text"], "--train_file qa.csv")

    assert chosen is window_task
    assert ("task: question-answering, picked from the columns of --train_file qa.csv: the data has 'question' and "
            "'context' columns" in caplog.text)


def test_a_table_no_task_recognises_is_classification_and_an_unknown_task_is_one_line(caplog):
    with caplog.at_level(logging.INFO, logger="textune.tasks"):
        assert choose_task(None, ["tweet", "target"], "--train_file t.csv") is ClassificationTask
    assert "no other task recognises its columns" in caplog.text
    with pytest.raises(TextuneError, match=r"--task 'summarize' is not known; use one of text-classification"):
        choose_task("summarize", ["text"], "--train_file t.csv")


def test_the_task_arguments_given_in_code_must_match_the_task_flag(window_task):
    assert choose_task(None, ["text", "label"], "code", window_task.arguments()) is window_task
    with pytest.raises(TextuneError, match="the arguments of --task question-answering"):
        choose_task("text-classification", ["text", "label"], "code", window_task.arguments())


def test_a_flag_of_another_task_is_refused_in_one_line(window_task, tweets_dir, tmp_path, capsys):
    argv = ["train", "--train_file", str(tweets_dir / "train.csv"), "--output_dir", str(tmp_path / "out")]

    assert main([*argv, "--doc_stride", "64"]) == 2
    messages = capsys.readouterr().err.strip().splitlines()
    assert messages == ["textune: error: --doc_stride is a flag of --task question-answering; pass --task "
                        "question-answering, or drop --doc_stride"]
    (tmp_path / "run.yaml").write_text("doc_stride: 64\n")
    assert main([*argv, "--config", str(tmp_path / "run.yaml")]) == 2
    assert "--doc_stride is a flag of --task question-answering" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_train_help_lists_the_chosen_tasks_flags(window_task, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    default_help = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--task", "question-answering", "--help"])
    window_help = capsys.readouterr().out

    assert "--label_column_name" in default_help and "--doc_stride" not in default_help
    assert "--doc_stride" in window_help and "--label_column_name" not in window_help


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
