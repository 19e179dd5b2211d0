"""`textune train` under torchrun and accelerate launch: 2 CPU processes (gloo) on the tiny model.

The run must shard the training data, save one final model, evaluate every validation row exactly once (31 rows,
so the two processes get uneven shares) and predict every test row once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from textune import Predictor
from textune.cli import main
from textune.training.distributed import barrier, is_main_process, max_over_processes

from conftest import toy_frame

TRAIN_ROWS, VAL_ROWS, TEST_ROWS = 64, 31, 13
PER_DEVICE_BATCH = 8


@pytest.fixture
def data_dir(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    toy_frame(TRAIN_ROWS, seed=1).to_csv(folder / "train.csv", index=False)
    toy_frame(VAL_ROWS, seed=2).to_csv(folder / "val.csv", index=False)
    toy_frame(TEST_ROWS, seed=3, with_label=False).to_csv(folder / "test.csv", index=False)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(*script: str) -> list[str]:
    """torchrun with 2 local processes, its rendezvous on a free loopback port (no fixed port to collide on)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
            "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{free_port()}", *script]


def train_argv(model_dir, data_dir, out, *extra, max_steps: int = 16, label: str = "target") -> list[str]:
    return ["train", "--model_name_or_path", str(model_dir), "--train_file", str(data_dir / "train.csv"),
            "--validation_file", str(data_dir / "val.csv"), "--test_file", str(data_dir / "test.csv"),
            "--label_column_name", label, "--do_train", "--do_eval", "--do_predict", "--max_steps", str(max_steps),
            "--per_device_train_batch_size", str(PER_DEVICE_BATCH), "--per_device_eval_batch_size", "4",
            "--learning_rate", "3e-3", "--save_strategy", "no", "--report_to", "none", "--seed", "3",
            # fp32 on every CPU: the run's metrics are compared exactly with `textune evaluate`'s fp32 ones, and
            # bf16 autocast (--bf16 auto's pick where the CPU has native bf16) flips near-0.5 tiny-model labels
            "--bf16", "false", "--output_dir", str(out), *extra]


def start(command: list[str], log: Path) -> subprocess.Popen:
    """Start a launcher with its output in `log`; one thread per process, as 2 processes share the test machine."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    with log.open("w") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=log.parent)


def stop_and_fail(process: subprocess.Popen, log: Path, why: str) -> None:
    """Stop a launcher the way a user would, so that it stops its workers too (they run in their own sessions)."""
    process.send_signal(signal.SIGTERM)  # torchrun forwards it to its workers and SIGKILLs them after 30 s
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
    pytest.fail(f"{why}:\n{log.read_text()[-3000:]}")


def launch(command: list[str], log: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run a launcher to the end; a hang fails the test instead of blocking the suite."""
    process = start(command, log)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_and_fail(process, log, f"{command[2]} did not finish within {timeout}s")
    return subprocess.CompletedProcess(command, process.returncode, log.read_text(), "")


def assert_one_run_over_two_processes(out: Path, data_dir: Path, tmp_path: Path) -> None:
    """One final model, metrics over every validation row once, one prediction per test row, as one process sees."""
    for name in ("config.json", "model.safetensors", "textune_run.json", "tokenizer.json", "report.html"):
        assert (out / name).is_file(), name
    assert not (out / ".textune-staging").exists() and not list(out.glob("*.tmp"))
    # 16 steps of 2 processes x 8 rows are 4 passes over the 64 rows: the data was sharded, not trained on twice
    assert json.loads((out / "trainer_state.json").read_text())["epoch"] == pytest.approx(4.0)

    metrics = json.loads((out / "eval_results.json").read_text())
    assert metrics["eval_samples"] == VAL_ROWS
    predictions = pd.read_csv(out / "predictions.csv")
    assert predictions["id"].tolist() == pd.read_csv(data_dir / "test.csv")["id"].tolist()

    # the same saved model scored by one process on the same file: a row evaluated twice (or not at all) by the
    # distributed evaluation would change these
    single = tmp_path / "single_process_metrics.json"
    assert main(["evaluate", "--model", str(out), "--input", str(data_dir / "val.csv"), "--output", str(single)]) == 0
    expected = json.loads(single.read_text())
    for key in ("eval_accuracy", "eval_f1", "eval_precision", "eval_recall"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-6), key
    # the loss is a mean per example, not multiplied by the number of processes (transformers issue 35078); not
    # exact: the process short of a row pads its last batch with a repeated row, and that batch's mean includes it
    predictor = Predictor.from_run(out)
    frame = pd.read_csv(data_dir / "val.csv")
    labels = torch.tensor(predictor.task.labels.encode(frame["target"], where="val.csv"))
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(predictor.outputs(frame)[0]), labels).item()
    assert metrics["eval_loss"] == pytest.approx(loss, rel=0.05)


def test_torchrun_two_cpu_processes_save_once_and_evaluate_every_validation_row_once(tiny_model_dir, data_dir,
                                                                                       tmp_path):
    out = tmp_path / "run"
    done = launch(torchrun("-m", "textune", *train_argv(tiny_model_dir, data_dir, out)), tmp_path / "torchrun.log")
    assert done.returncode == 0, done.stdout[-3000:]
    assert_one_run_over_two_processes(out, data_dir, tmp_path)
    # only the main process reports (its summary, textune's INFO lines)
    assert done.stdout.count("Run folder:") == 1
    assert done.stdout.count("INFO textune.training.train: task:") == 1


def test_helpers_answer_as_the_only_process_when_there_is_no_process_group(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert is_main_process() and max_over_processes(15) == 15
    barrier()  # returns at once
    monkeypatch.setenv("RANK", "1")  # a launched process before torch.distributed is set up (CLI logging)
    assert not is_main_process()


def test_a_process_that_got_no_signal_stops_after_the_same_step_as_one_that_did(monkeypatch):
    from transformers import TrainerControl

    from textune.training import checkpoints
    # another process got SIGTERM: the all-reduce answers its signal number
    monkeypatch.setattr(checkpoints, "max_over_processes", lambda value, device=None: max(value, signal.SIGTERM))
    callback, control = checkpoints.StopOnSignal(), TrainerControl()
    callback.on_step_end(SimpleNamespace(device="cpu"), None, control)
    assert control.should_save and control.should_training_stop and callback.received == signal.SIGTERM


@pytest.mark.slow
def test_bad_input_stops_every_process_quickly_through_the_console_script(tiny_model_dir, data_dir, tmp_path):
    script = Path(sys.executable).with_name("textune")
    if not script.exists():
        pytest.skip("the textune console script is not installed next to this Python")
    out = tmp_path / "run"
    argv = train_argv(tiny_model_dir, data_dir, out, label="no_such_column")
    started = time.monotonic()
    done = launch(torchrun(str(script), *argv), tmp_path / "torchrun.log", timeout=120)
    # every process checks the input before any collective step and exits 2 with the message; torchrun stops
    # the other process as soon as one fails (it may get there first), so none waits on a collective
    assert done.returncode != 0
    assert "textune: error: --train_file" in done.stdout and "exitcode  : 2" in done.stdout, done.stdout[-3000:]
    assert not out.exists()
    assert time.monotonic() - started < 100


@pytest.mark.slow
def test_accelerate_launch_runs_the_same_command_on_two_cpu_processes(tiny_model_dir, data_dir, tmp_path):
    out = tmp_path / "run"
    # `--multi_gpu` is accelerate's torchrun-based launcher; on a machine without GPUs textune picks gloo on the
    # CPU. (`accelerate launch --cpu --num_processes 2` starts a single process unless mpirun is configured.)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port()),
               "-m", "textune", *train_argv(tiny_model_dir, data_dir, out)]
    done = launch(command, tmp_path / "accelerate.log")
    assert done.returncode == 0, done.stdout[-3000:]
    assert_one_run_over_two_processes(out, data_dir, tmp_path)


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_both_processes_at_one_checkpoint_and_resume_finishes(tiny_model_dir, data_dir,
                                                                                        tmp_path):
    out = tmp_path / "run"
    long_run = train_argv(tiny_model_dir, data_dir, out, "--logging_steps", "20", max_steps=5000)
    log = tmp_path / "torchrun.log"
    process = start(torchrun("-m", "textune", *long_run), log)
    deadline = time.monotonic() + 180
    while "'loss'" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_and_fail(process, log, "training did not start")
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)  # what a scheduler sends; torchrun forwards it to both processes
    try:
        process.wait(90)
    except subprocess.TimeoutExpired:
        stop_and_fail(process, log, "torchrun did not stop within 90 s of SIGTERM")
    # both processes stopped after the same step and completed one checkpoint: a process that went on training
    # would have waited for the other's gradients (until torchrun's SIGKILL, 30 s on) instead of saving its part
    text = log.read_text()
    assert text.count("training interrupted by SIGTERM; checkpoint saved to") == 2, text[-3000:]
    (checkpoint,) = out.glob("checkpoint-*")
    assert {"trainer_state.json", "rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in checkpoint.iterdir()}

    step = int(checkpoint.name.split("-")[1])
    resumed = train_argv(tiny_model_dir, data_dir, out, "--resume", max_steps=step + 4)
    done = launch(torchrun("-m", "textune", *resumed), tmp_path / "resume.log")
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"resuming from {checkpoint}" in done.stdout
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == step + 4
