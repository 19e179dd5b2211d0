"""Streaming prediction and evaluation: chunked output equals the whole-file output, failures leave no file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from textune.inference.batch_predict import evaluate_file, predict_file
from textune.cli import main
from textune.data.tables import read_table, require_columns
from textune.tasks.classification.columns import ColumnSpec
from textune.tasks.classification.labels import LabelSpec
from textune.inference.prediction import Predictor
from textune.run_folder import write_run_file
from textune.tasks import ClassificationTask

from conftest import toy_frame


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory):
    """A run folder as `textune train` leaves it, without the training: the tiny model and its task."""
    folder = tmp_path_factory.mktemp("run")
    for item in tiny_model_dir.iterdir():
        shutil.copy(item, folder / item.name)
    task = ClassificationTask(ColumnSpec(text=["text"], label="target", id="id"),
                              LabelSpec("single_label_classification", ["0", "1"]), max_seq_length=64)
    write_run_file(folder, {"task": task.to_dict()})
    return folder


def rows(n: int = 30) -> pd.DataFrame:
    """Toy rows, with the awkward cells a real file has: an empty text, a tweet that reads "NA", digits only."""
    frame = toy_frame(n, seed=5)
    frame.loc[3, "text"] = ""
    frame.loc[4, "text"] = "NA"
    frame.loc[5, "text"] = "12345"
    return frame


def write(frame: pd.DataFrame, path) -> None:
    name = path.name
    if name.endswith((".csv", ".csv.gz")):
        frame.to_csv(path, index=False)
    elif name.endswith(".tsv"):
        frame.to_csv(path, sep="\t", index=False)
    elif name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    elif name.endswith(".json"):
        frame.to_json(path, orient="records")
    else:
        frame.to_parquet(path, index=False)


def whole_file_predictions(predictor: Predictor, path, output) -> None:
    """What `textune predict` did before streaming: read everything, predict everything, write once."""
    frame = read_table(path, None, "--input")
    require_columns(frame, predictor.task.columns.text, "--input", f"--input {path}")
    predictor.task.prediction_table(frame, predictor.predict(frame)).to_csv(output, index=False)


@pytest.mark.parametrize("name", ["in.csv", "in.tsv", "in.csv.gz", "in.jsonl", "in.json", "in.parquet"])
def test_chunked_output_is_byte_identical_to_the_whole_file_output(run_dir, tmp_path, name, caplog):
    # one text per forward pass, so padding cannot differ between the two ways and bytes must match exactly
    predictor = Predictor.from_run(run_dir, batch_size=1)
    source = tmp_path / name
    write(rows(), source)
    whole_file_predictions(predictor, source, tmp_path / "whole.csv")
    written = predict_file(predictor, source, tmp_path / "chunked.csv", chunk_rows=7, progress=False)
    assert written.rows == 30
    # the empty text is kept, so every row gets a prediction, and said once
    assert [m for m in caplog.messages if "empty text" in m] == \
        [f"--input {source}: 1 rows have empty text; they are kept so every row gets a prediction"]
    assert (tmp_path / "chunked.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    table = pd.read_csv(tmp_path / "chunked.csv", keep_default_na=False)
    assert table["text"].tolist()[3:6] == ["", "NA", "12345"]


def test_chunked_output_matches_the_whole_file_output_with_batching(run_dir, tmp_path):
    predictor = Predictor.from_run(run_dir, batch_size=4)
    write(rows(50), tmp_path / "in.csv")
    whole_file_predictions(predictor, tmp_path / "in.csv", tmp_path / "whole.csv")
    predict_file(predictor, tmp_path / "in.csv", tmp_path / "chunked.csv", chunk_rows=7, progress=False)
    whole, chunked = pd.read_csv(tmp_path / "whole.csv"), pd.read_csv(tmp_path / "chunked.csv")
    assert list(chunked.columns) == ["id", "text", "prediction", "prob_0", "prob_1"]
    pd.testing.assert_frame_equal(chunked.drop(columns=["prob_0", "prob_1"]), whole.drop(columns=["prob_0", "prob_1"]))
    # other batches pad differently, which moves float32 results in the last digits only
    np.testing.assert_allclose(chunked[["prob_0", "prob_1"]], whole[["prob_0", "prob_1"]], atol=1e-5)


def sigterm(message):
    """What `kill PID` does to the process halfway through."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("failure, raised", [(RuntimeError, RuntimeError), (KeyboardInterrupt, KeyboardInterrupt),
                                             (sigterm, SystemExit)])
def test_a_crash_midway_leaves_no_output_and_no_temporary_file(run_dir, tmp_path, monkeypatch, failure, raised):
    predictor = Predictor.from_run(run_dir)
    write(rows(), tmp_path / "in.csv")
    output = tmp_path / "out" / "preds.csv"
    output.parent.mkdir()
    output.write_text("previous predictions\n")
    calls = []
    real_records = predictor.records

    def fail_on_second_chunk(frame, progress=False):
        calls.append(len(frame))
        if len(calls) == 2:
            raise failure("boom")  # sigterm() raises nothing itself: the signal handler does
        return real_records(frame, progress)

    monkeypatch.setattr(predictor, "records", fail_on_second_chunk)
    with pytest.raises(raised):
        predict_file(predictor, tmp_path / "in.csv", output, chunk_rows=7, progress=False)
    assert output.read_text() == "previous predictions\n"  # the old file is untouched, not half-replaced
    assert [p.name for p in output.parent.iterdir()] == ["preds.csv"]


def test_progress_bar_counts_rows_up_to_the_total(run_dir, tmp_path, capsys):
    write(rows(), tmp_path / "in.csv")
    predict_file(run_dir, tmp_path / "in.csv", tmp_path / "preds.csv", chunk_rows=7, progress=True)
    err = capsys.readouterr().err
    assert "Predicting" in err and "30/30" in err


def test_progress_total_comes_from_parquet_metadata(run_dir, tmp_path):
    from textune.data.table_chunks import TableReader

    write(rows(), tmp_path / "in.parquet")
    write(rows(), tmp_path / "in.jsonl")
    assert TableReader.open(tmp_path / "in.parquet").estimated_rows() == 30
    assert TableReader.open(tmp_path / "in.jsonl").estimated_rows() == 30


def test_cli_predict_streams_and_writes_next_to_the_input_by_default(run_dir, tmp_path, capsys):
    write(rows(), tmp_path / "new.jsonl")
    assert main(["predict", "--model", str(run_dir), "--input", str(tmp_path / "new.jsonl"), "--chunk_rows", "8"]) == 0
    assert "Predictions for 30 rows" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "new.predictions.csv")
    assert len(table) == 30 and table["id"].tolist() == rows()["id"].tolist()


def test_missing_text_column_is_one_line_error_with_exit_2_and_writes_nothing(run_dir, tmp_path, capsys):
    rows().rename(columns={"text": "tweet"}).to_csv(tmp_path / "in.csv", index=False)
    code = main(["predict", "--model", str(run_dir), "--input", str(tmp_path / "in.csv"),
                 "--output", str(tmp_path / "preds.csv")])
    messages = [line for line in capsys.readouterr().err.splitlines() if line.startswith("textune:")]
    assert code == 2 and len(messages) == 1  # the rest of stderr is progress bars
    assert "has no column 'text'" in messages[0] and "tweet" in messages[0] and "--input" in messages[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_file_that_is_not_utf8_fails_before_anything_is_written(run_dir, tmp_path, capsys):
    frame = rows(3000)
    frame.loc[2900, "text"] = "caf\u00e9 fire"
    frame.to_csv(tmp_path / "in.csv", index=False, encoding="latin-1")
    code = main(["predict", "--model", str(run_dir), "--input", str(tmp_path / "in.csv"), "--encoding", "utf-8",
                 "--output", str(tmp_path / "preds.csv"), "--chunk_rows", "100"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is not utf-8 text" in err and "--encoding" in err
    assert not (tmp_path / "preds.csv").exists()
    # without --encoding, the cp1252 fallback of read_table applies to the streamed file too
    written = predict_file(run_dir, tmp_path / "in.csv", tmp_path / "preds.csv", progress=False)
    assert written.rows == 3000 and pd.read_csv(tmp_path / "preds.csv")["text"][2900] == "caf\u00e9 fire"


def test_streamed_evaluation_equals_evaluating_the_whole_frame(run_dir, tmp_path, capsys):
    from textune.tasks.classification.columns import drop_unusable_rows

    frame = rows(40)
    frame.loc[7, "target"] = None
    write(frame, tmp_path / "labelled.csv")
    predictor = Predictor.from_run(run_dir, batch_size=1)
    whole = drop_unusable_rows(read_table(tmp_path / "labelled.csv"), predictor.task.columns, "evaluate")
    expected = predictor.evaluate(whole)
    streamed = evaluate_file(predictor, tmp_path / "labelled.csv", chunk_rows=6, progress=False)
    assert streamed["eval_samples"] == expected["eval_samples"] == 38
    assert streamed.keys() == expected.keys()
    for key, value in expected.items():
        assert streamed[key] == pytest.approx(value, abs=1e-6)

    assert main(["evaluate", "--model", str(run_dir), "--input", str(tmp_path / "labelled.csv"),
                 "--chunk_rows", "6", "--output", str(tmp_path / "metrics.json")]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["eval_samples"] == 38


def test_qa_rows_without_ids_are_numbered_across_chunks_as_in_the_whole_file(tiny_model_dir, tmp_path):
    from conftest import save_untrained_qa_run

    run = save_untrained_qa_run(tiny_model_dir, tmp_path / "qa")
    rows = pd.DataFrame({"question": [f"where is fire {i}" for i in range(10)],
                         "context": [f"a fire near town number {i}" for i in range(10)]})
    rows.to_csv(tmp_path / "questions.csv", index=False)
    # batch size 1: other batches pad differently, which moves scores in their last digits
    predict_file(run, tmp_path / "questions.csv", tmp_path / "whole.csv", batch_size=1, progress=False)
    chunked = predict_file(run, tmp_path / "questions.csv", tmp_path / "chunked.csv", chunk_rows=4, batch_size=1,
                           progress=False)
    ids = pd.read_csv(chunked.output, dtype=str)["id"].tolist()
    assert ids == [str(i) for i in range(10)]  # not 0-3, 0-3, 0-1
    assert (tmp_path / "chunked.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
