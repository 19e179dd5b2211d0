"""`--label_names` end to end: one tiny run whose classes are named, read back from every place that shows labels.

The raw labels stay 0/1 in the data files and in submission.csv (Kaggle scores those); everything meant for
people (config.json's id2label, predictions, the API, the demo, the report, an exported Space) shows the names.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from textune.inference.batch_predict import evaluate_file
from textune.cli import main, parse_train_args
from textune.tasks.classification.labels import MULTI, SINGLE, LabelSpec
from textune.inference.prediction import Predictor
from textune.serving import ModelService, ServeConfig, build_app

from conftest import save_untrained_run, toy_frame, tutorial_argv

NAMES = ["not a disaster", "disaster"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("named-data")
    toy_frame(64, seed=1).to_csv(folder / "train.csv", index=False)
    toy_frame(16, seed=2).to_csv(folder / "val.csv", index=False)
    toy_frame(12, seed=3, with_label=False).to_csv(folder / "test.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def named_run(tiny_model_dir, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("named") / "run"
    assert main(tutorial_argv(tiny_model_dir, data_dir, out, "--label_names", "0=not a disaster,1=disaster")) == 0
    return out


def test_config_json_and_the_run_file_name_the_classes(named_run):
    config = json.loads((named_run / "config.json").read_text())
    assert config["id2label"] == {"0": "not a disaster", "1": "disaster"}
    assert config["label2id"] == {"not a disaster": 0, "disaster": 1}
    labels = json.loads((named_run / "textune_run.json").read_text())["task"]["labels"]
    assert labels["labels"] == ["0", "1"] and labels["names"] == NAMES


def test_the_model_card_lists_the_names(named_run):
    card = (named_run / "README.md").read_text(encoding="utf-8")
    assert "- `0`: not a disaster" in card and "- `1`: disaster" in card


def test_prediction_files_show_the_names_and_submission_keeps_the_raw_labels(named_run):
    predictions = pd.read_csv(named_run / "predictions.csv")
    assert set(predictions["prediction"]) <= set(NAMES)
    assert [column for column in predictions if column.startswith("prob_")] == [f"prob_{name}" for name in NAMES]
    lines = (named_run / "predict_results.txt").read_text().splitlines()[1:]
    assert [line.split("\t")[1] for line in lines] == predictions["prediction"].tolist()
    submission = pd.read_csv(named_run / "submission.csv")
    assert list(submission.columns) == ["id", "target"]
    assert submission["target"].tolist() == [NAMES.index(name) for name in predictions["prediction"]]


def test_evaluate_on_raw_labels_scores_as_the_unnamed_classes_would(named_run, data_dir):
    predictor = Predictor.from_run(named_run)
    named = evaluate_file(predictor, data_dir / "val.csv", progress=False)
    predictor.task.labels = LabelSpec(SINGLE, ["0", "1"])  # the same model with its raw labels as names
    unnamed = evaluate_file(predictor, data_dir / "val.csv", progress=False)
    assert named == unnamed
    assert named["eval_samples"] == 16


def test_evaluate_command_reads_raw_labels_of_a_named_run(named_run, data_dir, tmp_path):
    output = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(named_run), "--input", str(data_dir / "val.csv"),
                 "--output", str(output)]) == 0
    metrics = json.loads(output.read_text())
    trained = json.loads((named_run / "all_results.json").read_text())
    assert metrics["eval_accuracy"] == pytest.approx(trained["eval_accuracy"])


def test_api_labels_and_scores_use_the_names(named_run):
    with TestClient(build_app(ModelService.from_run(named_run), ServeConfig(ui=False))) as client:
        labels = client.get("/v1/labels").json()
        [record] = client.post("/v1/predict", json={"texts": ["Forest fire near my house"]}).json()["predictions"]
    assert labels["labels"] == NAMES
    assert record["label"] in NAMES and set(record["scores"]) == set(NAMES)


def test_demo_label_output_and_header_use_the_names(named_run):
    from textune.serving.ui import header_markdown

    service = ModelService.from_run(named_run)
    [record] = service.predict(["Forest fire near my house"])
    [scores] = service.task.demo().show(record)
    assert set(scores) == set(NAMES)
    assert "`not a disaster`, `disaster`" in header_markdown(service.info, "Tweets", service.task.card())


def test_report_tables_name_the_classes(named_run):
    html = (named_run / "report.html").read_text()
    confusion = html.split('id="confusion-matrix-table"')[1].split("</table>")[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in confusion.split("<tr>")[2:]]
    assert [row[0] for row in rows] == NAMES
    assert all(f"<th>{name}</th>" in confusion for name in NAMES)
    per_class = html.split('id="per-class-table"')[1].split("</table>")[0]
    assert [re.findall(r"<td[^>]*>(.*?)</td>", row)[0] for row in per_class.split("<tr>")[2:]] == NAMES
    md = (named_run / "report.md").read_text()
    assert "not a disaster (0), disaster (1)" in md  # the configuration lists each name with its raw label
    validation = pd.read_csv(named_run / "validation_predictions.csv")
    assert set(validation["label"]) == set(NAMES)  # true labels named as the predictions are


def test_exported_space_model_keeps_the_names(named_run, tmp_path):
    space = tmp_path / "space"
    assert main(["export-space", str(named_run), "--to", str(space)]) == 0
    config = json.loads((space / "model" / "config.json").read_text())
    assert list(config["id2label"].values()) == NAMES
    assert ModelService.from_run(space / "model").task.describe()["labels"] == NAMES


@pytest.mark.parametrize("config_text", [
    "label_names: {0: not a disaster, 1: disaster}\n",
    "label_names: [not a disaster, disaster]\n",
])
def test_a_config_file_gives_label_names_as_a_mapping_or_a_list(config_text, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(config_text)
    _, _, data_args, _ = parse_train_args(["--config", str(config), "--output_dir", str(tmp_path / "out")])
    assert LabelSpec(SINGLE, ["0", "1"]).with_names(data_args.label_names).display_names == NAMES


def test_label_names_on_a_regression_run_is_one_line_exit_2(tiny_model_dir, tmp_path, capsys):
    frame = toy_frame(32, seed=1).assign(target=[0.5 + i / 10 for i in range(32)])
    frame.to_csv(tmp_path / "train.csv", index=False)
    argv = ["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(tmp_path / "train.csv"),
            "--label_column_name", "target", "--do_train", "--label_names", "0=low", "--output_dir",
            str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["textune: error: --label_names names classes, but this run is regression; drop --label_names "
                   "(or pass --do_regression false to treat the labels as classes)"]
    assert not (tmp_path / "out").exists()


def test_a_negative_raw_label_is_named_with_the_equals_form_of_the_flag(tmp_path):
    _, _, data_args, _ = parse_train_args(["--label_names=-1=negative,1=positive", "--output_dir", str(tmp_path)])
    assert LabelSpec(SINGLE, ["-1", "1"]).with_names(data_args.label_names).display_names == ["negative", "positive"]


def test_a_json_arguments_file_gives_label_names_as_a_mapping(tmp_path):
    arguments = tmp_path / "args.json"
    arguments.write_text(json.dumps({"label_names": {"0": "not a disaster", "1": "disaster"},
                                     "output_dir": str(tmp_path / "out")}))
    _, _, data_args, training_args = parse_train_args([str(arguments)])
    assert LabelSpec(SINGLE, ["0", "1"]).with_names(data_args.label_names).display_names == NAMES
    assert training_args.label_names is None  # transformers' own field (batch keys) keeps its default


def test_multi_label_api_names_the_predicted_labels_and_scores(tiny_model_dir, tmp_path):

    labels = LabelSpec(MULTI, ["fire", "flood", "storm"], ",").with_names("fire=wildfire,storm=windstorm")
    service = ModelService.from_run(save_untrained_run(tiny_model_dir, tmp_path, labels))
    with TestClient(build_app(service, ServeConfig(ui=False))) as client:
        assert client.get("/v1/labels").json()["labels"] == ["wildfire", "flood", "windstorm"]
        [record] = client.post("/v1/predict", json={"texts": ["fire near town"]}).json()["predictions"]
    assert set(record["scores"]) == {"wildfire", "flood", "windstorm"}
    assert record["labels"] == [name for name, p in record["scores"].items() if p > 0.5]
