"""Run reports: every training run writes report.html/report.md and readable PNGs; `textune report` rebuilds them."""

from __future__ import annotations

import json
import re
import struct

import pandas as pd
import pytest

from textune.cli import main

from conftest import split_flags, toy_frame

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def train_argv(model_dir, data_dir, output_dir, *extra):
    return [
        "train", "--model_name_or_path", str(model_dir), "--train_file", f"{data_dir}/train.csv",
        "--validation_file", f"{data_dir}/val.csv", "--text_column_name", "text", "--label_column_name", "target",
        "--do_train", "--do_eval", "--per_device_train_batch_size", "16", "--learning_rate", "1e-3",
        "--num_train_epochs", "1", "--logging_steps", "1", "--eval_strategy", "steps", "--eval_steps", "2",
        "--report_to", "none", "--output_dir", str(output_dir), *extra,
    ]


def png_size(path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def trained_run(tiny_model_dir, tmp_path_factory):
    """One tiny classification run (4 steps, evaluated every 2), shared by the tests of this module."""
    root = tmp_path_factory.mktemp("report-run")
    data = root / "data"
    data.mkdir()
    train = toy_frame(64, seed=1)
    train.loc[3, "text"] = "  "  # dropped: empty text
    train.loc[5, "target"] = None  # dropped: missing label
    train.to_csv(data / "train.csv", index=False)
    toy_frame(24, seed=2).to_csv(data / "val.csv", index=False)
    out = root / "run"
    assert main(train_argv(tiny_model_dir, data, out)) == 0
    return out


def test_a_training_run_writes_the_report_files_and_valid_pngs(trained_run):
    for name in ("report.html", "report.md", "validation_predictions.csv"):
        assert (trained_run / name).is_file(), name
    plots = {path.stem: path for path in (trained_run / "plots").glob("*.png")}
    assert set(plots) == {"loss", "metrics", "confusion_matrix", "text_length"}
    for name, path in plots.items():
        width, height = png_size(path)
        assert width >= 400 and height >= 300, name
        assert path.stat().st_size > 10_000, f"{name}.png is suspiciously small"
    from PIL import Image

    for path in plots.values():
        with Image.open(path) as image:
            image.verify()


def test_report_html_is_self_contained_with_the_metrics_table_and_confusion_matrix(trained_run):
    html = (trained_run / "report.html").read_text()
    results = json.loads((trained_run / "all_results.json").read_text())
    assert 'id="metrics-table"' in html and 'id="confusion-matrix-table"' in html
    assert f"{results['eval_accuracy']:.4f}" in html
    assert html.count("data:image/png;base64,") == 4
    assert "plots/" not in html and "http://" not in html and "https://" not in html  # nothing to fetch
    for section in ("Per-class precision, recall and F1", "Most confidently wrong validation examples",
                    "Data", "Configuration", "Training curves"):
        assert section in html
    # the confusion matrix counts every validation row once
    table = html.split('id="confusion-matrix-table"')[1].split("</table>")[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("<tr>")[2:]]
    assert [row[0] for row in rows] == ["0", "1"]
    assert sum(int(count) for row in rows for count in row[1:]) == results["eval_samples"] == 24


def test_report_md_links_its_plots_and_accounts_for_dropped_rows(trained_run):
    md = (trained_run / "report.md").read_text()
    for name in ("loss", "metrics", "confusion_matrix", "text_length"):
        assert f"(plots/{name}.png)" in md
    rows = next(line for line in md.splitlines() if line.startswith("| train |"))
    # split | source | read | empty text | missing label | held out | capped | used
    cells = [cell.strip() for cell in rows.strip("|").split("|")]
    assert cells[2:] == ["64", "1", "1", "0", "0", "62"]
    assert "| 0 |" in md and "| 1 |" in md  # label distribution rows


def test_validation_predictions_match_the_run_metrics(trained_run):
    table = pd.read_csv(trained_run / "validation_predictions.csv")
    results = json.loads((trained_run / "all_results.json").read_text())
    assert len(table) == 24
    assert {"text", "label", "prediction", "prob_0", "prob_1", "correct", "confidence"} <= set(table.columns)
    assert table["correct"].mean() == pytest.approx(results["eval_accuracy"])


def test_report_command_rebuilds_the_report_of_an_existing_run(trained_run, monkeypatch, capsys):
    (trained_run / "report.html").unlink()
    for path in (trained_run / "plots").glob("*.png"):
        path.unlink()
    assert main(["report", str(trained_run)]) == 0
    assert "report.html" in capsys.readouterr().out
    assert (trained_run / "report.html").is_file()
    assert len(list((trained_run / "plots").glob("*.png"))) == 4


def test_report_of_a_folder_that_is_not_a_run_is_one_line_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "textune_run.json" in capsys.readouterr().err


def regression_targets(frame):
    return frame["target"] * 2.5 + frame.index % 3 * 0.25


def multi_label_targets(frame):
    return ["disaster|news" if label else ("calm" if i % 2 else "calm|news") for i, label in enumerate(frame["target"])]


@pytest.mark.parametrize("targets, extra, problem_type, plots, wrong_title", [
    (regression_targets, [], "regression", {"loss", "metrics", "predicted_vs_true", "text_length"},
     "Largest validation errors"),
    (multi_label_targets, ["--label_delimiter", "|"], "multi_label_classification", {"loss", "metrics", "text_length"},
     "Most confidently wrong validation examples"),
], ids=["regression", "multi-label"])
def test_reports_adapt_to_the_problem_type(tiny_model_dir, tmp_path, targets, extra, problem_type, plots, wrong_title):
    data = tmp_path / "data"
    data.mkdir()
    for name, seed, n in (("train", 1, 32), ("val", 2, 12)):
        frame = toy_frame(n, seed=seed)
        frame["target"] = targets(frame)
        frame.to_csv(data / f"{name}.csv", index=False)
    out = tmp_path / "run"
    assert main(train_argv(tiny_model_dir, data, out, *extra)) == 0
    assert json.loads((out / "textune_run.json").read_text())["task"]["labels"]["problem_type"] == problem_type
    assert {path.stem for path in (out / "plots").glob("*.png")} == plots
    md = (out / "report.md").read_text()
    assert wrong_title in md
    assert ("Per-class precision" in md) == (problem_type != "regression")


def test_report_to_tensorboard_writes_an_events_file(tiny_model_dir, tweets_dir, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    argv = train_argv(tiny_model_dir, tweets_dir, out)
    argv[argv.index("--report_to") + 1] = "tensorboard"
    assert main(argv) == 0
    assert list(out.glob("runs/*/events.out.tfevents.*"))


def test_rows_held_out_for_validation_and_over_max_train_samples_are_accounted_for(tmp_path):
    from textune.report.data_summary import split_rows
    from textune.data.splits import load_splits

    frame = toy_frame(64, seed=1)
    frame.loc[0, "text"] = ""
    frame.to_csv(tmp_path / "train.csv", index=False)
    data_args, task_args = split_flags(train_file=str(tmp_path / "train.csv"), label_column_name="target",
                                       max_train_samples=40)
    rows = {row.split: row for row in split_rows(data_args, 42, load_splits(data_args, 42, task_args=task_args))}
    train, validation = rows["train"], rows["validation"]
    assert (train.read, train.dropped, train.used) == (64, {"empty_text": 1, "missing_label": 0}, 40)
    assert train.held_out == validation.used == 6  # 10% of the 63 usable rows
    assert train.capped == 63 - 6 - 40
    assert validation.source == "held out from train" and validation.read is None


def test_write_report_lists_the_files_the_task_sections_wrote(trained_run, monkeypatch):
    from textune.report import write_report
    from textune.tasks import ClassificationTask, Section

    own_sections = ClassificationTask.report_sections

    def with_a_table(self, rows, records, plots_dir, splits=None, tokenizer=None):
        table = plots_dir.parent / "answers_table.csv"
        table.write_text("a,b\n1,2\n", encoding="utf-8")
        return [*own_sections(self, rows, records, plots_dir, splits, tokenizer),
                Section("Extra", "a table", files={"answers_table": table})]

    monkeypatch.setattr(ClassificationTask, "report_sections", with_a_table)
    files = write_report(trained_run)
    assert files["validation_predictions"] == trained_run / "validation_predictions.csv"
    assert files["answers_table"] == trained_run / "answers_table.csv"


def test_the_headline_follows_the_task_s_headline_metrics_with_the_metric_name_first():
    from pathlib import Path

    import pandas as pd

    from textune.report.build import ReportData, headline
    from textune.tasks import ClassificationTask
    from textune.tasks.classification.columns import ColumnSpec
    from textune.tasks.classification.labels import LabelSpec

    task = ClassificationTask(ColumnSpec(text=["text"], label="target"), LabelSpec.infer(pd.Series([0, 1])),
                              metric_name="matthews_correlation")
    metrics = {"eval_accuracy": 0.9, "eval_matthews_correlation": 0.5, "eval_loss": 0.3, "eval_runtime": 1.0}
    data = ReportData(Path("run"), {"task": task.to_dict()}, task, metrics, [])
    assert list(headline(data)) == ["matthews_correlation", "accuracy", "loss"]
