"""The Gradio demo: the task's inputs and outputs (`Task.demo()`), a header with the run's facts, and examples.

Its predict function goes through the same batcher as the JSON API, so demo users and API clients share
batches and limits. What the inputs and outputs are, and how a record fills them, is the task's. A task that
streams (the protocol's optional `stream` and `with_generation`) gets its output growing token by token instead,
and its generation settings in a collapsed accordion, within the server's limits; each stream takes one of the
`--max_generations` slots the OpenAI-compatible routes use.
"""

from __future__ import annotations

import gradio as gr

from ..inference.generation import GenerationSettings
from ..models.loading import model_display_name
from .api import inputs_field
from .batching import MicroBatcher, QueueFull, RequestTimeout, ShuttingDown
from .config import ServeConfig
from .generation_parameters import settings_from_values
from .generation_slots import GenerationSlots, SlotsFull, takes_chats
from .service import ModelInfo, ModelService

# System fonts: the default theme fetches Google Fonts, which an offline machine (or a strict network) cannot.
THEME_FONTS = dict(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def header_markdown(info: ModelInfo, title: str, card: dict) -> str:
    """Title, the kind of model, its base model, what it answers (`card`: the task's `card()`) and its metrics."""
    lines = [f"# {title}", ""]
    facts = [card["kind"]]
    if info.base_model:
        facts.append(f"fine-tuned from `{model_display_name(str(info.base_model))}`")
    if card.get("outputs") and "\n" not in card["outputs"]:
        facts.append(card["outputs"])
    lines.append(" · ".join(facts))
    if info.headline_metrics:
        shown = " · ".join(f"{name} **{value:.3f}**" for name, value in info.headline_metrics.items())
        samples = info.metrics.get("samples")
        lines += ["", f"Validation: {shown}" + (f" (on {int(samples)} rows)" if samples else "")]
    return "\n".join(lines)


def demo_input_problem(value, config: ServeConfig) -> str | None:
    """The API's text rule for a demo input: "the text is empty ...", or "the question is empty ..." per field."""
    if isinstance(value, dict):
        return next((problem for key, text in value.items() if isinstance(text, str)
                     and (problem := config.text_problem(text, name=f"the {key}"))), None)
    return config.text_problem(value or "") if isinstance(value, str) or value is None else None


def build_demo(service: ModelService, batcher: MicroBatcher, config: ServeConfig,
               slots: GenerationSlots | None = None) -> gr.Blocks:
    """The demo page; mount it with `gr.mount_gradio_app` next to the API (as `build_app` does). A task whose
    inputs may be chats gets the chat page (`chat_demo`), sharing the API's generation `slots`."""
    info = service.info
    title = config.title or info.name
    card = service.task.card()
    slots = slots or GenerationSlots(config.max_generations)
    if takes_chats(service.task):
        from .chat_demo import build_chat_demo

        return build_chat_demo(service, config, slots, header_markdown(info, title, card))
    demo_parts = service.task.demo()

    async def predict(*values):
        # A user's mistake or a busy server is a message on the page, not a traceback in the log.
        value = demo_parts.to_input(*values)
        problem = demo_input_problem(value, config)
        if problem:
            raise gr.Error(problem[0].upper() + problem[1:] + ".", print_exception=False)
        try:
            [record] = await batcher.submit([value])
        except (QueueFull, RequestTimeout) as error:
            raise gr.Error(str(error), print_exception=False) from None
        except ShuttingDown:
            raise gr.Error("The server is shutting down; try again in a moment.", print_exception=False) from None
        shown = demo_parts.show(record, value)
        return shown if len(shown) > 1 else shown[0]  # Gradio wants a bare value for one output

    streams = hasattr(service.task, "stream") and hasattr(service.task, "with_generation")

    def stream(*values):
        # a generator: Gradio sends each yielded text to the page as it comes; the task's inputs come first, then
        # the generation controls
        value = demo_parts.to_input(*values[:len(inputs)])
        problem = demo_input_problem(value, config)
        if problem:
            raise gr.Error(problem[0].upper() + problem[1:] + ".", print_exception=False)
        task = service.task.with_generation(
            settings_from_values(dict(zip(GENERATION_CONTROLS, values[len(inputs):]))) or GenerationSettings())
        predictor = service.predictor
        try:  # a streamed generation takes one of the server's --max_generations slots, as the API's do
            slots.take()
        except SlotsFull as error:
            raise gr.Error(str(error), print_exception=False) from None
        try:
            text, shown = "", False
            for piece in task.stream(predictor.model, predictor.tokenizer, value):
                text, shown = text + piece, True
                yield text
            if not shown:  # an empty output is an answer too (a generator that yields nothing shows None)
                yield text
        finally:
            slots.give_back()

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(header_markdown(info, title, card))
        with gr.Row():
            with gr.Column():
                inputs = demo_parts.inputs()
                for component in inputs:
                    if hasattr(component, "max_length"):  # the browser stops typing at the API's limit
                        component.max_length = config.max_chars_per_text
                controls = generation_controls(service.task.generation, config) if streams else []
                button = gr.Button("Predict", variant="primary", elem_id="predict")
            with gr.Column():
                outputs = demo_parts.outputs()
        if info.examples:
            gr.Examples(examples=info.examples, inputs=inputs, label="Examples from the validation data")
        gr.Markdown(f'JSON API: `POST /v1/predict` with `{{"{inputs_field(service.api)}": [...]}}`; '
                    "OpenAPI docs at [/docs](/docs).")
        # Our batcher (or, for streamed generations, the slots) bounds the load, so Gradio's per-event
        # concurrency limit (default 1) would only serialize.
        handler = stream if streams else predict
        button.click(handler, inputs=inputs + controls, outputs=outputs, api_name="predict", concurrency_limit=None)
        for component in inputs:
            if isinstance(component, gr.Textbox) and len(inputs) == 1:
                component.submit(handler, inputs=inputs + controls, outputs=outputs, api_visibility="undocumented",
                                 concurrency_limit=None)
    return demo


GENERATION_CONTROLS = ("max_new_tokens", "num_beams", "do_sample", "temperature", "top_p")


def generation_controls(defaults: GenerationSettings, config: ServeConfig) -> list:
    """The generation settings' inputs, in a collapsed accordion: the task's own values, within the server's limits
    (one component per name of GENERATION_CONTROLS, in that order)."""
    with gr.Accordion("Generation settings", open=False, elem_id="generation"):
        return [
            gr.Slider(1, config.max_new_tokens_limit, step=1, label="Max new tokens", elem_id="max_new_tokens",
                      value=min(defaults.max_new_tokens or 64, config.max_new_tokens_limit)),
            gr.Slider(1, config.num_beams_limit, step=1, label="Beams (1: greedy or sampling; beams cannot stream)",
                      value=min(defaults.num_beams or 1, config.num_beams_limit), elem_id="num_beams"),
            gr.Checkbox(value=bool(defaults.do_sample), label="Sample", elem_id="do_sample"),
            gr.Slider(0.05, 2.0, step=0.05, value=defaults.temperature or 1.0, label="Temperature (sampling)",
                      elem_id="temperature"),
            gr.Slider(0.05, 1.0, step=0.05, value=defaults.top_p or 1.0, label="Top p (sampling)", elem_id="top_p"),
        ]


def theme() -> gr.themes.Base:
    """The demo's theme (pass to mount_gradio_app: Gradio 6 takes the theme at mount/launch time)."""
    return gr.themes.Default(**THEME_FONTS)
