"""Speed defaults: `--bf16 auto` follows the hardware, and training batches are grouped by length."""

from __future__ import annotations

import json
import random

import pytest

from textune.training import hardware
from textune.cli import main, parse_train_args
from textune.errors import TextuneError

from conftest import toy_frame


def parsed(*flags):
    return parse_train_args(["--train_file", "train.csv", "--output_dir", "unused", *flags])[-1]


@pytest.mark.parametrize("native", [True, False])
def test_bf16_auto_follows_the_cpus_native_bf16_support(monkeypatch, native):
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    args = parsed()
    assert args.bf16 is native
    assert args.use_cpu is native  # Trainer refuses bf16 without a GPU unless told the run is on the CPU


def test_bf16_auto_gives_way_to_fp16(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    assert hardware.resolve_bf16("auto", fp16=True, use_cpu=True) is False


@pytest.mark.parametrize("flags, expected", [(["--bf16"], True), (["--bf16", "yes"], True),
                                             (["--bf16", "false"], False), (["--bf16", "0"], False)])
def test_bf16_flag_keeps_its_transformers_spellings(monkeypatch, flags, expected):
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: not expected)
    assert parsed(*flags).bf16 is expected


def test_unknown_bf16_value_names_the_flag_and_the_choices():
    with pytest.raises(TextuneError, match=r"--bf16 'maybe'.*auto, true or false"):
        parsed("--bf16", "maybe")


def test_training_groups_batches_by_length_unless_told_otherwise():
    assert parsed().train_sampling_strategy == "group_by_length"
    assert parsed("--group_by_length", "false").train_sampling_strategy == "random"
    assert parsed("--train_sampling_strategy", "random").train_sampling_strategy == "random"
    assert parsed("--group_by_length").train_sampling_strategy == "group_by_length"


def padded_tokens(monkeypatch, model_dir, data_dir, out, *flags) -> int:
    """Train one epoch and count the tokens the training batches were padded to."""
    from transformers import Trainer

    seen = []
    original = Trainer.training_step

    def training_step(trainer, model, inputs, *args, **kwargs):
        seen.append(inputs["input_ids"].numel())
        return original(trainer, model, inputs, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", training_step)
    argv = ["train", "--model_name_or_path", str(model_dir), "--train_file", str(data_dir / "train.csv"),
            "--label_column_name", "target", "--do_train", "--output_dir", str(out),
            "--per_device_train_batch_size", "8", "--save_strategy", "no",
            "--report_to", "none", *flags]
    assert main(argv) == 0
    return sum(seen)


def test_default_training_computes_less_padding_than_random_batches(monkeypatch, tiny_model_dir, tmp_path):
    rng = random.Random(0)
    frame = toy_frame(96, seed=5)
    # lengths from 3 to ~60 words, so random batches pad short rows to long ones
    frame["text"] = [text + " and" * rng.choice([0, 0, 5, 20, 50]) for text in frame["text"]]
    frame.to_csv(tmp_path / "train.csv", index=False)
    grouped = padded_tokens(monkeypatch, tiny_model_dir, tmp_path, tmp_path / "grouped")
    shuffled = padded_tokens(monkeypatch, tiny_model_dir, tmp_path, tmp_path / "random",
                             "--train_sampling_strategy", "random")
    assert grouped < 0.8 * shuffled
    assert json.loads((tmp_path / "grouped" / "textune_run.json").read_text())["training_args"][
        "train_sampling_strategy"] == "group_by_length"


def test_bf16_autocast_trains_on_the_cpu(monkeypatch, tiny_model_dir, tmp_path):
    """Where auto picks bf16 on a CPU, Trainer runs under CPU autocast and the run still trains and saves."""
    import torch

    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    toy_frame(32, seed=6).to_csv(tmp_path / "train.csv", index=False)
    dtypes = []
    original = torch.nn.Linear.forward

    def forward(layer, x):
        out = original(layer, x)
        dtypes.append(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.Linear, "forward", forward)
    argv = ["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(tmp_path / "train.csv"),
            "--label_column_name", "target", "--do_train", "--output_dir", str(tmp_path / "out"),
            "--per_device_train_batch_size", "8",
            "--save_strategy", "no", "--report_to", "none"]
    assert main(argv) == 0
    assert torch.bfloat16 in dtypes
    record = json.loads((tmp_path / "out" / "textune_run.json").read_text())
    assert record["training_args"]["bf16"] is True
    results = json.loads((tmp_path / "out" / "train_results.json").read_text())
    assert results["train_loss"] == results["train_loss"]  # not NaN
