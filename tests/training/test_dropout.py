"""--dropout auto: a run that sees each training row once trains without dropout; longer runs keep the model's."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, TrainerCallback
from transformers.trainer_callback import TrainerControl, TrainerState

from textune import ClassificationArguments, DataArguments, ModelArguments, TextuneTrainingArguments
from textune.training.dropout import TrainingDropout
from textune.errors import TextuneError
from textune.training.trainer import TextuneTrainer
from textune.training.train import train

from conftest import toy_frame


def _rates(model):
    return [m.p for m in model.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d))]


@pytest.mark.parametrize("mode, passes, off", [("auto", 1, True), ("auto", 2, False), ("model", 1, False),
                                               ("off", 3, True)])
def test_callback_sets_rates_for_training_and_restores_them(tmp_path, mode, passes, off):
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3), nn.Dropout(0.0), nn.Dropout2d(0.2))
    args, callback = TextuneTrainingArguments(output_dir=str(tmp_path)), TrainingDropout(mode)
    callback.on_train_begin(args, TrainerState(num_train_epochs=passes), TrainerControl(), model=model)
    assert _rates(model) == ([0.0, 0.0, 0.0] if off else [0.3, 0.0, 0.2])
    callback.on_train_end(args, TrainerState(), TrainerControl(), model=model)
    assert _rates(model) == [0.3, 0.0, 0.2]


def test_a_restarted_training_loop_still_restores_the_models_rates(tmp_path):
    # --auto_find_batch_size reruns the loop after running out of memory: on_train_begin twice, on_train_end once
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3))
    args, callback = TextuneTrainingArguments(output_dir=str(tmp_path)), TrainingDropout("auto")
    callback.on_train_begin(args, TrainerState(num_train_epochs=1), TrainerControl(), model=model)
    callback.on_train_begin(args, TrainerState(num_train_epochs=1), TrainerControl(), model=model)
    assert model[1].p == 0.0
    callback.on_train_end(args, TrainerState(), TrainerControl(), model=model)
    assert model[1].p == 0.3


def test_unknown_mode_is_a_one_line_error(tmp_path):
    with pytest.raises(TextuneError, match="--dropout"):
        TextuneTrainingArguments(output_dir=str(tmp_path), dropout="0.1")


class _Observe(TrainerCallback):
    """Records, before every optimizer step, whether two training-mode forward passes of one batch agree."""

    def __init__(self, batch):
        self.batch, self.same = batch, []

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        was_training = model.training
        model.train()  # as in the step that follows
        with torch.no_grad():
            self.same.append(torch.equal(model(**self.batch).logits, model(**self.batch).logits))
        model.train(was_training)


def _tiny_trainer(model_dir, tmp_path, texts, labels, callbacks, **training):
    """TextuneTrainer on the tiny BERT for `texts`, batch 16, nothing saved."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    rows = [{**tokenizer(text), "labels": label} for text, label in zip(texts, labels)]
    args = TextuneTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=16, report_to="none",
                                    save_strategy="no", use_cpu=True, **training)
    return TextuneTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                          data_collator=DataCollatorWithPadding(tokenizer), callbacks=callbacks)


@pytest.mark.parametrize("mode, epochs, max_steps, off", [("auto", 1, -1, True), ("auto", 2, -1, False),
                                                          ("auto", 5, 2, True), ("model", 1, -1, False),
                                                          ("off", 2, -1, True)])
def test_trainer_trains_deterministically_exactly_when_dropout_is_off(tiny_model_dir, tmp_path, mode, epochs,
                                                                      max_steps, off):
    frame = toy_frame(32, seed=3)
    observe = _Observe(None)
    trainer = _tiny_trainer(tiny_model_dir, tmp_path, frame["text"], frame["target"], [observe],
                            num_train_epochs=epochs, max_steps=max_steps, dropout=mode)
    model = trainer.model
    rates = _rates(model)
    assert rates and all(rate > 0 for rate in rates)
    observe.batch = trainer.processing_class(list(frame["text"][:8]), padding=True, return_tensors="pt")
    trainer.train()
    assert len(observe.same) == (max_steps if max_steps > 0 else 2 * epochs)
    assert all(observe.same) if off else not any(observe.same)
    assert _rates(model) == rates


def test_saved_folder_keeps_the_checkpoints_dropout_and_the_run_records_the_choice(tiny_model_dir, tmp_path):
    toy_frame(48, seed=1).to_csv(tmp_path / "train.csv", index=False)
    toy_frame(16, seed=2).to_csv(tmp_path / "val.csv", index=False)
    out = tmp_path / "out"
    train(ModelArguments(str(tiny_model_dir)),
          DataArguments(train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "val.csv")),
          TextuneTrainingArguments(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=16,
                                   do_train=True, report_to="none", save_strategy="no"),
          ClassificationArguments(label_column_name="target"))
    before = json.loads((tiny_model_dir / "config.json").read_text())
    after = json.loads((out / "config.json").read_text())
    assert after["hidden_dropout_prob"] == before["hidden_dropout_prob"] > 0
    assert after["attention_probs_dropout_prob"] == before["attention_probs_dropout_prob"] > 0
    assert json.loads((out / "textune_run.json").read_text())["training_args"]["dropout"] == "auto"


def test_rates_come_back_when_training_fails(tiny_model_dir, tmp_path):
    class Fail(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            assert all(rate == 0 for rate in _rates(model))
            raise RuntimeError("disk full")

    trainer = _tiny_trainer(tiny_model_dir, tmp_path, toy_frame(8)["text"], [0] * 8, [Fail()], num_train_epochs=1)
    rates = _rates(trainer.model)
    with pytest.raises(RuntimeError, match="disk full"):
        trainer.train()
    assert _rates(trainer.model) == rates
