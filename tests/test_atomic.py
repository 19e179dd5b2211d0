"""Results are published whole: a failure while writing leaves the previous file intact and no temporary file."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from textune.atomic import atomic_write, write_text_atomically
from textune.cli import main
from textune.tasks.classification.columns import ColumnSpec
from textune.tasks.classification.labels import LabelSpec
from textune.run_folder import write_run_file
from textune.tasks import ClassificationTask

from conftest import toy_frame

TASK = ClassificationTask(ColumnSpec(text=["text"], label="target", id="id"),
                          LabelSpec("single_label_classification", ["0", "1"]), max_seq_length=64)


def fail_on_fsync(monkeypatch):
    """Fail after the data is written but before it is published (a full disk shows up at flush/fsync)."""
    def refuse(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", refuse)


def test_atomic_write_publishes_only_a_complete_file(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half of the new")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]
    write_text_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]


def test_a_failure_writing_predictions_keeps_the_previous_files(tmp_path, monkeypatch):
    frame = toy_frame(6, seed=3, with_label=False)
    logits = np.random.default_rng(0).normal(size=(len(frame), 2)).astype(np.float32)
    records = TASK.decode(frame, None, (logits,))
    old = {name: f"previous {name}\n" for name in ("predict_results.txt", "predictions.csv", "submission.csv")}
    for name, text in old.items():
        (tmp_path / name).write_text(text)

    fail_on_fsync(monkeypatch)
    with pytest.raises(OSError):
        TASK.write_predictions(tmp_path, frame, records)
    for name, text in old.items():
        assert (tmp_path / name).read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(old)

    monkeypatch.undo()
    real_to_csv = pd.DataFrame.to_csv

    def write_half_then_fail(self, target=None, **kwargs):
        real_to_csv(self.iloc[: len(self) // 2], target, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", write_half_then_fail)
    with pytest.raises(OSError):
        TASK.write_predictions(tmp_path, frame, records)
    # each file is whole: predict_results.txt (written first) is the complete new one, the CSVs the old ones
    assert len((tmp_path / "predict_results.txt").read_text().splitlines()) == 1 + len(frame)
    for name in ("predictions.csv", "submission.csv"):
        assert (tmp_path / name).read_text() == old[name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(old)

    monkeypatch.undo()
    written = TASK.write_predictions(tmp_path, frame, records)
    assert len(pd.read_csv(written["predictions"])) == len(pd.read_csv(written["submission"])) == 6


def test_evaluate_output_is_replaced_only_when_complete(tiny_model_dir, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run_dir)
    write_run_file(run_dir, {"task": TASK.to_dict()})
    toy_frame(12, seed=4).to_csv(tmp_path / "labelled.csv", index=False)
    output = tmp_path / "metrics.json"
    output.write_text('{"previous": true}\n')
    fail_on_fsync(monkeypatch)
    with pytest.raises(OSError):
        main(["evaluate", "--model", str(run_dir), "--input", str(tmp_path / "labelled.csv"), "--output", str(output)])
    assert output.read_text() == '{"previous": true}\n'
    assert not list(tmp_path.glob(".metrics.json.*"))
