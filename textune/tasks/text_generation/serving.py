"""Text generation's part of the server: the JSON API's request and answer schema, and a basic demo.

An input is a raw prompt (a string) or a chat conversation ({"messages": [{"role", "content"}, ...]}), which the
task renders with the model's chat template (`TextGenerationTask.context_ids`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from ...inference.generation import GenerationSettings
from ...serving.generation_parameters import GenerationParameters, settings_from_parameters
from ..text_demo import TextBoxesDemo

EXAMPLES = [
    "The fire near the town",
    "Write one sentence about a flood:",
    "Translate to Spanish: the big storm",
]


class Message(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: StrictStr


class Conversation(BaseModel):
    """A chat conversation; the model writes the next assistant turn."""

    model_config = ConfigDict(extra="forbid")
    messages: list[Message] = Field(min_length=1)


class TextGenerationRequest(BaseModel):
    """Prompts or conversations to continue, in the order the outputs should come back, and optionally how to
    generate them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"inputs": [EXAMPLES[0]]}]})
    inputs: list[StrictStr | Conversation] = Field(
        description="Raw prompts (strings) or conversations ({\"messages\": [...]}) (limits: see the endpoint).")
    parameters: GenerationParameters | None = Field(default=None, description="Generation settings over the "
                                                    "run's own, e.g. {\"max_new_tokens\": 64, \"temperature\": 0.7}.")

    @field_validator("inputs")
    @classmethod
    def not_blank(cls, value: list) -> list:
        if any(isinstance(item, str) and not item.strip() for item in value):
            raise ValueError("a prompt is empty; give every prompt some text")
        return value


class GeneratedRecord(BaseModel):
    """One input's output."""

    generated_text: str = Field(description="The generated text (up to the end of the turn).")


class TextGenerationDescription(BaseModel):
    """What a text-generation model takes and answers, and how it generates (`GET /v1/labels`)."""

    task: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    chat: bool = Field(description="Whether conversations are rendered with a chat template.")
    system_prompt: str = Field(description="Put first in conversations without a system message.")
    max_new_tokens: int


@dataclass
class TextGenerationApi:
    """`POST /v1/predict`: `{"inputs": ["...", {"messages": [...]}], "parameters": {...}}` in, one
    `{"generated_text"}` per input out."""

    task: Any
    request: ClassVar[type] = TextGenerationRequest
    record: ClassVar[type] = GeneratedRecord
    description: ClassVar[type] = TextGenerationDescription

    def inputs(self, body: TextGenerationRequest) -> list:
        return [item if isinstance(item, str) else item.model_dump() for item in body.inputs]

    def generation(self, body: TextGenerationRequest) -> GenerationSettings | None:
        return settings_from_parameters(body.parameters)

    def rows(self, inputs: list) -> pd.DataFrame:
        """One row per input: a prompt in the prompt column, or a conversation in the messages column."""
        s = self.task.settings
        prompt_column = s.dataset_text_field if self.task.data_format == "text" else s.prompt_column
        return pd.DataFrame({
            prompt_column: [item if isinstance(item, str) else None for item in inputs],
            s.messages_column: pd.Series([item["messages"] if isinstance(item, dict) else None for item in inputs],
                                         dtype=object),
        })

    def to_records(self, records: pd.DataFrame) -> list[dict]:
        return [{"generated_text": text or ""} for text in records["generated"]]


class TextGenerationDemo(TextBoxesDemo):
    """The basic demo: a prompt box and the generated text (the chat demo is the server's own)."""

    input_label: ClassVar[str] = "Prompt"
    placeholder: ClassVar[str] = "Write the start of a text"
    output_label: ClassVar[str] = "Generated"
    lines: ClassVar[tuple[int, int]] = (4, 6)

    def example_texts(self, rows: pd.DataFrame) -> list[str]:
        prompts = [self.task.api_input(row) for row in rows.to_dict("records")]
        return [prompt for prompt in prompts if isinstance(prompt, str)]

    def built_in_examples(self) -> list[str]:
        return EXAMPLES
        prompts = [self.task.api_input(row) for row in rows.to_dict("records")]
        return [[p] for p in prompts if isinstance(p, str) and p.strip()][:limit] or \
            [[text] for text in EXAMPLES[:limit]]
