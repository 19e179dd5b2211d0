"""Classification's part of serving: the JSON API's `{"texts": [...]}` request and records, and the demo's views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ...errors import TextuneError
from .labels import MULTI, REGRESSION, SINGLE


class PredictRequest(BaseModel):
    """Texts to classify, in the order results should come back."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"texts": ["Forest fire near La Ronge"]}]})
    texts: list[StrictStr] = Field(description="The texts to classify (limits: see the endpoint description).")


class Prediction(BaseModel):
    """One text's result: `label` (single-label), `labels` (multi-label) or `value` (regression)."""

    label: str | None = Field(None, description="Predicted class (single-label models).")
    labels: list[str] | None = Field(None, description="Classes above the threshold (multi-label models).")
    scores: dict[str, float] | None = Field(None, description="Probability of each class.")
    value: float | None = Field(None, description="Predicted value (regression models).")


class LabelsDescription(BaseModel):
    """What a classifier answers: its problem type and ordered labels."""

    problem_type: str
    labels: list[str]
    threshold: float | None = Field(None, description="Multi-label: probability above which a label is predicted.")


class ClassificationApi:
    """`POST /v1/predict` for a classifier: `{"texts": [...]}` in, one record per text out.

    Records: single-label `{"label": str, "scores": {label: prob}}`; multi-label
    `{"labels": [str], "scores": {label: prob}}`; regression `{"value": float}`.
    """

    request = PredictRequest
    record = Prediction
    description = LabelsDescription

    def __init__(self, task):
        if task.columns.text_pair is not None:
            raise TextuneError("this run classifies text pairs; serving takes single texts only (not supported yet)")
        self.task = task

    def inputs(self, body: PredictRequest) -> list[str]:
        return list(body.texts)

    def rows(self, inputs: list) -> pd.DataFrame:
        return self.task.input_rows(inputs)

    def to_records(self, records: pd.DataFrame) -> list[dict]:
        labels = self.task.labels
        if labels.problem_type == REGRESSION:
            return [{"value": float(value)} for value in records["prediction"]]
        names = list(labels.display_names)
        probabilities = self.task.records_scores(records)
        if labels.problem_type == MULTI:  # the labels the task predicts (above its threshold), as names
            predicted = [[names[i] for i in np.flatnonzero(row)] for row in self.task.hard_predictions(probabilities)]
        else:
            predicted = [str(label) for label in records["prediction"]]
        key = "labels" if labels.problem_type == MULTI else "label"
        return [{key: chosen, "scores": {name: float(p) for name, p in zip(names, row)}}
                for chosen, row in zip(predicted, probabilities)]


def describe(task) -> dict:
    """`GET /v1/labels`: problem type, ordered labels, and the threshold of a multi-label model."""
    labels = task.labels
    found = {"problem_type": labels.problem_type,
             "labels": list(labels.display_names) if labels.problem_type != REGRESSION else []}
    if labels.problem_type == MULTI:
        found["threshold"] = task.threshold
    return found


@dataclass(frozen=True)
class View:
    """How one problem type is shown: which output components, and how a record fills them."""

    build: Callable[[object], list]
    render: Callable[[dict], tuple]


def _label_outputs(task) -> list:
    import gradio as gr

    return [gr.Label(label="Prediction", num_top_classes=min(len(task.labels.labels), 10), elem_id="prediction")]


def _multi_label_outputs(task) -> list:
    import gradio as gr

    return [gr.Textbox(label=f"Predicted labels (probability above {task.threshold})", elem_id="prediction"),
            gr.Label(label="Probability per label", num_top_classes=min(len(task.labels.labels), 10),
                     elem_id="scores")]


def _regression_outputs(task) -> list:
    import gradio as gr

    return [gr.Number(label="Predicted value", elem_id="prediction")]


VIEWS: dict[str, View] = {
    SINGLE: View(_label_outputs, lambda record: (record["scores"],)),
    MULTI: View(_multi_label_outputs, lambda record: (", ".join(record["labels"]) or "(none)", record["scores"])),
    REGRESSION: View(_regression_outputs, lambda record: (record["value"],)),
}


class ClassificationDemo:
    """The demo of a classifier: a text box in; the label with a probability per class (or the value) out."""

    def __init__(self, task):
        self.task = task
        self.view = VIEWS[task.labels.problem_type]

    def inputs(self) -> list:
        import gradio as gr

        return [gr.Textbox(label="Text", lines=3, placeholder="Type or paste a text, e.g. a tweet", elem_id="text")]

    def outputs(self) -> list:
        return self.view.build(self.task)

    def to_input(self, *values) -> str:
        return values[0] or ""

    def show(self, record: dict, given=None) -> tuple:
        return self.view.render(record)

    def examples(self, rows: pd.DataFrame, limit: int) -> list[list]:
        """Up to `limit` distinct texts; for single-label runs, taken in turn from each label so all classes show."""
        columns = self.task.columns
        texts = pd.Series(columns.texts(rows), index=rows.index)
        if self.task.labels.problem_type == SINGLE and columns.label in rows.columns:
            groups = [group.tolist() for _, group in texts.groupby(rows[columns.label].astype(str), sort=True)]
            ordered = [group[i] for i in range(max(map(len, groups), default=0)) for group in groups if i < len(group)]
        else:
            ordered = texts.tolist()
        picked: list[str] = []
        for text in ordered:
            if text.strip() and text not in picked:
                picked.append(text)
            if len(picked) == limit:
                break
        return [[text] for text in picked]


# The Space's app_minimal.py (`textune export-space`): transformers' pipeline and gr.Interface, short enough to edit.
MINIMAL_APP_TEMPLATE = '''"""A minimal Gradio demo of {title}: a transformers pipeline and gr.Interface, to edit.

Written by `textune export-space`; run it with `python app_minimal.py`, then open http://127.0.0.1:7860.
It gives each text to the model as it is; app.py (the full app) also applies the run's text preparation,
batches requests and serves a JSON API.
"""

from pathlib import Path

import gradio as gr
from transformers import pipeline

MODEL_DIR = Path(__file__).resolve().parent / "model"
EXAMPLES = {examples}

classifier = pipeline("text-classification", model=str(MODEL_DIR))


def predict(text):
    """Every label with its probability, the mapping gr.Label shows."""
    scores = classifier(text, top_k=None, truncation=True)
    return {{item["label"]: float(item["score"]) for item in scores}}


demo = gr.Interface(
    fn=predict,
    inputs=gr.Textbox(lines=3, label="Text"),
    outputs=gr.Label(label="Prediction"),
    title={title!r},
    examples=[[text] for text in EXAMPLES],
)

if __name__ == "__main__":
    demo.launch()
'''
