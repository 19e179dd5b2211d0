"""--late_dropout: no dropout in the first pass over the training data, the model's rates from the second epoch."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, TrainerCallback
from transformers.trainer_callback import TrainerControl, TrainerState

from textune import DataArguments, ModelArguments, TextuneTrainingArguments
from textune.late_dropout import LateDropout
from textune.trainer import TextuneTrainer
from textune.training import train

from conftest import toy_frame


def _rates(model):
    return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]


def test_callback_switches_rates_by_epoch_and_restores_them_at_the_end(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3), nn.Linear(4, 4), nn.Dropout(0.0), nn.Dropout2d(0.2))
    args, control, callback = TextuneTrainingArguments(output_dir=str(tmp_path)), TrainerControl(), LateDropout()
    callback.on_train_begin(args, TrainerState(epoch=0), control, model=model)
    assert [m.p for m in model if hasattr(m, "p")] == [0.0, 0.0, 0.0]
    callback.on_epoch_begin(args, TrainerState(epoch=0.999), control, model=model)
    assert model[1].p == 0.0
    callback.on_epoch_begin(args, TrainerState(epoch=1.0), control, model=model)
    assert [m.p for m in model if hasattr(m, "p")] == [0.3, 0.0, 0.2]
    # a run that stops during the first pass (max_steps, early stopping) leaves the model with its own rates
    callback.on_epoch_begin(args, TrainerState(epoch=0), control, model=model)
    callback.on_train_end(args, TrainerState(epoch=0.5), control, model=model)
    assert [m.p for m in model if hasattr(m, "p")] == [0.3, 0.0, 0.2]


def test_resuming_after_the_first_epoch_keeps_the_models_dropout(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3))
    LateDropout().on_train_begin(TextuneTrainingArguments(output_dir=str(tmp_path)), TrainerState(epoch=1.5),
                                 TrainerControl(), model=model)
    assert model[1].p == 0.3


class _Observe(TrainerCallback):
    """Records, before every optimizer step, the epoch and whether two training-mode forward passes agree."""

    def __init__(self, batch):
        self.batch, self.steps = batch, []

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        was_training = model.training
        model.train()  # as in the step that follows
        with torch.no_grad():
            same = torch.equal(model(**self.batch).logits, model(**self.batch).logits)
        model.train(was_training)
        self.steps.append((state.epoch, same, _rates(model)))


@pytest.mark.parametrize("late", [True, False])
def test_trainer_runs_the_first_epoch_deterministically_and_the_second_with_dropout(tiny_model_dir, tmp_path, late):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    rates = _rates(model)
    assert rates and all(rate > 0 for rate in rates)
    frame = toy_frame(32, seed=3)
    rows = [{**tokenizer(text), "labels": label} for text, label in zip(frame["text"], frame["target"])]
    observe = _Observe(tokenizer(list(frame["text"][:8]), padding=True, return_tensors="pt"))
    args = TextuneTrainingArguments(output_dir=str(tmp_path), num_train_epochs=2, per_device_train_batch_size=16,
                                    report_to="none", save_strategy="no", late_dropout=late, use_cpu=True)
    trainer = TextuneTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                             data_collator=DataCollatorWithPadding(tokenizer), callbacks=[observe])
    trainer.train()
    first = [step for step in observe.steps if step[0] < 1]
    second = [step for step in observe.steps if step[0] >= 1]
    assert len(first) == len(second) == 2
    if late:
        assert all(same and all(r == 0 for r in now) for _, same, now in first)
    else:
        assert not any(same for _, same, _ in first) and all(now == rates for _, _, now in first)
    assert not any(same for _, same, _ in second) and all(now == rates for _, _, now in second)
    assert _rates(model) == rates


def test_saved_folder_keeps_the_checkpoints_dropout_and_the_run_records_the_choice(tiny_model_dir, tmp_path):
    toy_frame(48, seed=1).to_csv(tmp_path / "train.csv", index=False)
    toy_frame(16, seed=2).to_csv(tmp_path / "val.csv", index=False)
    out = tmp_path / "out"
    train(ModelArguments(str(tiny_model_dir)),
          DataArguments(train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "val.csv"),
                        label_column_name="target"),
          TextuneTrainingArguments(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=16,
                                   do_train=True, report_to="none", save_strategy="no"))
    before = json.loads((tiny_model_dir / "config.json").read_text())
    after = json.loads((out / "config.json").read_text())
    assert after["hidden_dropout_prob"] == before["hidden_dropout_prob"] > 0
    assert after["attention_probs_dropout_prob"] == before["attention_probs_dropout_prob"] > 0
    assert json.loads((out / "textune_run.json").read_text())["training_args"]["late_dropout"] is True
