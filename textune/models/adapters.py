"""LoRA (peft) as a model transform of any task: train adapters and the task's new head, save them with the run,
load an adapter run merged (so every backend and export sees a plain model), and merge a run into a standalone one.

What LoRA needs to know of a task's model is its head: the modules that train fully and are saved with the
adapter (peft's `modules_to_save`). It is read from the model, not from a list of head names per task: the modules
holding the parameters the task's `build_model` marked new (`mark_new_parameters`: what `from_pretrained` reported
missing or resized, e.g. a custom `--head mlp`), and a transformers model's modules outside its pretrained
`base_model` (`classifier`, `qa_outputs`, `score`) but for its output embeddings (a language model's `lm_head`, which
is pretrained and vocabulary-sized). So a text classifier, a QA span head and a generation model all work alike.

Example:
    >>> model = apply_lora(task.build_model("minilm", model_args), model_args)    # model_args.use_peft
    >>> model = load_run_model(task, "runs/lora")       # adapter runs come back merged, others as saved
    >>> merge_run("runs/lora", "runs/lora-merged")     # a standalone run folder
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path

from ..atomic import write_text_atomically
from ..errors import TextuneError
from ..run_folder import RUN_FILE, read_run_file, write_run_file
from ..training.head_learning_rate import mark_new_parameters, new_parameter_names
from .loading import _looks_like_path, check_model_folder, model_display_name, resolve_model
from .packaged import MODEL_ALIASES

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_NAME = "default"  # peft's name of the one adapter a run trains
# Files of a run that describe its training, copied unchanged by `merge_run` (the model files are written anew).
RUN_HISTORY_FILES = ("train_results.json", "eval_results.json", "all_results.json", "trainer_state.json",
                     "predictions.csv", "validation_predictions.csv", "report.html", "report.md", "README.md")


# -- training -------------------------------------------------------------------------------------------------------

def apply_lora(model, model_args):
    """`model` wrapped for LoRA training: adapters on `--lora_target_modules`, the new head trained fully.

    Every pretrained weight is frozen; the modules holding the parameters the task's `build_model` marked new (and
    `--lora_modules_to_save`) train in full and are saved with the adapter. Those new parameters keep
    `--head_learning_rate`; the adapters train at `--learning_rate`.
    """
    from peft import LoraConfig, get_peft_model

    new_names = set(new_parameter_names(model))
    head = head_modules(model)
    config = LoraConfig(r=model_args.lora_r, lora_alpha=model_args.lora_alpha, lora_dropout=model_args.lora_dropout,
                        target_modules=model_args.lora_targets(),
                        modules_to_save=sorted({*head, *model_args.lora_saved_modules()}) or None, bias="none")
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as error:  # peft: "No modules were targeted for adaptation..." (its advice names its API)
        if "target" not in str(error).lower():
            raise
        raise TextuneError(f"--lora_target_modules {model_args.lora_target_modules} names no layer of the model "
                           f"outside its head; use all-linear, or some of: {', '.join(linear_layer_names(model, head))}") \
            from None
    # the head's trained copies, under peft's names (base_model.model.<module>.modules_to_save.default.<param>)
    mark_new_parameters(peft_model, [name for name, parameter in peft_model.named_parameters()
                                     if parameter.requires_grad and _original_name(name) in new_names])
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    logger.info("LoRA r=%d alpha=%d: %s trainable parameters of %s (%.2f%%), head trained fully: %s",
                model_args.lora_r, model_args.lora_alpha, f"{trainable:,}", f"{total:,}", 100 * trainable / total,
                ", ".join(head) or "none")
    return peft_model


def head_modules(model) -> list[str]:
    """The modules of `model` that train fully under LoRA: those holding the new parameters `build_model` marked,
    and a transformers model's children outside its pretrained `base_model` but for its output embeddings."""
    names = {name.rsplit(".", 1)[0] for name in new_parameter_names(model) if "." in name}
    base = getattr(model, "base_model", model)  # transformers' encoder or decoder under the task's layers
    if base is not model:
        output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        names |= {name for name, child in model.named_children()
                  if child is not base and child is not output and next(child.parameters(), None) is not None}
    return [name for name in sorted(names) if not any(name.startswith(other + ".") for other in names)]


def linear_layer_names(model, head: list[str]) -> list[str]:
    """The last names of the model's linear layers outside `head` (query, value, dense, ...): what
    --lora_target_modules takes."""
    from torch import nn

    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, nn.Linear)
                   and not any(name == other or name.startswith(other + ".") for other in head)})


def _original_name(peft_name: str) -> str:
    """A parameter's name in the model before `get_peft_model` wrapped it."""
    return peft_name.removeprefix("base_model.model.").replace(f".modules_to_save.{ADAPTER_NAME}.", ".")


def base_model_name(model_name_or_path: str) -> str:
    """How an adapter run names its base model: an alias or hub id as given (portable: never the packaged model's
    folder on this machine), a local folder as an absolute path (the run is then tied to this machine)."""
    if model_name_or_path in MODEL_ALIASES or not (_looks_like_path(model_name_or_path)
                                                   or Path(model_name_or_path).expanduser().is_dir()):
        return model_name_or_path
    return str(Path(model_name_or_path).expanduser().resolve())


def adapter_record(model_args) -> dict:
    """textune_run.json's `adapter` entry: the base model to load the adapter onto, and the LoRA settings."""
    return {"base_model": base_model_name(model_args.model_name_or_path), "method": "lora",
            "r": model_args.lora_r, "alpha": model_args.lora_alpha, "dropout": model_args.lora_dropout,
            "target_modules": model_args.lora_target_modules, "modules_to_save": model_args.lora_modules_to_save}


def name_base_model(folder: Path, record: dict) -> None:
    """Name the base model in the saved adapter_config.json as the run was asked for it, where peft wrote the folder
    it loaded from (for a packaged model, a path inside this machine's site-packages). A local folder is named by its
    last component, as a pushed run or a Space names it: textune loads the base by the run record."""
    path = Path(folder) / ADAPTER_CONFIG
    if path.exists() and "adapter" in record:
        config = json.loads(path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = model_display_name(record["adapter"]["base_model"])
        write_text_atomically(path, json.dumps(config, indent=2, sort_keys=True) + "\n")


# -- loading --------------------------------------------------------------------------------------------------------

def is_adapter_run(run_dir: str | Path) -> bool:
    return (Path(run_dir).expanduser() / ADAPTER_CONFIG).is_file()


def load_run_model(task, run_dir: str | Path, allow_pickle: bool = False):
    """The model a run saved, ready to predict: the task's own loading, or for an adapter run the base model with
    the adapter merged in (so every backend and export works on it unchanged, at a plain model's speed).

    Raises:
        TextuneError: The adapter weights are not safetensors, or the base model cannot be found.
    """
    if not is_adapter_run(run_dir):
        return task.load_model(run_dir, allow_pickle)
    return load_adapter_model(task, run_dir).merge_and_unload()


def load_adapter_model(task, run_dir: str | Path):
    """The base model as the task builds it (the head in the run's shape), with the run's adapter loaded (peft's
    PeftModel, not merged). Only adapter_model.safetensors is read; nothing in the folder is executed."""
    from peft import PeftModel

    from ..training.arguments import ModelArguments

    run_dir = Path(run_dir).expanduser()
    record = read_run_file(run_dir)
    if not (run_dir / ADAPTER_WEIGHTS).is_file():
        raise TextuneError(f"{run_dir} has {ADAPTER_CONFIG} but no {ADAPTER_WEIGHTS}; an adapter run loads "
                           "safetensors weights only: restore the file or retrain")
    base = (record.get("adapter") or {}).get("base_model") or record.get("base_model")
    if not base:
        raise TextuneError(f"{run_dir / RUN_FILE} does not name the adapter's base model; retrain the run")
    flag = f"the base model of the adapter run {run_dir}"
    name_or_path, local_only = resolve_model(base, flag=flag)
    if Path(name_or_path).is_dir():
        check_model_folder(name_or_path, flag=flag)
    known = {item.name for item in fields(ModelArguments)}
    saved = {key: value for key, value in (record.get("model_args") or {}).items() if key in known}
    # the base as it was built for training, but never code from the Hub nor pickle weights at load time
    model_args = ModelArguments(**{**saved, "model_name_or_path": base, "trust_remote_code": False,
                                   "allow_pickle": False})
    model = task.build_model(name_or_path, model_args, local_only)
    return PeftModel.from_pretrained(model, run_dir, adapter_name=ADAPTER_NAME, is_trainable=False,
                                     use_safetensors=True)


# -- merging --------------------------------------------------------------------------------------------------------

def save_standalone_model(model, folder: Path) -> None:
    """A merged model's weights (safetensors) and config into `folder`, loadable as a run trained without LoRA."""
    from transformers import PreTrainedModel

    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model, PreTrainedModel):
        model.save_pretrained(folder, safe_serialization=True)
        return
    from safetensors.torch import save_file

    # a model class of the task's own (a custom head): the layout Trainer saves it in
    save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()},
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(folder)


def standalone_record(record: dict) -> dict:
    """The run record of the merged model: its base is no longer needed to load it; where it came from is kept."""
    merged = {key: value for key, value in record.items() if key != "adapter"}
    merged["merged_from"] = record.get("adapter", {})
    return merged


def merge_run(run_dir: str | Path, to: str | Path) -> Path:
    """Write `run_dir`'s base model with its adapter merged in as a standalone run folder `to` (safetensors weights,
    tokenizer, textune_run.json, metrics and report) that predict, evaluate, serve and export take like any run.

    The folder is built beside `to` and renamed into place at the end, so a failure leaves no half-written `to`.

    Raises:
        TextuneError: `run_dir` is not an adapter run, or `to` exists and is not an empty folder.
    """
    run_dir, to = Path(run_dir).expanduser(), Path(to).expanduser()
    record = read_run_file(run_dir, flag="textune merge")
    if not is_adapter_run(run_dir):
        raise TextuneError(f"textune merge: {run_dir} has no adapter ({ADAPTER_CONFIG}); only a run trained with "
                           "--use_peft needs merging, the others are standalone already")
    if to.exists() and not (to.is_dir() and not any(to.iterdir())):
        raise TextuneError(f"--to {to} exists and is not an empty folder; choose a new folder")
    from transformers import AutoTokenizer  # after the checks: bad input answers before transformers loads

    from ..tasks import task_from_dict

    model = load_run_model(task_from_dict(record["task"]), run_dir)
    to.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{to.name}.", suffix=".textune-merge", dir=to.parent))
    try:
        save_standalone_model(model, staging)
        AutoTokenizer.from_pretrained(run_dir).save_pretrained(staging)
        for name in RUN_HISTORY_FILES:
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, staging / name)
        if (run_dir / "plots").is_dir():
            shutil.copytree(run_dir / "plots", staging / "plots")
        write_run_file(staging, standalone_record(record))  # last: the marker of a complete run folder
        if to.exists():
            to.rmdir()  # empty (checked above); a rename onto a folder fails on Windows
        os.replace(staging, to)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("merged %s into the standalone run %s", run_dir, to)
    return to

