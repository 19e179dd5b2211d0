"""Extension points: heads, losses and class weights, metrics, preprocessing, data in code, config files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from textune import (ModelArguments, Predictor, TextuneError, TextuneTrainingArguments,
                     register_head, register_metric, train)
from textune.cli import main
from textune.tasks.classification.losses import build_compute_loss, class_weights

from conftest import split_flags, toy_frame

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("restore_registries")


def tiny_run(model_dir, out, model=None, data=None, training=None, **given):
    training = {"output_dir": str(out), "max_steps": 4, "per_device_train_batch_size": 16, "do_train": True,
                "do_eval": True, "save_strategy": "no", "report_to": "none", **(training or {})}
    data = {"label_column_name": "target", **(data or {}), **(model or {})}  # head, pooling: the task's flags
    training_flags = {key: training.pop(key) for key in ("class_weights", "loss", "focal_gamma") if key in training}
    if not given:
        given = {"train_data": toy_frame(48, seed=1), "validation_data": toy_frame(16, seed=2)}
    data_args, task_args = split_flags(**data, **training_flags)
    return train(ModelArguments(str(model_dir)), data_args, TextuneTrainingArguments(**training), task_args, **given)


@pytest.mark.parametrize("head", ["mlp", "mean_pool", "multisample_dropout"])
def test_each_builtin_head_trains_saves_and_reloads_with_the_same_outputs(tiny_model_dir, tmp_path, head):
    out = tmp_path / "run"
    result = tiny_run(tiny_model_dir, out, model={"head": head})
    assert "eval_accuracy" in result.metrics["eval"]
    record = json.loads((out / "textune_run.json").read_text())
    assert record["task"]["head"] == head
    assert record["task"]["pooling"] == ("mean" if head == "mean_pool" else "cls")
    reloaded = Predictor.from_run(out)
    texts = toy_frame(4, seed=5)
    again = Predictor.from_run(out).predict(texts)
    assert np.allclose(reloaded.predict(texts)["prob_1"], again["prob_1"])


def test_a_registered_custom_head_is_used_and_reloads_without_loading_code(tiny_model_dir, tmp_path):
    calls = []

    class CountingHead(nn.Module):
        def __init__(self, hidden, num_labels, dropout):
            super().__init__()
            self.linear = nn.Linear(hidden, num_labels)

        def forward(self, pooled):
            calls.append(pooled.shape)
            return self.linear(pooled)

    register_head("counting", CountingHead, pooling="mean")
    out = tmp_path / "run"
    tiny_run(tiny_model_dir, out, model={"head": "counting"})
    assert calls and calls[0][1] == 32  # pooled (batch, hidden) reached the head
    trained = calls.copy()
    predictions = Predictor.from_run(out).predict(["fire flood near town", "sunny coffee party"])
    assert len(calls) > len(trained) and list(predictions.columns) == ["prediction", "prob_0", "prob_1"]
    weights = __import__("safetensors.torch", fromlist=["load_file"]).load_file(out / "model.safetensors")
    assert "head.linear.weight" in weights


def test_an_unknown_head_is_a_one_line_error(tiny_model_dir, tweets_dir, tmp_path, capsys):
    code = main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(tweets_dir / "train.csv"),
                 "--label_column_name", "target", "--head", "nope", "--output_dir", str(tmp_path / "out")])
    assert code == 2 and "--head 'nope' is not registered" in capsys.readouterr().err


def test_class_weights_auto_are_balanced_inverse_frequencies():
    weights = class_weights("auto", [0, 0, 0, 1], "single_label_classification", 2)
    assert torch.allclose(weights, torch.tensor([4 / 6, 4 / 2]))
    pos = class_weights("auto", [[1, 0], [1, 0], [0, 1], [1, 1]], "multi_label_classification", 2)
    assert torch.allclose(pos, torch.tensor([1 / 3, 2 / 2]))
    assert class_weights("1,3", [0, 1], "single_label_classification", 2).tolist() == [1.0, 3.0]
    with pytest.raises(TextuneError, match="2 classes"):
        class_weights("1,2,3", [0, 1], "single_label_classification", 2)


def test_class_weights_and_focal_loss_change_the_loss_as_defined():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.2], [-1.0, 1.5]])
    labels = torch.tensor([0, 1, 1])
    outputs = {"logits": logits}
    assert build_compute_loss("cross_entropy", "single_label_classification", None, 2.0) is None
    weights = torch.tensor([1.0, 3.0])
    weighted = build_compute_loss("cross_entropy", "single_label_classification", weights, 2.0)(outputs, labels)
    assert weighted == pytest.approx(nn.functional.cross_entropy(logits, labels, weight=weights).item())
    assert weighted != pytest.approx(nn.functional.cross_entropy(logits, labels).item())
    focal0 = build_compute_loss("focal", "single_label_classification", None, 0.0)(outputs, labels)
    assert focal0 == pytest.approx(nn.functional.cross_entropy(logits, labels).item())
    p_true = torch.softmax(logits, -1)[torch.arange(3), labels]
    expected = (-(1 - p_true) ** 2 * p_true.log()).mean()
    assert build_compute_loss("focal", "single_label_classification", None, 2.0)(outputs, labels) == \
        pytest.approx(expected.item())


def test_class_weights_change_the_training_loss(tiny_model_dir, tmp_path):
    imbalanced = toy_frame(64, seed=1)
    imbalanced["target"] = [1 if i % 8 == 0 else 0 for i in range(64)]
    losses = {}
    for spec in ("none", "auto"):
        result = tiny_run(tiny_model_dir, tmp_path / spec, training={"class_weights": spec, "max_steps": 8, "seed": 3,
                                                                        "learning_rate": 1e-2},
                          train_data=imbalanced, validation_data=toy_frame(16, seed=2))
        losses[spec] = result.metrics["train"]["train_loss"]
    # once the model leans to the majority class, weighting the rare class makes the loss larger
    assert losses["auto"] > losses["none"] * 1.05


def test_a_registered_metric_lands_in_eval_results_and_drives_early_stopping(tiny_model_dir, tmp_path):
    register_metric("error_rate", lambda predictions, references: {
        "error_rate": float(np.mean(np.asarray(predictions) != np.asarray(references)))})
    out = tmp_path / "run"
    result = tiny_run(tiny_model_dir, out, data={"metric_name": "error_rate"},
                      training={"max_steps": -1, "num_train_epochs": 6, "early_stopping_patience": 1,
                                "metric_for_best_model": "error_rate", "greater_is_better": False,
                                "learning_rate": 1e-9, "save_strategy": "epoch"})
    results = json.loads((out / "eval_results.json").read_text())
    assert results["eval_error_rate"] == pytest.approx(1 - results["eval_accuracy"])
    # with a learning rate too small to improve anything, patience 1 stops after the second evaluation
    assert result.metrics["train"]["epoch"] < 6


def test_a_preprocessing_step_is_saved_and_repeated_at_prediction(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    tiny_run(tiny_model_dir, out, data={"preprocess": "normalize_tweets,lowercase"})
    predictor = Predictor.from_run(out)
    assert predictor.task.preprocess == ["normalize_tweets", "lowercase"]
    loud = predictor.task.tokenize(predictor.tokenizer, pd.DataFrame({"text": ["FIRE @bob http://t.co/x &amp; flood"]}))
    calm = predictor.task.tokenize(predictor.tokenizer, pd.DataFrame({"text": ["fire @user http & flood"]}))
    assert loud["input_ids"] == calm["input_ids"]


def test_an_unknown_preprocessing_step_names_the_known_ones(tiny_model_dir, tmp_path):
    with pytest.raises(TextuneError, match="normalize_tweets"):
        tiny_run(tiny_model_dir, tmp_path / "run", data={"preprocess": "stem"})


@pytest.mark.parametrize("kind", ["dataframe", "dataset", "callable"])
def test_training_data_can_be_given_in_code(tiny_model_dir, tmp_path, kind):
    from datasets import Dataset

    frame = toy_frame(40, seed=1)
    given = {"dataframe": frame, "dataset": Dataset.from_pandas(frame), "callable": lambda: frame}[kind]
    result = tiny_run(tiny_model_dir, tmp_path / "run", train_data=given)
    assert result.metrics["train"]["train_samples"] == 36  # 10% held out for validation


CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_every_shipped_config_is_listed_and_documented():
    assert len(CONFIGS) >= 4
    for path in CONFIGS:
        assert path.read_text().startswith("#"), f"{path.name} needs a header saying what it is for"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_trains_a_tiny_model(config, tiny_model_dir, tweets_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    overrides = ["--model_name_or_path", str(tiny_model_dir), "--max_steps", "2", "--output_dir", str(tmp_path / "o")]
    if "disaster" in config.stem:  # Kaggle's files are the user's to download: use the fixture tweets
        overrides += ["--train_file", str(tweets_dir / "train.csv"), "--validation_file", str(tweets_dir / "val.csv"),
                      "--test_file", str(tweets_dir / "test.csv")]
    assert main(["train", "--config", str(config), *overrides]) == 0
    record = json.loads((tmp_path / "o" / "textune_run.json").read_text())
    assert record["base_model"] == str(tiny_model_dir)  # the command line wins over the file


def test_a_config_key_that_is_no_flag_is_named_with_a_suggestion(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("lerning_rate: 0.1\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "'lerning_rate' is not a flag of textune train; did you mean 'learning_rate'?" in capsys.readouterr().err


@pytest.mark.parametrize("form", ["yaml", "json"])
def test_config_keys_resolve_as_the_command_line_resolves_flags(tweets_dir, tmp_path, form):
    from textune.cli import parse_train_args

    # text_column_name: the tutorial's spelling, an abbreviation argparse accepts for --text_column_names;
    # no_use_fast_tokenizer: a --no_ switch of a flag that defaults to true
    values = {"train_file": str(tweets_dir / "train.csv"), "text_column_name": "text", "label_column": "target",
              "no_use_fast_tokenizer": True, "output_dir": str(tmp_path / "out")}
    if form == "yaml":
        (tmp_path / "run.yaml").write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in values.items()))
        argv = ["--config", str(tmp_path / "run.yaml")]
    else:
        (tmp_path / "args.json").write_text(json.dumps(values))
        argv = [str(tmp_path / "args.json")]
    model_args, _, task_args, _ = parse_train_args(argv)
    assert task_args.text_column_names == "text" and task_args.label_column_name == "target"
    assert model_args.use_fast_tokenizer is False


def test_a_config_key_that_abbreviates_several_flags_is_refused_naming_them(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("per_device: 8\n")
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "'per_device' is ambiguous" in err and "per_device_train_batch_size" in err
    assert len(err.strip().splitlines()) == 1


MARKER_METRIC = '''
from pathlib import Path
Path({marker!r}).write_text("imported")


def compute(predictions, references):
    return {{"marker_metric": 1.0}}
'''


@pytest.fixture
def run_naming_a_metric_script(tiny_model_dir, tmp_path):
    """A run folder (from anyone) whose textune_run.json names a metric script that leaves a marker when imported."""
    import shutil

    from textune.tasks.classification.columns import ColumnSpec
    from textune.tasks.classification.labels import LabelSpec
    from textune.run_folder import write_run_file
    from textune.tasks import ClassificationTask

    marker = tmp_path / "script-was-run"
    script = tmp_path / "marker_metric.py"
    script.write_text(MARKER_METRIC.format(marker=str(marker)))
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run_dir)
    task = ClassificationTask(ColumnSpec(text=["text"], label="target"),
                              LabelSpec("single_label_classification", ["0", "1"]), max_seq_length=32)
    write_run_file(run_dir, {"task": task.to_dict() | {"metric_name": str(script)}})
    toy_frame(10, seed=4).to_csv(tmp_path / "labelled.csv", index=False)
    return run_dir, script, marker


def test_loading_predicting_and_serving_a_run_never_imports_its_metric_script(run_naming_a_metric_script, tmp_path):
    from fastapi.testclient import TestClient

    from textune.serving import ModelService, ServeConfig, build_app

    run_dir, _, marker = run_naming_a_metric_script
    Predictor.from_run(run_dir).predict(["forest fire near the town"])
    assert main(["predict", "--model", str(run_dir), "--input", str(tmp_path / "labelled.csv"),
                 "--output", str(tmp_path / "preds.csv")]) == 0
    with TestClient(build_app(ModelService.from_run(run_dir), ServeConfig(ui=False))) as client:
        assert client.post("/v1/predict", json={"texts": ["flood"]}).status_code == 200
    assert not marker.exists()


def test_evaluate_runs_a_metric_script_only_when_passed_on_the_command_line(run_naming_a_metric_script, tmp_path,
                                                                            capsys, caplog):
    run_dir, script, marker = run_naming_a_metric_script
    evaluate = ["evaluate", "--model", str(run_dir), "--input", str(tmp_path / "labelled.csv")]
    assert main(evaluate) == 0
    assert not marker.exists()
    assert "eval_accuracy" in json.loads(capsys.readouterr().out)
    assert f"pass --metric_name {script}" in caplog.text
    assert main([*evaluate, "--metric_name", str(script)]) == 0
    assert marker.exists() and json.loads(capsys.readouterr().out)["eval_marker_metric"] == 1.0


def test_export_space_works_for_a_run_with_a_metric_script_and_the_space_loads(run_naming_a_metric_script, tmp_path):
    from textune.serving import export_space

    run_dir, _, marker = run_naming_a_metric_script
    space = export_space(run_dir, tmp_path / "space")
    assert Predictor.from_run(space / "model").predict(["storm"])["prediction"].iloc[0] in ("0", "1")
    assert not marker.exists()


def test_export_space_refuses_a_head_whose_code_is_outside_textune(tiny_model_dir, tmp_path, capsys):
    import shutil

    from textune.tasks.classification.columns import ColumnSpec
    from textune.tasks.classification.labels import LabelSpec
    from textune.run_folder import write_run_file
    from textune.tasks import ClassificationTask

    register_head("two_layer", lambda hidden, num_labels, dropout: nn.Sequential(nn.Linear(hidden, num_labels)))
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run_dir)
    task = ClassificationTask(ColumnSpec(text=["text"], label="target"),
                              LabelSpec("single_label_classification", ["0", "1"]), head="two_layer")
    write_run_file(run_dir, {"task": task.to_dict()})
    assert main(["export-space", str(run_dir), "--to", str(tmp_path / "space")]) == 2
    err = capsys.readouterr().err
    assert "head 'two_layer' (defined in test_plugins)" in err and "a Space does not carry" in err
    assert not (tmp_path / "space").exists()


def test_a_run_trained_with_a_registered_metric_loads_and_exports_where_it_is_not_registered(
        run_naming_a_metric_script, tmp_path):
    from textune.run_folder import write_run_file
    from textune.serving import export_space

    run_dir, _, _ = run_naming_a_metric_script
    record = json.loads((run_dir / "textune_run.json").read_text())
    record["task"]["metric_name"] = "error_rate"  # registered by the user's module at training time, not here
    write_run_file(run_dir, record)
    assert len(Predictor.from_run(run_dir).predict(["flood"])) == 1
    space = export_space(run_dir, tmp_path / "space")
    assert len(Predictor.from_run(space / "model").predict(["flood"])) == 1
