"""A saved run folder: the model, tokenizer and `textune_run.json`, which is all predict/evaluate/serve need."""

from __future__ import annotations

import json
from pathlib import Path

from .atomic import write_text_atomically
from .errors import TextuneError

RUN_FILE = "textune_run.json"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model", "spiece.model", "vocab.json")


def write_run_file(output_dir: str | Path, record: dict) -> Path:
    """Write the run's resolved configuration next to the model (atomically: temp file, then rename)."""
    return write_text_atomically(Path(output_dir) / RUN_FILE, json.dumps(record, indent=2, default=str) + "\n")


def read_run_file(run_dir: str | Path, flag: str = "--model") -> dict:
    """Check a run folder holds everything a predictor needs and return its resolved configuration.

    Raises:
        TextuneError: The folder is missing, or a file it needs was deleted (the message names it).
    """
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise TextuneError(f"{flag} {run_dir}: no such run folder; pass the --output_dir of a textune train run")
    run_file = run_dir / RUN_FILE
    if not run_file.exists():
        raise TextuneError(
            f"{flag} {run_dir} is not a textune run: {RUN_FILE} is missing (train with textune, or restore the file)"
        )
    if not (run_dir / "config.json").exists():
        raise TextuneError(f"{flag} {run_dir} is missing config.json; restore it or retrain")
    if not any(run_dir.glob("*.safetensors")) and not any(run_dir.glob("pytorch_model*.bin")):
        raise TextuneError(f"{flag} {run_dir} is missing its weights (model.safetensors); restore it or retrain")
    if not any((run_dir / name).exists() for name in TOKENIZER_FILES):
        raise TextuneError(f"{flag} {run_dir} is missing its tokenizer (tokenizer.json); restore it or retrain")
    try:
        return json.loads(run_file.read_text())
    except json.JSONDecodeError as error:
        raise TextuneError(f"{flag} {run_file} is not valid JSON ({error.msg} at line {error.lineno})") from None
