"""Text to text's part of the server: the JSON API's request and answer schema, and the demo's boxes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from ...inference.generation import GenerationSettings
from ...serving.generation_parameters import GenerationParameters, settings_from_parameters
from ..text_demo import TextBoxesDemo

EXAMPLES = [
    "Forest fire near La Ronge Sask. Canada. Residents were asked to leave their homes as the fire spread overnight.",
    "Heavy flooding hit the town after three days of rain; roads were closed and schools stayed shut on Monday.",
    "13,000 people receive wildfire evacuation orders in California as strong winds push the flames north.",
]


class TextToTextRequest(BaseModel):
    """Texts to transform (summarize, translate), in the order the outputs should come back, and optionally how to
    generate them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"inputs": [EXAMPLES[0]]}]})
    inputs: list[StrictStr] = Field(description="The input texts (limits: see the endpoint).")
    parameters: GenerationParameters | None = Field(default=None, description="Generation settings over the "
                                                    "run's own, e.g. {\"max_new_tokens\": 64, \"num_beams\": 2}.")

    @field_validator("inputs")
    @classmethod
    def not_blank(cls, value: list[str]) -> list[str]:
        if any(not text.strip() for text in value):
            raise ValueError("an input is empty; give every input some text")
        return value


class GeneratedRecord(BaseModel):
    """One input's output."""

    generated_text: str = Field(description="The generated text.")


class TextToTextDescription(BaseModel):
    """What a text-to-text model takes and answers, and how it generates (`GET /v1/labels`)."""

    task: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    source_prefix: str = Field(description="Put before every input before it is encoded.")
    max_source_length: int
    max_new_tokens: int
    num_beams: int


@dataclass
class TextToTextApi:
    """`POST /v1/predict`: `{"inputs": ["..."], "parameters": {...}}` in, one `{"generated_text"}` record per input
    out."""

    task: Any
    request: ClassVar[type] = TextToTextRequest
    record: ClassVar[type] = GeneratedRecord
    description: ClassVar[type] = TextToTextDescription

    def inputs(self, body: TextToTextRequest) -> list[str]:
        return list(body.inputs)

    def generation(self, body: TextToTextRequest) -> GenerationSettings | None:
        return settings_from_parameters(body.parameters)

    def rows(self, inputs: list) -> pd.DataFrame:
        return pd.DataFrame({self.task.text_column: [str(text) for text in inputs]})

    def to_records(self, records: pd.DataFrame) -> list[dict]:
        return [{"generated_text": text} for text in records["prediction"]]


class TextToTextDemo(TextBoxesDemo):
    """The demo: an input box and the generated text."""

    def example_texts(self, rows: pd.DataFrame) -> list[str]:
        return rows[self.task.text_column].astype(str).tolist()

    def built_in_examples(self) -> list[str]:
        return EXAMPLES
