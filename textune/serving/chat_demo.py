"""The Gradio chat demo for a task whose inputs may be chats: streamed answers, the history, a system prompt, and
sampling settings in a collapsed accordion.

It goes through the same pieces as `POST /v1/chat/completions` (`openai_api.settings_from_openai`, `check_prompt`,
`generation_slots.TextGeneration`) and takes a slot of the same `GenerationSlots`, so demo users and API clients share
the limits on prompt length, new tokens and generations at once.
"""

from __future__ import annotations

import gradio as gr

from .config import ServeConfig
from .generation_slots import GenerationSlots, SlotsFull, TextGeneration, pieces
from .openai_api import OpenAIError, SamplingRequest, check_prompt, settings_from_openai
from .service import ModelService


def message_text(content) -> str:
    """A Gradio history message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple)):
        return "".join(message_text(part) for part in content)
    return ""


def chat_messages(message: str, history: list[dict], system: str) -> list[dict]:
    """The conversation as the task takes it: the system prompt (if any), the history, the new message."""
    messages = [{"role": "system", "content": system.strip()}] if system and system.strip() else []
    messages += [{"role": turn["role"], "content": message_text(turn["content"])} for turn in history
                 if turn.get("role") in ("user", "assistant")]
    return messages + [{"role": "user", "content": message}]


def build_chat_demo(service: ModelService, config: ServeConfig, slots: GenerationSlots, header: str) -> gr.Blocks:
    """The chat page (`header`: the page's Markdown title and facts); mount it as `build_app` does."""
    base = service.task.generation
    cap = config.max_new_tokens_limit
    sampling = bool(base.do_sample)

    default_tokens = min(base.max_new_tokens or 256, cap)
    default_temperature = (base.temperature or 1.0) if sampling else 0

    # The defaults make every setting optional for gradio_client, so `predict("Hello", api_name="/predict")` works
    # as a Space's README shows it (a parameter is optional there when the function's default is None).
    async def respond(message: str, history: list[dict], system: str | None = None,
                      max_new_tokens: float | None = None, temperature: float | None = None,
                      top_p: float | None = None):
        max_new_tokens = default_tokens if max_new_tokens is None else max_new_tokens
        temperature = default_temperature if temperature is None else temperature
        top_p = (base.top_p or 1.0) if top_p is None else top_p
        # A user's mistake or a busy server is a message on the page, not a traceback in the log.
        problem = config.text_problem(message or "", name="the message")
        if problem:
            raise gr.Error(problem[0].upper() + problem[1:] + ".", print_exception=False)
        value = {"messages": chat_messages(message, history, system)}
        try:
            settings = settings_from_openai(SamplingRequest(max_tokens=int(max_new_tokens), temperature=temperature,
                                                            top_p=top_p if temperature else None), base, config)
            check_prompt(service, value, config, "the conversation")
            slots.take()
        except (OpenAIError, SlotsFull) as error:
            raise gr.Error(str(error), print_exception=False) from None
        text = ""
        try:
            async for piece in pieces(TextGeneration(service, value, settings)):
                text += piece
                yield text
        finally:
            slots.give_back()

    with gr.Blocks(title=config.title or service.info.name, analytics_enabled=False) as demo:
        gr.Markdown(header)
        system = gr.Textbox(label="System prompt", placeholder="e.g. You are a helpful assistant.", lines=1,
                            max_length=config.max_chars_per_text, elem_id="system")
        settings = [
            gr.Slider(1, cap, value=default_tokens, step=1, label="Max new tokens", render=False),
            gr.Slider(0, 2, value=default_temperature, step=0.05, label="Temperature (0: greedy)", render=False),
            gr.Slider(0.05, 1, value=base.top_p or 1.0, step=0.05, label="Top p (when sampling)", render=False),
        ]
        # Our slots bound the load, so Gradio's per-event concurrency limit (default 1) would only serialize.
        # api_name "predict", as every demo's: a Space's README tells gradio_client to call /predict.
        gr.ChatInterface(respond, additional_inputs=[system, *settings],
                         additional_inputs_accordion=gr.Accordion("Sampling settings", open=False, render=False),
                         textbox=gr.Textbox(placeholder="Type a message", max_length=config.max_chars_per_text,
                                            show_label=False, elem_id="message"),
                         api_name="predict", concurrency_limit=None, autofocus=False, fill_height=False)
        gr.Markdown("OpenAI-compatible API: `POST /v1/chat/completions` (base URL `/v1`); "
                    "OpenAPI docs at [/docs](/docs).")
    return demo
