"""Question answering's part of the server: the JSON API's request and answer schema, and the demo's boxes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from .squad import ID

EXAMPLES = [
    {"question": "Where was the fire?", "context": "Forest fire near La Ronge Sask. Canada"},
    {"question": "What happened?", "context": "13,000 people receive #wildfires evacuation orders in California"},
    {"question": "What hit the town?", "context": "Heavy flooding hit the town after three days of rain"},
]
EXAMPLE = EXAMPLES[0]


class QuestionContext(BaseModel):
    """One question and the passage its answer is taken from."""

    model_config = ConfigDict(extra="forbid")
    question: StrictStr = Field(description="The question.")
    context: StrictStr = Field(description="The passage that holds the answer.")

    @field_validator("question", "context")
    @classmethod
    def not_blank(cls, value: str, info) -> str:
        if not value.strip():
            raise ValueError(f"{info.field_name} is empty; give every input a non-empty question and context")
        return value


class QuestionAnsweringRequest(BaseModel):
    """Questions to answer, each with its context, in the order answers should come back."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"inputs": [EXAMPLE]}]})
    inputs: list[QuestionContext] = Field(description="The questions and their contexts (limits: see the endpoint).")


class AnswerRecord(BaseModel):
    """One question's answer: a span of its context."""

    answer: str = Field(description="The answer, copied from the context; \"\" when the model finds none (SQuAD v2).")
    score: float = Field(description="Its probability among the best candidate spans (0-1).")
    start: int | None = Field(None, description="First character of the answer in the context; null for no answer.")
    end: int | None = Field(None, description="One past its last character; null for no answer.")


class QuestionAnsweringDescription(BaseModel):
    """What a QA model takes and answers, and how it picks answers (`GET /v1/labels`)."""

    task: str
    inputs: dict[str, str] = Field(description="Each input's fields and what they hold.")
    outputs: dict[str, str] = Field(description="Each answer's fields and what they hold.")
    version_2_with_negative: bool = Field(description="Whether the model may answer nothing (SQuAD v2.0).")
    null_score_diff_threshold: float | None = Field(None, description="SQuAD v2: how much more likely no answer "
                                                                      "must be than the best span to be chosen.")
    max_seq_length: int
    doc_stride: int
    max_answer_length: int


@dataclass
class QuestionAnsweringApi:
    """`POST /v1/predict` for QA: `{"inputs": [{"question", "context"}]}` in, one answer record per input out."""

    task: Any
    request: ClassVar[type] = QuestionAnsweringRequest
    record: ClassVar[type] = AnswerRecord
    description: ClassVar[type] = QuestionAnsweringDescription

    def inputs(self, body: QuestionAnsweringRequest) -> list[dict]:
        return [{"question": item.question, "context": item.context} for item in body.inputs]

    def rows(self, inputs: list) -> pd.DataFrame:
        return pd.DataFrame({
            ID: [str(i) for i in range(len(inputs))],
            self.task.question_column: [item["question"] for item in inputs],
            self.task.context_column: [item["context"] for item in inputs],
        })

    def to_records(self, records: pd.DataFrame) -> list[dict]:
        return [{"answer": answer, "score": float(score), "start": _integer(start), "end": _integer(end)}
                for answer, score, start, end in zip(records["answer"], records["score"], records["start"],
                                                     records["end"])]


def _integer(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


@dataclass
class QuestionAnsweringDemo:
    """The demo: a context box and a question box; the answer is shown highlighted in the context, with its score."""

    task: Any

    def inputs(self) -> list:
        import gradio as gr

        return [gr.Textbox(label="Context", lines=6, placeholder="Paste the passage that holds the answer",
                           elem_id="context"),
                gr.Textbox(label="Question", lines=1, placeholder="Ask a question about it", elem_id="question")]

    def outputs(self) -> list:
        import gradio as gr

        return [gr.HighlightedText(label="Answer in the context", color_map={"answer": "green"},
                                   show_legend=False, elem_id="prediction"),
                gr.Number(label="Score (probability among the best candidates)", precision=3, elem_id="score")]

    def to_input(self, *values) -> dict:
        context, question = values
        return {"question": question or "", "context": context or ""}

    def show(self, record: dict, given: Any = None) -> tuple:
        """The context with the answer marked (just the answer without `given`), and the score."""
        return highlight(given["context"] if given else None, record), record["score"]

    def examples(self, rows: pd.DataFrame, limit: int) -> list[list]:
        """The first `limit` validation questions with their contexts (or a built-in one without rows)."""
        if rows is None or len(rows) == 0:
            return [[EXAMPLE["context"], EXAMPLE["question"]]]
        pairs = zip(rows[self.task.context_column].astype(str), rows[self.task.question_column].astype(str))
        return [[context, question] for context, question in pairs if context.strip() and question.strip()][:limit]


def highlight(context: str | None, record: dict) -> list[tuple[str, str | None]]:
    """gr.HighlightedText's value: the context in pieces, the answer's piece labelled "answer"."""
    answer, start, end = record["answer"], record.get("start"), record.get("end")
    if context is None:
        return [(answer or "(no answer)", "answer" if answer else None)]
    if not answer or start is None or end is None:
        return [(context, None), ("  (no answer in this context)", None)]
    pieces = [(context[:start], None), (context[start:end], "answer"), (context[end:], None)]
    return [piece for piece in pieces if piece[0]]
