"""ServeConfig: every knob of `textune serve` (address, batching, limits), with its default and its check."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import TextuneError
from ..inference.generation import GenerationLimits


@dataclass
class ServeConfig:
    """How the server listens, batches and protects itself. `textune serve --help` shows these as flags.

    Attributes:
        host: Interface to bind. Loopback by default; `0.0.0.0` exposes the server to the network.
        port: TCP port; 0 picks a free one (the address is printed at start).
        batching: Group concurrent requests into one forward pass. Off: one request per forward pass.
        max_batch_size: Most inputs in one batch of requests.
        forward_batch_size: Inputs per forward pass: a batch is sorted by length and run in passes of this size,
            so short inputs are not padded to the longest of the batch (measured: 8 beats 32 by 1.2-1.6x on
            tweets on 2 CPU cores).
        max_wait_ms: Under load, how long a batch that is not full waits for more requests (an idle server
            does not wait).
        max_queue: Most inputs waiting or running at once; a request beyond that gets 429 and Retry-After.
        max_texts_per_request: Most texts in one POST /v1/predict (422 beyond).
        max_chars_per_text: Most characters in one text (422 beyond).
        max_body_bytes: Most bytes in one request body (413 beyond).
        max_new_tokens_limit: For a task that generates text: most new tokens a request may ask for (422 beyond);
            the demo's slider stops there.
        num_beams_limit: For a task that generates text: most beams a request may ask for (422 beyond).
            A request that does not say how many new tokens gets the run's own setting, capped at the limit.
        max_prompt_tokens: Most tokens in one prompt of a text-generating model (a chat's rendered messages
            included); 422 beyond.
        max_generations: Most streamed generations (OpenAI-compatible routes, the chat demo and a streaming demo)
            running at once; a request beyond that gets 429 and Retry-After (the demos: a message). Each one keeps
            the cores busy until it ends, so keep it small on CPU.
        threads: torch intra-op threads used by `serve` (0 keeps torch's default of one per core; fewer helps
            when other processes share the cores).
        graceful_timeout_s: On shutdown, how long in-flight requests may take to finish.
        request_timeout_s: Most seconds a request waits for its prediction (504 beyond); `/readyz` answers 503
            while one batch has run longer than this (a hung model).
        access_log: Log one line per request.
        ui: Serve the Gradio demo at `/` next to the JSON API.
        title: Title of the demo page (default: the run folder's name).
        allow_pickle: Allow loading pickle weights (unsafe; only for runs you trust).
        share: Also open a temporary public link through Gradio's share service (for Colab or Kaggle, where
            the machine's localhost cannot be opened); needs the network.
    """

    host: str = field(default="127.0.0.1", metadata={"help": "Interface to bind (0.0.0.0 exposes the server)."})
    port: int = field(default=7860, metadata={"help": "TCP port; 0 picks a free one."})
    batching: bool = field(default=True, metadata={"help": "Batch concurrent requests (--no_batching: one per pass)."})
    max_batch_size: int = field(default=32, metadata={"help": "Most texts in one batch of requests."})
    forward_batch_size: int = field(default=8, metadata={
        "help": "Texts per forward pass within a batch (sorted by length: short texts are not padded to long ones)."})
    max_wait_ms: float = field(default=5.0, metadata={"help": "Under load, how long a batch waits to fill (idle: 0)."})
    max_queue: int = field(default=512, metadata={"help": "Most texts queued or running; beyond: 429, Retry-After."})
    max_texts_per_request: int = field(default=64, metadata={"help": "Most texts in one request (422 beyond)."})
    max_chars_per_text: int = field(default=10_000, metadata={"help": "Most characters in one text (422 beyond)."})
    max_body_bytes: int = field(default=1_048_576, metadata={"help": "Most bytes in one request body (413 beyond)."})
    max_new_tokens_limit: int = field(default=GenerationLimits.max_new_tokens, metadata={
        "help": "Text generation: most new tokens one request may ask for (parameters.max_new_tokens; 422 beyond)."})
    num_beams_limit: int = field(default=GenerationLimits.num_beams, metadata={
        "help": "Text generation: most beams one request may ask for (parameters.num_beams; 422 beyond)."})
    max_prompt_tokens: int = field(default=4096, metadata={
        "help": "Most tokens in one prompt of a generating model, chat messages included (422 beyond)."})
    max_generations: int = field(default=2, metadata={
        "help": "Most streamed generations at once (OpenAI routes and demos); beyond: 429, Retry-After."})
    threads: int = field(default=0, metadata={"help": "torch threads for inference (0: torch's default)."})
    graceful_timeout_s: float = field(default=30.0, metadata={"help": "Seconds in-flight requests get on shutdown."})
    request_timeout_s: float = field(default=60.0, metadata={
        "help": "Most seconds a request waits for its prediction (504 beyond; /readyz 503 while a batch runs longer)."})
    access_log: bool = field(default=False, metadata={"help": "Log every request (costs throughput under load)."})
    ui: bool = field(default=True, metadata={"help": "Serve the Gradio demo at / (--no_ui: JSON API only)."})
    title: str | None = field(default=None, metadata={"help": "Demo page title (default: the run folder's name)."})
    allow_pickle: bool = field(default=False, metadata={"help": "Allow pickle weights (unsafe)."})
    backend: str = field(default="auto", metadata={"help": "Inference backend: auto (the one chosen at the end of "
                                                           "training, see backend.json; else an exported ONNX model "
                                                           "whose parity check passed; else torch), torch, "
                                                           "torch-int8, torch-bf16, onnx, onnx-int8."})
    share: bool = field(default=False, metadata={
        "help": "Also open a temporary public link via Gradio's share service (Colab/Kaggle); needs the network."})

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise TextuneError(f"--port {self.port}: use 0 (any free port) to 65535")
        for name in ("max_batch_size", "forward_batch_size", "max_queue", "max_texts_per_request",
                     "max_chars_per_text", "max_body_bytes", "max_new_tokens_limit", "num_beams_limit",
                     "max_prompt_tokens", "max_generations"):
            if getattr(self, name) < 1:
                raise TextuneError(f"--{name} {getattr(self, name)}: must be at least 1")
        if self.max_wait_ms < 0:
            raise TextuneError(f"--max_wait_ms {self.max_wait_ms}: must be 0 or more")
        if self.threads < 0:
            raise TextuneError(f"--threads {self.threads}: use 0 (torch's default) or a positive count")
        if self.graceful_timeout_s < 0:
            raise TextuneError(f"--graceful_timeout_s {self.graceful_timeout_s}: must be 0 or more")
        if self.request_timeout_s <= 0:
            raise TextuneError(f"--request_timeout_s {self.request_timeout_s}: must be more than 0 seconds")
        if self.max_texts_per_request > self.max_queue:
            # Otherwise a request within the per-request limit could never be admitted.
            raise TextuneError(f"--max_texts_per_request {self.max_texts_per_request} exceeds --max_queue "
                               f"{self.max_queue}; raise --max_queue or lower --max_texts_per_request")

    @property
    def generation_limits(self) -> GenerationLimits:
        """The caps on a request's generation parameters."""
        return GenerationLimits(max_new_tokens=self.max_new_tokens_limit, num_beams=self.num_beams_limit)

    def text_problem(self, text: str, name: str = "the text") -> str | None:
        """What is wrong with one text of a request, or None: the rule the API (422) and the demo share."""
        if not text.strip():
            return f"{name} is empty or only whitespace; send some words"
        if len(text) > self.max_chars_per_text:
            return (f"{name} has {len(text)} characters; the limit is {self.max_chars_per_text} per text "
                    f"(--max_chars_per_text)")
        return None
