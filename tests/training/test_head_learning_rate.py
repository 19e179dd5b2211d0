"""The new classification head trains at --head_learning_rate, the pretrained encoder at --learning_rate."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
import torch
from torch import nn

from textune import ClassificationArguments, DataArguments, ModelArguments, TextuneTrainingArguments
from textune.errors import TextuneError
from textune.training.head_learning_rate import mark_new_parameters, new_parameter_names, split_head_parameters
from textune.training.train import train

from conftest import toy_frame


@pytest.fixture(scope="module")
def encoder_only_dir(tiny_model_dir, tmp_path_factory):
    """The tiny BERT saved without a classifier, as sentence encoders (all-MiniLM-L6-v2) are published."""
    from transformers import AutoModel, AutoTokenizer

    path = tmp_path_factory.mktemp("encoder-only")
    AutoModel.from_pretrained(tiny_model_dir).save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(path)
    return path


def test_split_moves_exactly_the_head_into_groups_at_its_rate_keeping_weight_decay():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    names = [name for name, _ in model.named_parameters()]
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                  lr=2e-5)
    moved = split_head_parameters(optimizer, model, {"2.weight", "2.bias"}, 1e-3)
    assert moved == ["2.bias", "2.weight"]
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert len(by_param) == len(names) == sum(len(g["params"]) for g in optimizer.param_groups)
    assert by_param[id(params["2.weight"])]["lr"] == 1e-3 and by_param[id(params["2.weight"])]["weight_decay"] == 0.01
    assert by_param[id(params["2.bias"])]["lr"] == 1e-3 and by_param[id(params["2.bias"])]["weight_decay"] == 0.0
    assert all(by_param[id(params[n])]["lr"] == 2e-5 for n in names if not n.startswith("2."))


def test_pooler_counts_as_head_only_when_the_head_is_new():
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                                     intermediate_size=8, vocab_size=20))
    mark_new_parameters(model, ["classifier.weight", "classifier.bias"])
    assert set(new_parameter_names(model)) == {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight",
                                               "bert.pooler.dense.bias"}
    mark_new_parameters(model, [])
    assert new_parameter_names(model) == ()


@pytest.mark.parametrize("labels, expect_new", [(2, False), (3, True)])
def test_build_model_records_what_the_checkpoint_lacked(tiny_model_dir, encoder_only_dir, labels, expect_new):
    from textune.tasks.classification.labels import LabelSpec
    from textune.tasks.classification.columns import ColumnSpec
    from textune.tasks import ClassificationTask

    task = ClassificationTask(ColumnSpec(["text"], "target"), LabelSpec.infer(pd.Series(list(range(labels)) * 2)), 64, False,
                              "accuracy")
    # tiny_model_dir has a trained 2-output head: with 2 labels nothing is new; 3 labels replace its head
    model = task.build_model(str(tiny_model_dir), ModelArguments(str(tiny_model_dir)))
    assert bool(new_parameter_names(model)) is expect_new
    model = task.build_model(str(encoder_only_dir), ModelArguments(str(encoder_only_dir)))
    assert {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight"} <= set(new_parameter_names(model))


def _train(model_dir, tmp_path, **training):
    tmp_path.mkdir()
    toy_frame(64, seed=1).to_csv(tmp_path / "train.csv", index=False)
    toy_frame(16, seed=2).to_csv(tmp_path / "val.csv", index=False)
    args = dict(output_dir=str(tmp_path / "out"), num_train_epochs=1, per_device_train_batch_size=16, do_train=True,
                report_to="none", save_strategy="no", learning_rate=1e-3, **training)
    train(ModelArguments(str(model_dir)),
          DataArguments(train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "val.csv")),
          TextuneTrainingArguments(**args),
          ClassificationArguments(label_column_name="target"))
    from safetensors.torch import load_file

    return load_file(tmp_path / "out" / "model.safetensors")


def test_head_learning_rate_zero_freezes_the_new_head_and_pooler_not_the_encoder(encoder_only_dir, tmp_path, caplog):
    from safetensors.torch import load_file

    before = load_file(encoder_only_dir / "model.safetensors")
    with caplog.at_level(logging.INFO, logger="textune"):
        after = _train(encoder_only_dir, tmp_path / "frozen", head_learning_rate=0.0)
    assert "learning rate 0 for 4 new head parameters" in caplog.text
    key = next(k for k in after if k.endswith("pooler.dense.weight"))
    assert torch.equal(after[key], before[key.removeprefix("bert.")])
    query = next(k for k in after if k.endswith("layer.0.attention.self.query.weight"))
    assert not torch.equal(after[query], before[query.removeprefix("bert.")])
    # by default the pooler trains (at 50x the encoder's rate)
    trained = _train(encoder_only_dir, tmp_path / "default")
    assert not torch.equal(trained[key], before[key.removeprefix("bert.")])


def test_default_is_fifty_times_learning_rate_and_recorded(tmp_path):
    args = TextuneTrainingArguments(output_dir=str(tmp_path), learning_rate=2e-5)
    assert args.head_learning_rate == pytest.approx(1e-3)
    assert TextuneTrainingArguments(output_dir=str(tmp_path), head_learning_rate=3e-4).head_learning_rate == 3e-4
    with pytest.raises(TextuneError, match="--head_learning_rate"):
        TextuneTrainingArguments(output_dir=str(tmp_path), head_learning_rate=-1.0)


def test_resuming_a_checkpoint_saved_with_another_head_rate_names_the_flag(encoder_only_dir, tmp_path, capsys):
    from textune.cli import main

    toy_frame(64, seed=1).to_csv(tmp_path / "train.csv", index=False)
    toy_frame(16, seed=2).to_csv(tmp_path / "val.csv", index=False)
    out = tmp_path / "run"

    def argv(steps, *extra):
        return ["train", "--model_name_or_path", str(encoder_only_dir), "--train_file", str(tmp_path / "train.csv"),
                "--validation_file", str(tmp_path / "val.csv"), "--label_column_name", "target", "--do_train",
                "--per_device_train_batch_size", "8", "--max_steps", str(steps), "--save_steps", "4",
                "--learning_rate", "1e-3", "--output_dir", str(out), "--report_to", "none", *extra]

    # a checkpoint written with one rate for all (the layout of runs from before the head rate)
    assert main(argv(4, "--head_learning_rate", "1e-3")) == 0
    capsys.readouterr()
    assert main(argv(8, "--resume")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("textune: error: --resume: ") and "checkpoint-4" in err[-1]
    assert "--head_learning_rate 0.001 if it used one rate for all" in err[-1]
    assert not any("Traceback" in line for line in err)
    assert main(argv(8, "--resume", "--head_learning_rate", "1e-3")) == 0
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 8

