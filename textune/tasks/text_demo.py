"""The demo of a task that turns one text into another (text to text, text generation): a text box in, a text box
out; each task names its boxes and picks its example inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd


@dataclass
class TextBoxesDemo:
    """An input box and the generated text (the server streams it into the output box when the task streams)."""

    task: Any
    input_label: ClassVar[str] = "Input"
    placeholder: ClassVar[str] = "Paste the text"
    output_label: ClassVar[str] = "Output"
    lines: ClassVar[tuple[int, int]] = (6, 4)  # input box, output box

    def inputs(self) -> list:
        import gradio as gr

        return [gr.Textbox(label=self.input_label, lines=self.lines[0], placeholder=self.placeholder,
                           elem_id="text")]

    def outputs(self) -> list:
        import gradio as gr

        return [gr.Textbox(label=self.output_label, lines=self.lines[1], elem_id="prediction")]

    def to_input(self, *values) -> str:
        return values[0] or ""

    def show(self, record: dict, given: Any = None) -> tuple:
        return (record["generated_text"],)

    def examples(self, rows: pd.DataFrame | None, limit: int) -> list[list]:
        """The first `limit` usable inputs of the validation rows, else the task's built-in ones."""
        texts = [text for text in self.example_texts(rows) if text.strip()] if rows is not None and len(rows) else []
        return [[text] for text in (texts or self.built_in_examples())[:limit]]

    def example_texts(self, rows: pd.DataFrame) -> list[str]:
        """The inputs of `rows`, as the demo's box takes them."""
        raise NotImplementedError

    def built_in_examples(self) -> list[str]:
        raise NotImplementedError
