"""OpenAI-compatible routes for a model that generates text: `GET /v1/models`, `POST /v1/completions` and, for a
task whose inputs may be chats, `POST /v1/chat/completions`; streaming answers are server-sent events.

The official `openai` client works against them (`OpenAI(base_url="http://127.0.0.1:7860/v1", api_key="unused")`).
They call only the task protocol's generation members (through `ModelService`), and answer errors in OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`: 400 malformed JSON, 413 body too large, 422 wrong shape or over a
limit (prompt tokens, max_tokens, n > 1), 429 every generation slot busy (with Retry-After), never a 5xx for a
request's content.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Literal

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..errors import TextuneError
from ..inference.generation import GenerationSettings
from .config import ServeConfig
from .generation_parameters import default_new_tokens, settings_from_values
from .generation_slots import GenerationSlots, SlotsFull, TextGeneration, pieces, run_generation, takes_chats
from .service import input_problem

logger = logging.getLogger(__name__)

PATHS = ("/v1/models", "/v1/completions", "/v1/chat/completions")
ERROR_TYPES = {400: "invalid_request_error", 405: "invalid_request_error", 413: "invalid_request_error",
               422: "invalid_request_error", 429: "rate_limit_error", 500: "server_error", 503: "server_error"}
EVENT_STREAM = "text/event-stream"


# -- errors ------------------------------------------------------------------------------------------------------

class ErrorDetail(BaseModel):
    message: str = Field(description="One line naming the problem and, for a limit, its flag and value.")
    type: str = Field(description="invalid_request_error, rate_limit_error or server_error.")
    param: str | None = Field(None, description="The request parameter at fault, if one is.")
    code: str | None = Field(None, description="A machine-readable reason, e.g. context_length_exceeded.")


class OpenAIErrorResponse(BaseModel):
    """Every error the OpenAI-compatible routes answer, in OpenAI's shape."""

    error: ErrorDetail


class OpenAIError(Exception):
    """A request an OpenAI-compatible route refuses, answered in OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers


def uses_openai_errors(path: str) -> bool:
    """Whether a request path answers errors in OpenAI's shape rather than `{"detail": ...}`."""
    return path.rstrip("/") in PATHS


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)


def openai_error_responses(*statuses: int) -> dict:
    """OpenAPI entries for the error statuses a route can answer, all with OpenAI's error body."""
    descriptions = {400: "Malformed JSON", 413: "Body too large", 422: "Wrong shape or over a limit",
                    429: "Every generation slot is busy; retry after Retry-After seconds",
                    500: "The model failed on this request"}
    return {status: {"model": OpenAIErrorResponse, "description": descriptions[status]} for status in statuses}


# -- requests ----------------------------------------------------------------------------------------------------

class StreamOptions(BaseModel):
    include_usage: bool = Field(False, description="Send one last chunk with the token usage (and no choices).")


class SamplingRequest(BaseModel):
    """The parameters both routes take; unknown ones are ignored, as OpenAI-compatible servers commonly do."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, description="Any name: the server has one model (GET /v1/models says which).")
    max_tokens: int | None = Field(None, ge=1, description="Most new tokens (default: the run's own setting); the "
                                                           "server's --max_new_tokens_limit caps it (422 beyond).")
    temperature: float | None = Field(None, ge=0, le=2, description="0: greedy; above 0: sampling at this "
                                                                     "temperature (default: the run's setting).")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling: the likeliest tokens making up "
                                                              "this probability.")
    n: int = Field(1, description="Choices per prompt: only 1 (422 otherwise).")
    stop: str | list[str] | None = Field(None, description="Up to 4 strings; the text ends before the first one.")
    seed: int | None = Field(None, description="Seed for sampling, so a sampled answer can be reproduced.")
    stream: bool = Field(False, description="Answer server-sent events, one per piece of text, then [DONE].")
    stream_options: StreamOptions | None = None

    def tokens_asked(self) -> int | None:
        return self.max_tokens


class CompletionRequest(SamplingRequest):
    model_config = ConfigDict(extra="ignore", json_schema_extra={
        "examples": [{"model": "textune", "prompt": "Once upon a time", "max_tokens": 32, "temperature": 0}]})

    prompt: str | list[str] = Field(description="A prompt, or several (one choice each).")


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"] = "text"
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def as_input(self) -> dict:
        """The message as the task takes it: a role ("developer" is OpenAI's newer "system") and plain text."""
        text = self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class ChatRequest(SamplingRequest):
    model_config = ConfigDict(extra="ignore", json_schema_extra={
        "examples": [{"model": "textune", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 32}]})

    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far, oldest first.")
    max_completion_tokens: int | None = Field(None, ge=1, description="OpenAI's newer name for max_tokens.")

    def tokens_asked(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


# -- responses (for the docs; the routes build plain dicts) -------------------------------------------------------

class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"]


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


STREAMED = {"description": "A JSON answer, or with `stream: true` server-sent events (`data: {chunk}` lines, then "
                           "`data: [DONE]`)",
            "content": {EVENT_STREAM: {"schema": {"type": "string"}}}}


# -- routes ------------------------------------------------------------------------------------------------------

def add_openai_routes(app: FastAPI, service, config: ServeConfig, slots: GenerationSlots) -> None:
    """Add the OpenAI-compatible routes to `app` for a generating task (`generating.generates`); chat only for a
    task whose inputs may be chats (`generation_slots.takes_chats`)."""
    name, started = service.info.name, int(time.time())
    limits = (f"Limits: {config.max_prompt_tokens} prompt tokens (--max_prompt_tokens), max_tokens up to "
              f"{config.max_new_tokens_limit} (--max_new_tokens_limit), {config.max_generations} generations at once "
              f"(--max_generations; 429 with Retry-After beyond).")

    @app.get("/v1/models", response_model=ModelList, summary="The served model (OpenAI-compatible)")
    async def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "created": started,
                                            "owned_by": "textune"}]}

    async def completions(body: CompletionRequest):
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts:
            raise OpenAIError(422, "prompt is an empty list; send a prompt string", param="prompt")
        if len(prompts) > config.max_texts_per_request:
            raise OpenAIError(422, f"prompt has {len(prompts)} prompts; the limit is {config.max_texts_per_request} "
                                   "per request (--max_texts_per_request)", param="prompt")
        return await answer(body, prompts, chat=False)

    app.post("/v1/completions", response_model=CompletionResponse, summary="Complete a prompt (OpenAI-compatible)",
             description=limits, responses={200: STREAMED} | openai_error_responses(400, 413, 422, 429, 500)
             )(completions)

    async def chat_completions(body: ChatRequest):
        return await answer(body, [{"messages": [message.as_input() for message in body.messages]}], chat=True)

    if takes_chats(service.task):
        app.post("/v1/chat/completions", response_model=ChatCompletionResponse,
                 summary="Answer a conversation (OpenAI-compatible)", description=limits,
                 responses={200: STREAMED} | openai_error_responses(400, 413, 422, 429, 500))(chat_completions)

    async def wrong_method(request: Request):
        # Without these the demo mounted at `/` would answer a GET of them with its own 404 page.
        raise OpenAIError(405, f"{request.method} is not allowed on {request.url.path}; POST a JSON body to it",
                          headers={"Allow": "POST"})

    for path in ("/v1/completions", "/v1/chat/completions") if takes_chats(service.task) else ("/v1/completions",):
        app.api_route(path, methods=["GET", "HEAD", "PUT", "PATCH", "DELETE"], include_in_schema=False)(wrong_method)

    async def answer(body: SamplingRequest, inputs: list, chat: bool):
        settings = settings_from_openai(body, service.task.generation, config)
        stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        if len(stops) > 4:
            raise OpenAIError(422, f"stop has {len(stops)} strings; send at most 4", param="stop")
        for index, value in enumerate(inputs):
            check_prompt(service, value, config, "messages" if chat else f"prompt[{index}]")
        try:
            slots.take()
        except SlotsFull as error:
            raise OpenAIError(429, str(error), code="rate_limit_exceeded",
                              headers={"Retry-After": str(error.retry_after)}) from None
        reply = Reply(chat, name)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return SlotResponse(stream_events(service, inputs, settings, stops, reply, include_usage), slots)
        try:
            generations = []
            for value in inputs:
                generation = TextGeneration(service, value, settings, stops)
                generations.append(generation)
                await run_generation(generation)
        except Exception as error:  # the message stays in the log: it may hold the server's paths or data
            logger.exception("generation failed")
            raise OpenAIError(500, f"the model failed on this request ({type(error).__name__}); see the server "
                                   "log") from error
        finally:
            slots.give_back()
        return reply.whole(generations)


def settings_from_openai(body: SamplingRequest, base: GenerationSettings, config: ServeConfig) -> GenerationSettings:
    """OpenAI's parameters as generation settings over the run's own: temperature 0 is greedy, above 0 sampling;
    max_tokens defaults to the run's setting, capped at --max_new_tokens_limit."""
    if body.n != 1:
        raise OpenAIError(422, f"n is {body.n}; this server answers one choice per prompt (n=1): send the "
                               "request several times instead", param="n")
    asked = body.tokens_asked()
    if asked is not None and asked > config.max_new_tokens_limit:
        raise OpenAIError(422, f"max_tokens is {asked}; this server allows at most {config.max_new_tokens_limit} "
                               "(--max_new_tokens_limit)", param="max_tokens")
    values: dict[str, Any] = {"max_new_tokens": asked or default_new_tokens(base, config.max_new_tokens_limit),
                              "top_p": body.top_p, "seed": body.seed}
    if body.temperature == 0:
        values["do_sample"] = False
    elif body.temperature is not None:
        values.update(do_sample=True, temperature=body.temperature)
    try:
        return settings_from_values(values)
    except TextuneError as error:
        raise OpenAIError(422, str(error).replace("--", "")) from None


def check_prompt(service, value, config: ServeConfig, param: str) -> None:
    """422 for a prompt /v1/predict would refuse too: empty, a text over --max_chars_per_text, or longer than
    --max_prompt_tokens (counted as the model will read it)."""
    problem = input_problem(service, value, "" if param == "messages" else param, config)
    if problem:
        raise OpenAIError(422, problem, param=param.split("[")[0].split(".")[0],
                          code="context_length_exceeded" if "--max_prompt_tokens" in problem else None)


class Reply:
    """The shapes of one request's answer: whole (JSON) or in chunks (server-sent events)."""

    def __init__(self, chat: bool, model: str):
        self.chat, self.model = chat, model
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())

    def head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def whole(self, generations: list[TextGeneration]) -> dict:
        choices = [{"index": index, "finish_reason": generation.finish_reason}
                   | ({"message": {"role": "assistant", "content": generation.text}} if self.chat
                      else {"text": generation.text}) for index, generation in enumerate(generations)]
        usage = {key: sum(generation.usage[key] for generation in generations) for key in Usage.model_fields}
        return self.head("chat.completion" if self.chat else "text_completion") | {"choices": choices,
                                                                                  "usage": usage}

    def chunk(self, index: int, text: str | None = None, finish_reason: str | None = None, first: bool = False) -> str:
        if self.chat:
            delta = ({"role": "assistant"} if first else {}) | ({"content": text} if text is not None else {})
            choice = {"index": index, "delta": delta, "finish_reason": finish_reason}
            return event(self.head("chat.completion.chunk") | {"choices": [choice]})
        choice = {"index": index, "text": text or "", "finish_reason": finish_reason}
        return event(self.head("text_completion") | {"choices": [choice]})

    def usage_chunk(self, generations: list[TextGeneration]) -> str:
        usage = {key: sum(generation.usage[key] for generation in generations) for key in Usage.model_fields}
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return event(self.head(kind) | {"choices": [], "usage": usage})


def event(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


class SlotResponse(StreamingResponse):
    """Server-sent events of generations holding a slot, which frees once they have stopped, however the response
    ends: finished, failed, or the client gone before or during the stream (a never-started generator runs no
    `finally`, so the slot cannot be given back there)."""

    def __init__(self, events, slots: GenerationSlots):
        super().__init__(events, media_type=EVENT_STREAM, headers={"Cache-Control": "no-cache"})
        self.slots = slots

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # a generation still suspended stops here (its `finally`)
            self.slots.give_back()


async def stream_events(service, inputs: list, settings: GenerationSettings, stops: list[str], reply: Reply,
                        include_usage: bool):
    """The answer as server-sent events; a client that disconnects closes this generator, which stops the model.

    The status line is already sent when the model runs, so a failure mid-stream is one error event (OpenAI's
    shape) before the end.
    """
    generations: list[TextGeneration] = []
    try:
        for index, value in enumerate(inputs):
            if reply.chat:
                yield reply.chunk(index, "", first=True)
            generation = TextGeneration(service, value, settings, stops)
            generations.append(generation)
            async for piece in pieces(generation):
                yield reply.chunk(index, piece)
            yield reply.chunk(index, finish_reason=generation.finish_reason)
        if include_usage:
            yield reply.usage_chunk(generations)
    except Exception as error:  # the traceback goes to the log; the client gets one line
        logger.exception("generation failed mid-stream")
        yield event(error_body(500, f"the model failed on this request ({type(error).__name__}); see the server "
                                    "log"))
    yield event("[DONE]")
