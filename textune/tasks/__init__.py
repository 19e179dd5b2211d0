"""Tasks are pluggable: each one turns rows into model inputs, builds its model, decodes outputs and scores them.

A new task (QA, summarization, generation) is a package here that implements `Task` (`protocol.py`) and calls
`register_task`; the engine only speaks to that protocol.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Sequence

from .protocol import Section, Task, TaskApi, TaskDemo

logger = logging.getLogger(__name__)

TASKS: dict[str, Callable[..., Task]] = {}
DEFAULT_TASK = "text-classification"  # what a table no task recognises is trained as


def register_task(name: str, factory) -> None:
    """Register a task class under `name` (its `from_dict` rebuilds it from a saved run)."""
    TASKS[name] = factory


def task_from_dict(data: dict) -> Task:
    """Rebuild a saved run's task from its `to_dict()` output."""
    from ..errors import TextuneError

    name = data.get("name")
    if name not in TASKS:
        raise TextuneError(f"the run's task {name!r} is not known to this textune (known: {', '.join(TASKS)})")
    return TASKS[name].from_dict(data)


def choose_task(name: str | None, columns: Sequence[str], where: str, task_args=None) -> type:
    """The task class of a run, logged with the reason: `--task name`; else the task the training table's columns
    show (`detect_task`), unless `task_args` are another task's arguments, which then choose it.

    Raises:
        TextuneError: `name` is not a registered task, or `task_args` belong to another task than `name`.
    """
    from ..errors import TextuneError

    by_arguments = next((cls for cls in TASKS.values() if task_args is not None and type(task_args) is cls.arguments),
                        None)
    if name is not None:
        if name not in TASKS:
            raise TextuneError(f"--task {name!r} is not known; use one of {', '.join(TASKS)}")
        if by_arguments is not None and by_arguments is not TASKS[name]:
            raise TextuneError(f"--task {name} was given {type(task_args).__name__}, the arguments of --task "
                               f"{by_arguments.name}; pass {TASKS[name].arguments.__name__}")
        logger.info("task: %s (--task)", name)
        return TASKS[name]
    detected, reason = detect_task(columns)
    if by_arguments is not None and by_arguments is not detected:
        logger.info("task: %s (its arguments, %s, were given)", by_arguments.name, type(task_args).__name__)
        return by_arguments
    logger.info("task: %s, picked from the columns of %s: %s (pass --task to choose another)", detected.name, where,
                reason)
    return detected


def detect_task(columns: Sequence[str]) -> tuple[type, str]:
    """The first registered task that recognises these columns (`Task.detect`) and why; text-classification, the
    fallback, is asked last (it would claim most tables)."""
    columns = [str(column) for column in columns]
    for task_name, task_class in TASKS.items():
        if task_name != DEFAULT_TASK and (reason := task_class.detect(columns)):
            return task_class, reason
    return TASKS[DEFAULT_TASK], TASKS[DEFAULT_TASK].detect(columns) or "no other task recognises its columns"


def task_of_flag(flag: str, chosen: str) -> str | None:
    """The registered task other than `chosen` that has the flag `--flag`, when `chosen` lacks it."""
    def flags(task_class) -> set[str]:
        names = set()
        for item in dataclasses.fields(task_class.arguments):
            names |= {item.name, item.name.replace("_", "-"), *(a.lstrip("-") for a in item.metadata.get("aliases", []))}
        return names

    if flag in flags(TASKS[chosen]):
        return None
    return next((name for name, task_class in TASKS.items() if name != chosen and flag in flags(task_class)), None)


from .classification.task import ClassificationTask  # noqa: E402  (registers itself)
from .question_answering import QuestionAnsweringArguments, QuestionAnsweringTask  # noqa: E402  (registers itself)
from .text_to_text import TextToTextTask  # noqa: E402  (registers summarization, translation, text2text)
from .text_generation import TextGenerationTask  # noqa: E402  (registers itself)

__all__ = ["Section", "Task", "TaskApi", "TaskDemo", "TASKS", "DEFAULT_TASK", "choose_task", "detect_task", "register_task",
           "task_from_dict", "task_of_flag", "ClassificationTask", "QuestionAnsweringArguments",
           "QuestionAnsweringTask", "TextToTextTask", "TextGenerationTask"]
