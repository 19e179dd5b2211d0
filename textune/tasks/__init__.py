"""Tasks are pluggable: each one turns frames into model inputs, builds its model, scores and decodes outputs.

A new task (QA, summarization, generation) is a package here that implements `Task` (`protocol.py`) and calls
`register_task`; the engine only speaks to that protocol.
"""

from __future__ import annotations

from typing import Callable

from .protocol import Section, Task, TaskApi, TaskDemo


TASKS: dict[str, Callable[..., Task]] = {}


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


from .classification.task import ClassificationTask  # noqa: E402  (registers itself)
from .question_answering.task import QuestionAnsweringTask  # noqa: E402  (registers itself)

__all__ = ["Section", "Task", "TaskApi", "TaskDemo", "TASKS", "register_task", "task_from_dict", "ClassificationTask"]
