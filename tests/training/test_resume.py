"""Never lose a run: kill and resume, stop on signals, skip broken checkpoints, save the final model atomically."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from textune.cli import main

from conftest import toy_frame


def train_argv(model_dir, data_dir, out, *extra, max_steps=40):
    return ["train", "--model_name_or_path", str(model_dir), "--train_file", str(data_dir / "train.csv"),
            "--validation_file", str(data_dir / "val.csv"), "--label_column_name", "target",
            "--do_train", "--do_eval", "--per_device_train_batch_size", "4", "--max_steps", str(max_steps),
            "--save_steps", "10", "--logging_steps", "10", "--learning_rate", "1e-3", "--seed", "7",
            "--output_dir", str(out), *extra]


@pytest.fixture
def data_dir(tmp_path):
    toy_frame(256, seed=1).to_csv(tmp_path / "train.csv", index=False)
    toy_frame(32, seed=2).to_csv(tmp_path / "val.csv", index=False)
    return tmp_path


def start(argv) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "textune", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_checkpoint(process: subprocess.Popen, out: Path, step: int, timeout: float = 120) -> None:
    """Block until checkpoint-<step> is complete on disk (its trainer_state.json exists)."""
    deadline = time.monotonic() + timeout
    while not (out / f"checkpoint-{step}" / "trainer_state.json").exists():
        if process.poll() is not None:
            pytest.fail(f"training ended before checkpoint-{step}: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no checkpoint-{step} within {timeout}s")
        time.sleep(0.02)


def final_step(out: Path) -> int:
    return json.loads((out / "trainer_state.json").read_text())["global_step"]


def test_sigkill_mid_epoch_then_resume_finishes_every_step_and_predicts(tiny_model_dir, data_dir, tmp_path):
    out = tmp_path / "run"
    process = start(train_argv(tiny_model_dir, data_dir, out, max_steps=400))
    wait_for_checkpoint(process, out, 20)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (out / "textune_run.json").exists()  # no final model yet

    assert main(train_argv(tiny_model_dir, data_dir, out, "--resume", max_steps=400)) == 0
    assert final_step(out) == 400
    assert main(["predict", "--model", str(out), "--input", str(data_dir / "val.csv"),
                 "--output", str(tmp_path / "preds.csv")]) == 0
    assert (tmp_path / "preds.csv").read_text().count("\n") == 33


def test_resumed_run_ends_where_an_uninterrupted_run_ends(tiny_model_dir, data_dir, tmp_path):
    straight = tmp_path / "straight"
    assert main(train_argv(tiny_model_dir, data_dir, straight)) == 0

    resumed = tmp_path / "resumed"
    process = start(train_argv(tiny_model_dir, data_dir, resumed, max_steps=40))
    wait_for_checkpoint(process, resumed, 10)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert main(train_argv(tiny_model_dir, data_dir, resumed, "--resume")) == 0

    a = json.loads((straight / "eval_results.json").read_text())
    b = json.loads((resumed / "eval_results.json").read_text())
    assert b["eval_loss"] == pytest.approx(a["eval_loss"], abs=1e-4)
    assert b["eval_accuracy"] == a["eval_accuracy"]
    from safetensors.torch import load_file

    wa, wb = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-4) for k in wa)


def test_sigterm_saves_a_checkpoint_at_the_current_step_and_exits(tiny_model_dir, data_dir, tmp_path):
    out = tmp_path / "run"
    process = start(train_argv(tiny_model_dir, data_dir, out, "--save_steps", "5", max_steps=100000))
    wait_for_checkpoint(process, out, 5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    assert "--resume" in err and "Traceback" not in err
    from textune.training.checkpoints import find_resumable_checkpoint

    last = find_resumable_checkpoint(out)
    step = json.loads((last / "trainer_state.json").read_text())["global_step"]
    assert last.name == f"checkpoint-{step}" and 5 <= step < 100000
    assert not (out / "textune_run.json").exists()  # stopped: no final model pretending to be complete


def test_incomplete_and_corrupt_checkpoints_are_skipped_with_a_warning(tiny_model_dir, data_dir, tmp_path, caplog):
    out = tmp_path / "run"
    assert main(train_argv(tiny_model_dir, data_dir, out, max_steps=20)) == 0
    (out / "checkpoint-30").mkdir()  # an interrupted save: no trainer_state.json
    (out / "checkpoint-30" / "model.safetensors").write_bytes(b"partial")
    corrupt = out / "checkpoint-25"
    corrupt.mkdir()
    for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt"):
        (corrupt / name).write_bytes((out / "checkpoint-20" / name).read_bytes())
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 64)

    from textune.training.checkpoints import find_resumable_checkpoint

    with caplog.at_level(logging.WARNING, logger="textune"):
        assert find_resumable_checkpoint(out) == out / "checkpoint-20"
    assert "checkpoint-30: trainer_state.json is missing" in caplog.text
    assert "checkpoint-25: model.safetensors is corrupt" in caplog.text


def test_resume_from_an_incomplete_checkpoint_path_is_refused(tiny_model_dir, data_dir, tmp_path, capsys):
    broken = tmp_path / "checkpoint-5"
    broken.mkdir()
    code = main(train_argv(tiny_model_dir, data_dir, tmp_path / "run", "--resume_from_checkpoint", str(broken)))
    assert code == 2
    assert "trainer_state.json is missing" in capsys.readouterr().err


def test_a_crash_during_the_final_save_leaves_no_half_written_model(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    from transformers import Trainer

    real_save = Trainer.save_model

    def crash_after_writing(self, output_dir=None, _internal_call=False):
        real_save(self, output_dir, _internal_call)
        if not _internal_call:  # the final save, not a checkpoint
            raise OSError("disk full")

    monkeypatch.setattr(Trainer, "save_model", crash_after_writing)
    out = tmp_path / "run"
    with pytest.raises(OSError):
        main(train_argv(tiny_model_dir, data_dir, out, "--debug", max_steps=10))
    for name in ("config.json", "model.safetensors", "textune_run.json"):
        assert not (out / name).exists()
    assert (out / "checkpoint-10" / "trainer_state.json").exists()  # the checkpoint survives


def fake_checkpoint(folder: Path, files: dict[str, bytes]) -> Path:
    """A checkpoint folder as DeepSpeed, FSDP or --save_only_model leaves it, without those libraries."""
    for name, content in {"trainer_state.json": b'{"global_step": 10}', **files}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


DEEPSPEED_FILES = {"latest": b"global_step10", "global_step10/mp_rank_00_model_states.pt": b"x",
                   "global_step10/bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt": b"x", "zero_to_fp32.py": b""}
FSDP_FILES = {"pytorch_model_fsdp_0/__0_0.distcp": b"x", "pytorch_model_fsdp_0/.metadata": b"x",
              "optimizer_0/__0_0.distcp": b"x", "scheduler.pt": b"x"}


@pytest.mark.parametrize("files, layout", [(DEEPSPEED_FILES, "DeepSpeed"), (FSDP_FILES, "FSDP")])
def test_deepspeed_and_fsdp_checkpoints_are_recognised_as_complete(tmp_path, files, layout):
    from textune.training.checkpoints import checkpoint_layout, checkpoint_problem, find_resumable_checkpoint

    checkpoint = fake_checkpoint(tmp_path / "checkpoint-10", files)
    assert checkpoint_layout(checkpoint) == layout
    assert checkpoint_problem(checkpoint) is None
    assert find_resumable_checkpoint(tmp_path) == checkpoint
    state = "global_step10" if layout == "DeepSpeed" else "optimizer_0"
    for file in (checkpoint / state).iterdir():  # a save that stopped before its state was written
        file.unlink()
    assert "missing or empty" in checkpoint_problem(checkpoint)


@pytest.mark.parametrize("files, message", [
    (DEEPSPEED_FILES, "checkpoint-10 was saved by DeepSpeed; pass the same --deepspeed config to resume it"),
    (FSDP_FILES, "checkpoint-10 was saved by FSDP; pass the same --fsdp and --fsdp_config to resume it"),
    ({"model.safetensors": None}, "checkpoint-10: it holds the model weights only (saved with --save_only_model), "
                                  "so the optimizer and scheduler cannot be resumed"),
    ({"model.safetensors": None, "optimizer.pt": b"x", "scheduler.pt": b"x", "trainer_state.json": b'{"glo'},
     "checkpoint-10: trainer_state.json is truncated or corrupt"),
])
def test_resume_stops_with_one_line_when_the_checkpoints_cannot_be_resumed(tiny_model_dir, data_dir, tmp_path,
                                                                          capsys, files, message):
    out = tmp_path / "run"
    files = {name: (tiny_model_dir / name).read_bytes() if content is None else content
             for name, content in files.items()}
    checkpoint = fake_checkpoint(out / "checkpoint-10", files)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(train_argv(tiny_model_dir, data_dir, out, "--resume", max_steps=20)) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("textune:")]
    assert len(errors) == 1 and message in errors[0]
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # nothing trained over it
    assert checkpoint.is_dir()
