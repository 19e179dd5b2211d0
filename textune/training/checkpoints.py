"""Never lose a run: finding the last complete checkpoint, stopping cleanly on signals, saving atomically."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
from pathlib import Path

from transformers import TrainerCallback

from ..atomic import fsync_file, fsync_folder
from .distributed import barrier, max_over_processes

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
STAGING_DIR = ".textune-staging"


# Checkpoint layouts Trainer writes: its own files (optimizer.pt, scheduler.pt beside the weights), DeepSpeed's
# (a global_step<N>/ folder named by a `latest` file), FSDP's (pytorch_model_fsdp_0/ and optimizer_0/ folders, or
# pytorch_model_fsdp.bin and optimizer.bin with a full state dict), and --save_only_model's (weights only).
TRAINER, DEEPSPEED, FSDP = "trainer", "DeepSpeed", "FSDP"


def checkpoint_layout(path: Path) -> str:
    """Which program wrote a checkpoint folder's training state: Trainer itself, DeepSpeed or FSDP."""
    names = {entry.name: entry.is_dir() for entry in path.iterdir()}
    if "latest" in names or any(is_dir and name.startswith("global_step") for name, is_dir in names.items()):
        return DEEPSPEED
    if any(name.startswith("pytorch_model_fsdp") for name in names):
        return FSDP
    return TRAINER


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None if it is complete.

    Trainer writes trainer_state.json after the weights, optimizer, scheduler and RNG state, so a folder
    whose trainer_state.json parses and whose other files exist and have valid headers was written whole.
    """
    state = path / "trainer_state.json"
    if not state.exists():
        return "trainer_state.json is missing (the save was interrupted)"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "trainer_state.json is truncated or corrupt"
    layout = checkpoint_layout(path)
    problem = {DEEPSPEED: _deepspeed_problem, FSDP: _fsdp_problem, TRAINER: _trainer_problem}[layout](path)
    if problem:
        return problem
    from safetensors import safe_open

    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as handle:
                handle.keys()
        except Exception:  # safetensors raises its own error types for a bad header
            return f"{file.name} is corrupt"
    return None


def _trainer_problem(path: Path) -> str | None:
    if not any(path.glob("*.safetensors")) and not any(path.glob("pytorch_model*.bin")):
        return "the model weights are missing"
    missing = [name for name in ("optimizer.pt", "scheduler.pt") if not (path / name).exists()]
    if len(missing) == 2:  # trainer_state.json is there, so the save finished: a --save_only_model checkpoint
        return ("it holds the model weights only (saved with --save_only_model), so the optimizer and scheduler "
                f"cannot be resumed; start a new run from it with --model_name_or_path {path}")
    return f"{missing[0]} is missing" if missing else None


def _deepspeed_problem(path: Path) -> str | None:
    latest = path / "latest"
    if not latest.is_file():
        return "DeepSpeed's `latest` file is missing"
    tag = latest.read_text(encoding="utf-8").strip()
    if not tag or not (path / tag).is_dir() or not any((path / tag).iterdir()):
        return f"the DeepSpeed state {tag or '(unnamed)'}/ that `latest` names is missing or empty"
    return None


def _fsdp_problem(path: Path) -> str | None:
    def present(stem: str, files: tuple[str, ...]) -> bool:
        folders = [p for p in path.glob(f"{stem}*") if p.is_dir()]
        return any(any(folder.iterdir()) for folder in folders) or any((path / name).is_file() for name in files)

    if not present("pytorch_model_fsdp", ("pytorch_model_fsdp.bin",)):
        return "the FSDP model state (pytorch_model_fsdp_0/) is missing or empty"
    if not present("optimizer_", ("optimizer.bin", "optimizer.pt")):
        return "the FSDP optimizer state (optimizer_0/) is missing or empty"
    if not (path / "scheduler.pt").exists():
        return "scheduler.pt is missing"
    return None


def checkpoint_folders(output_dir: str | Path) -> list[Path]:
    """The checkpoint-N folders under output_dir, newest (highest N) first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir()
             if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return [path for _, path in sorted(found, reverse=True)]


def find_resumable_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint-N under output_dir; incomplete ones are skipped with a warning."""
    for path in checkpoint_folders(output_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        logger.warning("skipping checkpoint %s: %s", path, problem)
    return None


def layout_mismatch(path: Path, deepspeed: bool, fsdp: bool) -> str | None:
    """Why this run cannot load a complete checkpoint's training state (DeepSpeed or FSDP needed), or None."""
    layout = checkpoint_layout(path)
    if layout == DEEPSPEED and not deepspeed:
        return f"{path} was saved by DeepSpeed; pass the same --deepspeed config to resume it"
    if layout == FSDP and not fsdp:
        return f"{path} was saved by FSDP; pass the same --fsdp and --fsdp_config to resume it"
    return None


class StopOnSignal(TrainerCallback):
    """On SIGINT or SIGTERM, finish the current step, save a checkpoint and stop training.

    A second signal of the same kind exits at once (the default handler is restored after the first).
    """

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        self.received = signum
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
        logger.warning("received %s: saving a checkpoint after this step, then stopping "
                       "(send it again to stop at once)", signal.Signals(signum).name)

    def on_train_begin(self, args, state, control, **kwargs):
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread (e.g. a notebook worker): leave signals alone
            pass

    def _agree_with_other_processes(self, args) -> bool:
        """Whether any process got a signal; the same answer everywhere, so all stop after the same step.

        Otherwise those still training would wait forever for the gradients of those saving: torchrun forwards
        one signal to every process, but each gets it at its own point of the step. A process that got none
        stops with another one's signal; one that gets its own during the exchange stops after the next step.
        """
        agreed = max_over_processes(self.received or 0, args.device)
        if agreed and self.received is None:
            self.received = agreed
        return bool(agreed)

    def on_step_end(self, args, state, control, **kwargs):
        if self._agree_with_other_processes(args):
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        self._agree_with_other_processes(args)  # a signal after the last step: all processes report it alike
        for signum, handler in self._previous.items():
            if signal.getsignal(signum) == self._handle:  # _handle restores the handler of a signal it got
                signal.signal(signum, handler)
        self._previous.clear()


# Order matters: the files that make a folder loadable come after the big ones, and textune_run.json
# (which predict/serve require) comes last, so a crash mid-way never leaves a folder that looks complete.
_LAST = ("config.json", "textune_run.json")


def save_final_model(trainer, output_dir: str | Path, run_record_writer=None) -> None:
    """Write the final model to a staging folder, then move each file into output_dir atomically.

    Args:
        trainer: The Trainer holding the model and tokenizer.
        output_dir: The run folder.
        run_record_writer: Called with the staging folder to add textune_run.json before the move.
    """
    output_dir = Path(output_dir)
    staging = output_dir / STAGING_DIR
    writer = trainer.args.should_save  # rank 0 (one per node with --save_on_each_node), as for Trainer's own saves
    if writer and staging.exists():
        shutil.rmtree(staging)
    trainer.save_model(str(staging))  # on every process: FSDP and DeepSpeed gather the full weights collectively
    if writer:
        _move_into_place(trainer, staging, output_dir, run_record_writer)
    barrier()  # the other processes go on only once the final model is in place


def _move_into_place(trainer, staging: Path, output_dir: Path, run_record_writer) -> None:
    """Complete the staged model (config, textune_run.json), then move its files into output_dir, markers last."""
    from transformers import PreTrainedModel

    if not isinstance(trainer.model, PreTrainedModel) and hasattr(trainer.model, "config"):
        trainer.model.config.save_pretrained(staging)  # a model class of the task's own: its encoder's config
    if run_record_writer is not None:
        run_record_writer(staging)
    # a previous final model's markers go first: between here and the end the folder is not "complete"
    for name in reversed(_LAST):
        (output_dir / name).unlink(missing_ok=True)
    files = sorted(staging.iterdir(), key=lambda p: (p.name in _LAST, _LAST.index(p.name) if p.name in _LAST else 0))
    for file in files:
        if file.is_file():
            fsync_file(file)  # on disk before the rename publishes it: a power cut must not leave an empty model
        os.replace(file, output_dir / file.name)
    staging.rmdir()
    fsync_folder(output_dir)
