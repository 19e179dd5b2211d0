"""Extractive question answering (SQuAD v1.1/v2.0): the answer to a question is a span of its context."""

from .arguments import QuestionAnsweringArguments
from .task import QuestionAnsweringTask

__all__ = ["QuestionAnsweringArguments", "QuestionAnsweringTask"]
