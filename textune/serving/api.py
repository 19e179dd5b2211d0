"""The HTTP app: a JSON prediction API with limits, health probes and OpenAPI docs, plus the Gradio demo at `/`.

Routes: `POST /v1/predict`, `GET /v1/labels`, `GET /healthz`, `GET /readyz`, `/docs`, and the demo at `/`; for a
model that generates text also the OpenAI-compatible ones (`openai_api`), which answer errors in OpenAI's shape.
Every error is JSON `{"detail": "<one line naming the problem and the limit>"}`: 400 malformed JSON,
405 wrong method (with Allow), 413 body too large (anywhere in the app, the demo's routes included),
422 wrong shape or a per-request limit, 429 queue full (with Retry-After), 500 the model failed on this
request, 503 shutting down, 504 no prediction within --request_timeout_s.
"""

from __future__ import annotations

import contextlib
import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import TextuneError
from .batching import MicroBatcher, QueueFull, RequestTimeout, ShuttingDown
from .config import ServeConfig
from .docs_page import render_docs
from .generation_slots import GenerationSlots, generates
from .openai_api import OpenAIError, add_openai_routes, error_body, uses_openai_errors
from .generation_parameters import within_token_limit
from .service import ModelService, input_problem

logger = logging.getLogger(__name__)


class ErrorResponse(BaseModel):
    """Every error the API answers."""

    detail: str = Field(description="One line naming the problem and, for a limit, its flag and value.")


def error_responses(*statuses: int) -> dict:
    """OpenAPI entries for the error statuses an operation can answer, all with the `ErrorResponse` body."""
    descriptions = {400: "Malformed JSON", 405: "Wrong method", 413: "Body too large",
                    422: "Wrong shape or over a limit", 429: "Queue full; retry after Retry-After seconds",
                    500: "The model failed on this request", 503: "Shutting down, starting, or the model is stuck",
                    504: "No prediction within --request_timeout_s"}
    return {status: {"model": ErrorResponse, "description": descriptions[status]} for status in statuses}


class RequestError(Exception):
    """A request the server refuses, with its HTTP status and a message naming the limit."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def build_app(service: ModelService, config: ServeConfig | None = None) -> FastAPI:
    """The served app: JSON API, probes and docs, and (with `config.ui`) the Gradio demo mounted at `/`.

    The batcher starts and drains with the app's lifespan, so use the app inside a server or
    `fastapi.testclient.TestClient(app)` as a context manager.

    Example:
        >>> app = build_app(ModelService.from_run("experiments/"), ServeConfig(max_batch_size=16))
        >>> uvicorn.run(app, host="127.0.0.1", port=7860)
    """
    config = config or ServeConfig()
    batcher = MicroBatcher(service.predict, max_batch_size=config.max_batch_size,
                           max_wait_s=config.max_wait_ms / 1000, max_queue=config.max_queue,
                           enabled=config.batching, timeout_s=config.request_timeout_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        # The first forward pass pays one-off costs (allocations, kernel selection): not a user's request.
        if example_body(service.api) is not None:
            await batcher.submit(service.api.inputs(service.api.request(**example_body(service.api))))
        logger.info("model %s ready (batching %s)", service.info.name, "on" if config.batching else "off")
        try:
            yield
        finally:
            await batcher.stop()

    # docs_url/redoc_url off: FastAPI's pages load their scripts from a CDN; ours (add_docs) needs no network.
    app = FastAPI(title=f"textune: {service.info.name}", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description=f"Predictions of the {service.task.card()['kind']} **{service.info.name}**. "
                              "The demo page is at `/`.")
    slots = GenerationSlots(config.max_generations)  # the OpenAI-compatible routes' and the chat demo's
    app.state.service, app.state.batcher, app.state.config = service, batcher, config
    app.state.generation_slots = slots
    app.state.draining = False
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)  # the whole app, Gradio's routes too
    add_error_handlers(app, service.api)
    add_routes(app, service, batcher, config)
    if generates(service.task):
        add_openai_routes(app, service, config, slots)
    add_docs(app)
    if config.ui:
        import gradio as gr

        from .ui import build_demo, theme

        gr.mount_gradio_app(app, build_demo(service, batcher, config, slots), path="/", ssr_mode=False,
                            footer_links=["api"], run_history=False, theme=theme(),
                            max_file_size=config.max_body_bytes)
    return app


def example_body(api) -> dict | None:
    """The request body the task's schema gives as its example (the docs show it; the warm-up sends it), if any."""
    examples = (api.request.model_config.get("json_schema_extra") or {}).get("examples") or [None]
    return examples[0]


def inputs_field(api) -> str:
    """The request's field holding the inputs (e.g. `texts`): error messages name it."""
    return next(iter(api.request.model_fields))


def add_routes(app: FastAPI, service: ModelService, batcher: MicroBatcher, config: ServeConfig) -> None:
    info, api = service.info, service.api
    items = inputs_field(api)
    limits = (f"Limits: at most {config.max_texts_per_request} {items} per request, {config.max_chars_per_text} "
              f"characters per text, {config.max_body_bytes} bytes per body; 429 with Retry-After when "
              f"{config.max_queue} {items} are already queued.")
    if hasattr(api, "generation"):
        limits += (f" Generation: parameters.max_new_tokens at most {config.max_new_tokens_limit} "
                   f"(--max_new_tokens_limit), parameters.num_beams at most {config.num_beams_limit} "
                   "(--num_beams_limit); 422 beyond.")
    # The task's schemas, under the names the API has always had (PredictResponse, LabelsResponse).
    predict_response = create_model("PredictResponse", model=(str, ...), predictions=(list[api.record], ...))
    labels_response = create_model("LabelsResponse", __base__=api.description, model=(str, ...))

    async def predict(body):
        inputs = api.inputs(body)
        check_limits(service, inputs, items, example_body(api), config)
        generation = request_generation(api, body, config, service.task)
        try:
            # requests with other generation settings are batched apart (the key), each run with its own
            records = await batcher.submit(inputs, generation)
        except QueueFull as error:
            raise RequestError(429, str(error), {"Retry-After": str(error.retry_after)}) from None
        except ShuttingDown:
            raise RequestError(503, "the server is shutting down; retry on another replica or later") from None
        except RequestTimeout as error:
            raise RequestError(504, str(error)) from None
        except Exception as error:  # the batcher logged the traceback; the client gets one JSON line
            # the message stays in the log: it may hold the server's paths or data
            raise RequestError(500, f"the model failed on this request ({type(error).__name__}); see the server "
                                    "log") from None
        return {"model": info.name, "predictions": records}

    predict.__annotations__ = {"body": api.request}  # FastAPI reads the body's schema from the annotation
    app.post("/v1/predict", response_model=predict_response, response_model_exclude_none=True,
             summary=f"Predict ({service.task.card()['kind']})", description=limits,
             responses=error_responses(400, 413, 422, 429, 500, 503, 504))(predict)

    @app.api_route("/v1/predict", methods=["GET", "HEAD", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def predict_wrong_method(request: Request):
        # Without this route the demo mounted at `/` would answer 404 for a GET of /v1/predict.
        raise RequestError(405, f'{request.method} is not allowed on /v1/predict; POST {{"{items}": [...]}} to it',
                           {"Allow": "POST"})

    @app.get("/v1/labels", response_model=labels_response, response_model_exclude_none=True,
             summary="What the served task expects and answers")
    async def labels():
        return {"model": info.name} | service.task.describe()

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded and the server takes requests",
             responses=error_responses(503))
    async def readyz():
        if app.state.draining or not batcher.running:
            status = "draining" if app.state.draining else "starting"
            return JSONResponse({"status": status, "detail": f"not ready: the server is {status}"}, status_code=503)
        if batcher.busy_s > config.request_timeout_s:
            return JSONResponse({"status": "stuck", "detail": f"not ready: one batch has run for "
                                 f"{batcher.busy_s:.0f} s, over --request_timeout_s {config.request_timeout_s:g}"},
                                status_code=503)
        stats = batcher.stats
        return {"status": "ready", "queued_texts": batcher.pending, "max_queue": config.max_queue,
                "batches": stats.batches, "batched_texts": stats.inputs,
                "rejected": stats.rejected}


def add_docs(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs():
        return HTMLResponse(render_docs(app.openapi()))


def check_limits(service: ModelService, inputs: list, items: str, example: dict | None,
                 config: ServeConfig) -> None:
    """Raise RequestError(422) naming the first per-request limit `inputs` break (`items`: the request's field)."""
    if not inputs:
        raise RequestError(422, f"{items} is empty: send at least one" + (f", e.g. {json.dumps(example)}" if example
                                                                           else ""))
    if len(inputs) > config.max_texts_per_request:
        raise RequestError(422, f"too many {items}: {len(inputs)} in one request; the limit is "
                                f"{config.max_texts_per_request} (--max_texts_per_request); split the request")
    for index, value in enumerate(inputs):
        problem = input_problem(service, value, f"{items}[{index}]", config)
        if problem:
            raise RequestError(422, problem)


def request_generation(api, body, config: ServeConfig, task):
    """The request's generation settings for a task whose API takes them (None: the run's own), within the
    server's limits and what `task` can do.

    Raises:
        RequestError: 422 naming the parameter over its limit (or out of range) and the flag that sets the limit,
            or the one `task.with_generation` refuses (beams asked of a model that cannot search them).
    """
    read = getattr(api, "generation", None)  # optional in the TaskApi protocol
    if read is None:
        return None
    try:
        settings = read(body)
    except TextuneError as error:  # a value the settings' own checks refuse
        raise RequestError(422, f"parameters: {error}".replace("--", "")) from None
    problem = settings and config.generation_limits.problem(settings)
    if problem:
        flag = "--max_new_tokens_limit" if "max_new_tokens" in problem else "--num_beams_limit"
        raise RequestError(422, f"{problem} ({flag}); ask for less")
    settings = within_token_limit(settings, task.generation, config.max_new_tokens_limit)
    if settings:
        try:  # a setting the task cannot generate with fails here as a 422, not later in the batch as a 500
            task.with_generation(settings)
        except TextuneError as error:
            raise RequestError(422, f"parameters: {error}") from None
    return settings


def error_json(path: str, status: int, message: str, headers: dict[str, str] | None = None,
               param: str | None = None) -> JSONResponse:
    """An error answer: `{"detail": ...}`, or OpenAI's `{"error": {...}}` on the OpenAI-compatible routes."""
    body = error_body(status, message, param) if uses_openai_errors(path) else {"detail": message}
    return JSONResponse(body, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI, api) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError):
        return error_json(request.url.path, error.status, error.message, error.headers)

    @app.exception_handler(OpenAIError)
    async def openai_error(request: Request, error: OpenAIError):
        return JSONResponse(error_body(error.status, error.message, error.param, error.code),
                            status_code=error.status, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return error_json(request.url.path, error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception):
        # Starlette still logs the traceback after this answer; the client gets JSON, not plain text.
        return error_json(request.url.path, 500, f"internal server error ({type(error).__name__}); see the server "
                                                 "log")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        problems, path = error.errors(), request.url.path
        if any(problem.get("type") == "json_invalid" for problem in problems):
            reason = next(p for p in problems if p.get("type") == "json_invalid").get("ctx", {}).get("error", "")
            return error_json(path, 400, f"the request body is not valid JSON ({reason})".replace(" ()", ""))
        message = "; ".join(describe_problem(problem) for problem in problems[:5])
        if uses_openai_errors(path):  # the parameter at fault, as OpenAI names it
            return error_json(path, 422, f"invalid request: {message}", param=problem_param(problems[0]))
        expected = json.dumps(example_body(api) or {inputs_field(api): ["..."]})
        return error_json(path, 422, f"invalid request: {message}. Expected {expected}")


def problem_param(problem: dict) -> str | None:
    """The top-level request field a pydantic error is about (`messages` for body.messages[0].role)."""
    location = [part for part in problem.get("loc", ()) if part != "body"]
    return str(location[0]) if location else None


def describe_problem(problem: dict) -> str:
    """'texts[2]: Input should be a valid string' from a pydantic error."""
    location_parts = list(problem.get("loc", ()))
    if location_parts and location_parts[0] == "body":
        location_parts = location_parts[1:]
    location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location_parts).lstrip(".")
    if problem.get("type") == "missing" and not location:
        return "the request has no JSON body"
    received = problem.get("input")
    wrong_type = problem.get("type") in ("string_type", "list_type", "model_attributes_type")
    got = f" (got {type(received).__name__})" if wrong_type else ""
    return f"{location or 'body'}: {problem.get('msg', 'invalid')}{got}"


class BodySizeLimit:
    """ASGI middleware: answer 413 when a body under `prefix` exceeds `max_bytes`, before the app reads it.

    Checks Content-Length first, then counts streamed bytes (chunked bodies have no length up front).
    """

    def __init__(self, app, max_bytes: int, prefix: str = "/"):
        self.app, self.max_bytes, self.prefix = app, max_bytes, prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, int(declared))
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send, len(body), at_least=more)
                return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send, size: int, at_least: bool = False) -> None:
        message = (f"request body of {'more than ' if at_least else ''}{size} bytes is too large; the limit is "
                   f"{self.max_bytes} bytes (--max_body_bytes)")
        await error_json(scope["path"], 413, message)(scope, receive, send)
