"""Generation settings shared by the tasks that generate text: what a run saves, what flags and API parameters
override, the server's limits on them, and streaming one output token by token.

A generating task keeps its run's settings and answers `with_generation(overrides)` (the protocol's optional hook)
with a copy generating under `overrides.over(its own)`; `textune predict`'s flags and an API request's
`parameters` are such overrides. Streaming runs transformers' `generate` in a thread and reads its text as it comes.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Iterator

from ..errors import TextuneError

HELP = {
    "max_new_tokens": "Longest output, in new tokens.",
    "num_beams": "Beams of beam search (1: greedy or sampling).",
    "do_sample": "Sample the next token instead of taking the likeliest.",
    "temperature": "Sampling temperature (with --do_sample): below 1 sharper, above 1 more varied.",
    "top_p": "Nucleus sampling (with --do_sample): sample from the likeliest tokens making up this probability.",
    "top_k": "Sample only from the k likeliest tokens (with --do_sample).",
    "repetition_penalty": "Above 1 discourages repeating tokens already in the text.",
    "seed": "Random seed for sampling, so a sampled output can be reproduced.",
}


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate; None means "not said here" (the run's own setting, else the model's default).

    Attributes are transformers' `generate` arguments of the same names, plus `seed`.
    """

    max_new_tokens: int | None = None
    num_beams: int | None = None
    do_sample: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None

    def __post_init__(self):
        problem = self.problem()
        if problem:
            raise TextuneError(problem)

    def problem(self) -> str | None:
        """What is out of range, as one line naming the flag (None when every value is usable)."""
        at_least_one = ("max_new_tokens", "num_beams", "top_k")
        for name in at_least_one:
            value = getattr(self, name)
            if value is not None and value < 1:
                return f"--{name} must be at least 1, got {value}"
        if self.temperature is not None and self.temperature <= 0:
            return f"--temperature must be above 0, got {self.temperature}; for greedy output leave out --do_sample"
        if self.top_p is not None and not 0 < self.top_p <= 1:
            return f"--top_p must be in (0, 1], got {self.top_p}"
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            return f"--repetition_penalty must be above 0, got {self.repetition_penalty}"
        return None

    def given(self) -> dict[str, Any]:
        """The settings said here (not None), by name."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    def over(self, base: "GenerationSettings") -> "GenerationSettings":
        """`base` with every setting said here put over it."""
        return replace(base, **self.given())

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate`: the settings said here, without the seed, and without the
        sampling ones when not sampling (transformers warns that they are ignored then)."""
        kwargs = self.given()
        kwargs.pop("seed", None)
        if not self.do_sample:
            for name in ("temperature", "top_p", "top_k"):
                kwargs.pop(name, None)
        return kwargs

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> "GenerationSettings":
        """The settings among `values` (a namespace's vars, a saved run's dict); other keys are ignored."""
        return cls(**{item.name: values[item.name] for item in fields(cls) if values.get(item.name) is not None})


def add_generation_flags(parser, names: tuple[str, ...] | None = None) -> None:
    """Add one flag per `GenerationSettings` field (or those in `names`) to an argparse parser or group, with
    `HELP`'s text; unset flags stay None, so `GenerationSettings.from_values(vars(args))` holds only what was said.
    The one way textune's commands (predict, evaluate, generate, chat) spell the sampling flags."""
    from ..dataclass_flags import add_dataclass_flags

    add_dataclass_flags(parser, GenerationSettings, helps=HELP, only=names)


@dataclass(frozen=True)
class GenerationLimits:
    """The most a server generates for one request; beyond it the API answers 422 naming the parameter."""

    max_new_tokens: int = 512
    num_beams: int = 4

    def problem(self, settings: GenerationSettings) -> str | None:
        """Which setting is over its limit, as one line (None when within)."""
        for name in ("max_new_tokens", "num_beams"):
            value, limit = getattr(settings, name), getattr(self, name)
            if value is not None and value > limit:
                return f"parameters.{name} is {value}; this server allows at most {limit}"
        return None


def seed_sampling(settings: GenerationSettings) -> None:
    """Seed torch's generator when a seed is given, so a sampled output can be reproduced."""
    if settings.seed is not None:
        import torch

        torch.manual_seed(settings.seed)


def stream_text(model, tokenizer, inputs: dict, settings: GenerationSettings, skip_prompt: bool,
                extra: dict[str, Any] | None = None) -> Iterator[str]:
    """The text of one generated output, piece by piece as its tokens come (the pieces joined are the whole text).

    Args:
        model: A transformers model with `generate`.
        tokenizer: Its tokenizer (decodes the pieces, special tokens skipped).
        inputs: `generate`'s tensors for ONE input (input_ids, attention_mask).
        settings: The generation settings; beam search cannot stream, so with num_beams > 1 the whole text comes as
            one piece when it is done.
        skip_prompt: True for a decoder-only model, whose output starts with its prompt.
        extra: More `generate` arguments that are no generation setting (mBART's forced_bos_token_id).

    Raises:
        Whatever `generate` raised in its thread, once the pieces before it are read.
    """
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    options = settings.generate_kwargs() | (extra or {})
    seed_sampling(settings)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=skip_prompt, skip_special_tokens=True)
    failure: list[BaseException] = []
    closed = threading.Event()  # the reader went away (a client disconnected): stop generating for it

    class UntilClosed(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return closed.is_set()

    def run() -> None:
        import torch

        try:
            with torch.inference_mode():
                model.generate(**inputs, **options, streamer=streamer,
                               stopping_criteria=StoppingCriteriaList([UntilClosed()]))
        except BaseException as error:  # handed to the reading thread below
            failure.append(error)
            streamer.end()

    if (settings.num_beams or 1) > 1:
        # TextIteratorStreamer takes one sequence at a time; beams are only known at the end
        import torch

        with torch.inference_mode():
            output = model.generate(**inputs, **options)[0]
        if skip_prompt:
            output = output[inputs["input_ids"].shape[-1]:]
        yield tokenizer.decode(output, skip_special_tokens=True)
        return
    thread = threading.Thread(target=run, name="textune-generate", daemon=True)
    thread.start()
    try:
        for piece in streamer:
            if piece:
                yield piece
    finally:
        closed.set()
        thread.join()
    if failure:
        raise failure[0]
