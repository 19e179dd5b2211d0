"""A saved run folder: the model, tokenizer and `textune_run.json`, which is all predict/evaluate/serve need."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from .atomic import write_text_atomically
from .errors import TextuneError

RUN_FILE = "textune_run.json"
BACKEND_FILE = "backend.json"  # the prediction backend chosen at the end of training (backend_choice.py)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model", "spiece.model", "vocab.json")
# Everything a run writes into its --output_dir (Trainer's files and textune's): --overwrite_output_dir removes
# these names and nothing else, so notes, data or anything else the user keeps in the folder survive.
RUN_OUTPUTS = (
    # the model and tokenizer (save_pretrained)
    "config.json", "generation_config.json", "model.safetensors", "model-*-of-*.safetensors",
    "model.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json", "adapter_config.json",
    "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model",
    "tokenizer.model", "chat_template.jinja",
    # Trainer: arguments, state, metrics, checkpoints, TensorBoard logs
    "training_args.bin", "trainer_state.json", "train_results.json", "eval_results.json", "all_results.json",
    "checkpoint-*", "runs",
    # textune: run record, staging, predictions, report, ONNX export
    RUN_FILE, ".textune-staging", "predict_results.txt", "predictions.csv", "submission.csv",
    "predictions.jsonl", "generated_predictions.txt",  # text generation's and text to text's generations
    "predictions.json", "null_odds.json",  # question answering's, in SQuAD's form
    "validation_predictions.csv", "report.html", "report.md", "plots", "model.onnx", "model_int8.onnx",
    "model.parity.json", "model_int8.parity.json", ".textune-export-*", BACKEND_FILE, ".*.tmp",
)


def write_run_file(output_dir: str | Path, record: dict) -> Path:
    """Write the run's resolved configuration next to the model (atomically: temp file, then rename)."""
    return write_text_atomically(Path(output_dir) / RUN_FILE, json.dumps(record, indent=2, default=str) + "\n")


def remove_outputs(folder: Path, names: tuple[str, ...] = RUN_OUTPUTS) -> None:
    """Delete what matches `names` (glob patterns) in `folder`, and nothing else; a link is removed, not followed."""
    for pattern in names:
        for path in folder.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def remove_run_outputs(folder: Path) -> None:
    """What --overwrite_output_dir removes: RUN_OUTPUTS, and README.md only when it is textune's model card."""
    from .report.model_card import CARD_FILE, holds_user_readme

    remove_outputs(folder)
    if not holds_user_readme(folder):
        (folder / CARD_FILE).unlink(missing_ok=True)


def check_replaceable(output_dir: Path, input_files: list[str | Path], flag: str = "--output_dir") -> None:
    """Refuse to replace a folder that holds more than a run: this one, one above it, home, or the data's folder.

    Raises:
        TextuneError: One line naming the flag, why, and what to pass instead.
    """
    folder = output_dir.expanduser().resolve()
    here = Path.cwd().resolve()
    reason = None
    if folder == here:
        reason = "is the current folder"
    elif folder in here.parents:
        reason = "holds the current folder"
    elif folder == Path.home().resolve():
        reason = "is your home folder"
    else:
        inside = [Path(file) for file in input_files if file and folder in Path(file).expanduser().resolve().parents]
        if inside:
            reason = f"holds the input file {inside[0]}"
    if reason:
        raise TextuneError(f"{flag} {output_dir} {reason}; --overwrite_output_dir replaces a run's folder, so give "
                           "the run a folder of its own, e.g. runs/name")


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
        return json.loads(run_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise TextuneError(f"{flag} {run_file} is not valid JSON ({error.msg} at line {error.lineno})") from None


def is_run_folder(path: str | Path) -> bool:
    """Whether `textune serve` got a run folder rather than a model to serve with the text-generation task's
    defaults: a folder with config.json but no run file, an alias (smollm2), a .gguf file or a hub id. Anything else
    is taken for a run, so a mistyped run folder gets the run folder's message."""
    from .models.loading import MODEL_ALIASES, is_gguf_path

    folder = Path(path).expanduser()
    if folder.is_dir():
        return (folder / RUN_FILE).is_file() or not (folder / "config.json").is_file()
    name = str(path)
    # `org/name` where no folder `org` is here: a hub id; `runs/chat` with a `runs` folder: a run that is missing
    hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", name) is not None and not folder.parent.is_dir()
    return not (name in MODEL_ALIASES or is_gguf_path(name) or hub_id)
