"""How `textune train` and `textune compare` parse their flags: the task is chosen before the full parse (from
--task, or the train file's columns), so its own flags join the parser and another task's are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

from ..config_files import read_config_file
from ..errors import TextuneError


def train_parser(task_class=None, before: tuple = (), prog: str = "textune train", description: str | None = None):
    """`textune train`'s parser: model, data, the task's own flags (default: text-classification's), training."""
    from transformers import HfArgumentParser

    from ..tasks import DEFAULT_TASK, TASKS
    from .arguments import DataArguments, ModelArguments, TextuneTrainingArguments

    task_class = task_class or TASKS[DEFAULT_TASK]
    description = description or (f"Fine-tune a model for --task {task_class.name} (accepts run_classification.py's "
                                  "and run_qa.py's flags; `--task NAME --help` lists that task's).")
    return HfArgumentParser((*before, ModelArguments, DataArguments, task_class.arguments, TextuneTrainingArguments),
                            prog=prog, description=description)


def argument_hints(argv: list[str]) -> dict:
    """The values of --task, --train_file, --dataset_name and --encoding before the full parse: from the command
    line, else the --config files, else the one JSON arguments file (so the task's flags can join the parser)."""
    names = ("task", "train_file", "dataset_name", "encoding")
    found: dict = {}
    if len(argv) == 1 and argv[0].lower().endswith(".json") and Path(argv[0]).is_file():
        try:
            values = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            values = None  # parse_train_args says what is wrong with the file
        return {name: values[name] for name in names if isinstance(values, dict) and values.get(name)}
    for path in config_paths(argv):
        values = read_config_file(path)
        found.update({name: values[name] for name in names if values.get(name)})
    found.update({name: value for name in names if (value := flag_value(argv, f"--{name}"))})
    return found


def config_paths(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--config"] + \
        [word.split("=", 1)[1] for word in argv if word.startswith("--config=")]


def chosen_task(argv: list[str]):
    """The task class whose flags a `textune train` command line is parsed with: --task, else the one its train
    file's columns show (`Task.detect`; train() logs which and why), else text-classification (also for
    --dataset_name, whose columns are known only once it is loaded: see `task_arguments_to_pass`)."""
    from ..data.splits import table_columns
    from ..tasks import DEFAULT_TASK, TASKS, detect_task

    hints = argument_hints(argv)
    if hints.get("task"):
        if hints["task"] not in TASKS:
            raise TextuneError(f"--task {hints['task']!r} is not known; use one of {', '.join(TASKS)}")
        return TASKS[hints["task"]]
    train_file = hints.get("train_file")
    if train_file and not hints.get("dataset_name") and Path(train_file).expanduser().is_file():
        return detect_task(table_columns(train_file, hints.get("encoding"), "--train_file"))[0]
    return TASKS[DEFAULT_TASK]


def task_arguments_to_pass(data_args, task_args):
    """The task arguments `train()` gets: None for a Hub dataset without --task and without a task flag, so train()
    picks the task from the dataset's columns once it is loaded (the parser had to assume classification's flags,
    as the columns are unknown before the download); else the parsed ones, which choose their task."""
    if data_args.dataset_name and data_args.task is None and task_args == type(task_args)():
        return None
    return task_args


def refuse_other_task_flags(argv: list[str], task_class) -> None:
    """A flag of another registered task is one line naming that task, not argparse's usage screen."""
    from ..tasks import task_of_flag

    words = [word[2:].split("=", 1)[0] for word in argv if word.startswith("--")]
    if len(argv) == 1 and argv[0].lower().endswith(".json") and Path(argv[0]).is_file():
        try:
            values = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
            words += [str(key).lstrip("-") for key in values] if isinstance(values, dict) else []
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    for path in config_paths(argv):
        words += [str(key).lstrip("-") for key in read_config_file(path)]
    for word in words:
        owner = task_of_flag(word, task_class.name)
        if owner is not None:
            raise TextuneError(f"--{word} is a flag of --task {owner}; pass --task {owner}, or drop --{word}")


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value given to `flag` on the command line (`--flag value` or `--flag=value`), else None."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None
