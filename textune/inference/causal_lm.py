"""Loading a causal language model that textune did not fine-tune (an alias, a folder, a .gguf file or a hub id)
with the text-generation task's defaults, for `textune serve` and `textune generate`/`chat` alike."""

from __future__ import annotations

from pathlib import Path

GENERATION_TASK = "text-generation"  # the registered task a plain causal LM generates through


def open_causal_lm(model: str, allow_pickle: bool = False, flag: str = "--model"):
    """`load_causal_lm`'s `(task, model, tokenizer)` and the folder holding the model's files (None for a model
    that has none here, such as a hub id), where a generation engine may keep its converted copy."""
    from transformers import AutoTokenizer

    from ..models.loading import check_model_folder, resolve_model
    from ..tasks import TASKS
    from ..training.arguments import ModelArguments

    name_or_path, local_only = resolve_model(model, flag=flag)
    folder = Path(name_or_path) if Path(name_or_path).is_dir() else None
    if folder is not None:
        check_model_folder(name_or_path, allow_pickle)
    task = TASKS[GENERATION_TASK]()
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_only)
    network_model = task.build_model(name_or_path, ModelArguments(model_name_or_path=name_or_path,
                                                                  allow_pickle=allow_pickle), local_only)
    return task, network_model.eval(), tokenizer, folder


def load_causal_lm(model: str, allow_pickle: bool = False, flag: str = "--model"):
    """A causal LM that textune did not fine-tune (an alias such as smollm2, a folder, a .gguf file or a hub id)
    with the text-generation task's defaults: `(task, model, tokenizer)` (the task gives the tokenizer a pad
    token when it encodes).

    Raises:
        TextuneError: The model cannot be found, or its folder holds pickle weights without `allow_pickle`.
    """
    task, network_model, tokenizer, _ = open_causal_lm(model, allow_pickle, flag)
    return task, network_model, tokenizer
