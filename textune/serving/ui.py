"""The Gradio demo: a text box, the prediction with a probability per class, examples and the run's metrics.

Its predict function goes through the same batcher as the JSON API, so demo users and API clients share
batches and limits. The outputs depend on the problem type; each type is one entry of `VIEWS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gradio as gr

from ..tasks.classification.labels import MULTI, REGRESSION, SINGLE
from ..models.loading import model_display_name
from .batching import MicroBatcher, QueueFull, RequestTimeout, ShuttingDown
from .config import ServeConfig
from .service import ModelInfo, ModelService

# System fonts: the default theme fetches Google Fonts, which an offline machine (or a strict network) cannot.
THEME_FONTS = dict(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


@dataclass(frozen=True)
class View:
    """How one problem type is shown: which output components, and how a record fills them."""

    build: Callable[[ModelInfo], list[gr.components.Component]]
    render: Callable[[dict, ModelInfo], tuple]


def _label_outputs(info: ModelInfo) -> list:
    return [gr.Label(label="Prediction", num_top_classes=min(len(info.labels), 10), elem_id="prediction")]


def _multi_label_outputs(info: ModelInfo) -> list:
    return [gr.Textbox(label=f"Predicted labels (probability above {info.threshold})", elem_id="prediction"),
            gr.Label(label="Probability per label", num_top_classes=min(len(info.labels), 10), elem_id="scores")]


def _regression_outputs(info: ModelInfo) -> list:
    return [gr.Number(label="Predicted value", elem_id="prediction")]


VIEWS: dict[str, View] = {
    SINGLE: View(_label_outputs, lambda record, info: (record["scores"],)),
    MULTI: View(_multi_label_outputs,
                lambda record, info: (", ".join(record["labels"]) or "(none)", record["scores"])),
    REGRESSION: View(_regression_outputs, lambda record, info: (record["value"],)),
}


def header_markdown(info: ModelInfo, title: str) -> str:
    """Title, base model, problem type and the validation metrics as Markdown."""
    kinds = {SINGLE: "single-label classification", MULTI: "multi-label classification", REGRESSION: "regression"}
    lines = [f"# {title}", ""]
    facts = [kinds.get(info.problem_type, info.problem_type)]
    if info.base_model:
        facts.append(f"fine-tuned from `{model_display_name(str(info.base_model))}`")
    if info.labels:
        facts.append(f"{len(info.labels)} labels: " + ", ".join(f"`{name}`" for name in info.labels[:20])
                     + (" ..." if len(info.labels) > 20 else ""))
    lines.append(" · ".join(facts))
    if info.headline_metrics:
        shown = " · ".join(f"{name} **{value:.3f}**" for name, value in info.headline_metrics.items())
        samples = info.metrics.get("samples")
        lines += ["", f"Validation: {shown}" + (f" (on {int(samples)} texts)" if samples else "")]
    return "\n".join(lines)


def build_demo(service: ModelService, batcher: MicroBatcher, config: ServeConfig) -> gr.Blocks:
    """The demo page; mount it with `gr.mount_gradio_app` next to the API (as `build_app` does)."""
    info = service.info
    view = VIEWS[info.problem_type]
    title = config.title or info.name

    async def predict(text: str):
        # A user's mistake or a busy server is a message on the page, not a traceback in the log.
        problem = config.text_problem(text or "")
        if problem:
            raise gr.Error(problem[0].upper() + problem[1:] + ".", print_exception=False)
        try:
            [record] = await batcher.submit([text])
        except (QueueFull, RequestTimeout) as error:
            raise gr.Error(str(error), print_exception=False) from None
        except ShuttingDown:
            raise gr.Error("The server is shutting down; try again in a moment.", print_exception=False) from None
        values = view.render(record, info)
        return values if len(values) > 1 else values[0]  # Gradio wants a bare value for one output

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(header_markdown(info, title))
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text", lines=3, placeholder="Type or paste a text, e.g. a tweet",
                                  max_length=config.max_chars_per_text, elem_id="text")
                button = gr.Button("Predict", variant="primary", elem_id="predict")
            with gr.Column():
                outputs = view.build(info)
        if info.examples:
            gr.Examples(examples=[[example] for example in info.examples], inputs=text,
                        label="Examples from the validation data")
        gr.Markdown('JSON API: `POST /v1/predict` with `{"texts": [...]}`; OpenAPI docs at [/docs](/docs).')
        # Our batcher bounds the load, so Gradio's per-event concurrency limit (default 1) would only serialize.
        button.click(predict, inputs=text, outputs=outputs, api_name="predict", concurrency_limit=None)
        text.submit(predict, inputs=text, outputs=outputs, api_visibility="undocumented", concurrency_limit=None)
    return demo


def theme() -> gr.themes.Base:
    """The demo's theme (pass to mount_gradio_app: Gradio 6 takes the theme at mount/launch time)."""
    return gr.themes.Default(**THEME_FONTS)
