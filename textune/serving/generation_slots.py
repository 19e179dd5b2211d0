"""One served generation: a task's text stream cut at stop strings and counted in tokens, and the slots that bound
how many run at once (shared by the OpenAI-compatible routes and both demos, the chat and the streaming one).

Generation is blocking (transformers' `generate` in the task's `stream`), so the async callers pull pieces through
a worker thread (`pieces`): the event loop stays free for /healthz and other requests, and closing the stream
(a client that went away) closes the task's iterator, which stops `generate`.
"""

from __future__ import annotations

import threading
from typing import AsyncIterator, Iterator

import anyio

from ..inference.generation import GenerationSettings

RETRY_AFTER_S = 1  # a slot frees when a generation ends; clients retry soon rather than queue here


def generates(task) -> bool:
    """Whether a task streams generated text (the protocol's optional `generation`, `with_generation`, `stream`)."""
    return all(hasattr(task, name) for name in ("generation", "with_generation", "stream"))


def takes_chats(task) -> bool:
    """Whether a generating task's inputs may be chats, `{"messages": [{"role", "content"}, ...]}` (`chat = True`)."""
    return generates(task) and bool(getattr(task, "chat", False))


class SlotsFull(Exception):
    """Every generation slot is taken (HTTP 429 with Retry-After)."""

    def __init__(self, limit: int):
        super().__init__(f"{limit} generations are already running, the most this server runs at once "
                         f"(--max_generations {limit}); retry in a moment")
        self.retry_after = RETRY_AFTER_S


class GenerationSlots:
    """At most `limit` generations at once: `take` refuses (SlotsFull) rather than queue, as a full batcher does."""

    def __init__(self, limit: int):
        self.limit = limit
        self.running = 0
        self._lock = threading.Lock()  # released from worker threads and the event loop alike

    def take(self) -> None:
        with self._lock:
            if self.running >= self.limit:
                raise SlotsFull(self.limit)
            self.running += 1

    def give_back(self) -> None:
        with self._lock:
            self.running -= 1


class StopScan:
    """Cuts a growing text at the first of `stops`, holding back a tail that could be the start of one."""

    def __init__(self, stops: list[str]):
        self.stops = [stop for stop in stops if stop]
        self.held = ""
        self.hit = False

    def feed(self, piece: str) -> str:
        """The text that is safe to show after `piece` arrives (all of it once a stop string is found)."""
        self.held += piece
        cuts = [at for stop in self.stops if (at := self.held.find(stop)) >= 0]
        if cuts:
            shown, self.held, self.hit = self.held[:min(cuts)], "", True
            return shown
        keep = max((size for stop in self.stops for size in range(1, len(stop))
                    if self.held.endswith(stop[:size])), default=0)
        shown, self.held = self.held[:len(self.held) - keep], self.held[len(self.held) - keep:]
        return shown

    def flush(self) -> str:
        shown, self.held = self.held, ""
        return shown


class TextGeneration:
    """One input's generation through the served task: pieces of text, then the finish reason and token counts.

    `finish_reason` is "stop" (a stop string, or the model ended its turn) or "length" (`max_new_tokens`
    reached). Counts come from the run's tokenizer: the prompt as the model sees it, the generated text
    re-tokenized (the stream hands out text, not tokens), never more than `max_new_tokens`.
    """

    def __init__(self, service, value, settings: GenerationSettings, stops: list[str] | None = None):
        self.service, self.settings = service, settings
        self.prompt_tokens = service.prompt_tokens(value)
        self._source: Iterator[str] = service.stream(value, settings)
        self._scan = StopScan(stops or [])
        self._generated = ""  # everything the model produced, a stop string and what followed it included
        self.text = ""
        self.finish_reason: str | None = None
        self.completion_tokens = 0

    def next_piece(self) -> str | None:
        """The next piece of text to show, or None once the generation has finished (blocking)."""
        while self.finish_reason is None:
            piece = next(self._source, None)
            shown = self._scan.flush() if piece is None else self._scan.feed(piece)
            self._generated += piece or ""
            if piece is None or self._scan.hit:
                self._finish()
            if shown:
                self.text += shown
                return shown
        return None

    def run(self) -> str:
        """The whole text (blocking)."""
        while self.next_piece() is not None:
            pass
        return self.text

    def close(self) -> None:
        """Stop generating (the task's stream stops `generate` when closed); a finished generation is unchanged."""
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def _finish(self) -> None:
        self.close()
        self.completion_tokens = self.service.count_tokens(self._generated)
        limit = self.settings.max_new_tokens
        if limit is not None:  # re-tokenized text can count more than `generate` made (bytes of a broken character)
            self.completion_tokens = min(self.completion_tokens, limit)
        at_limit = limit is not None and self.completion_tokens >= limit
        self.finish_reason = "length" if at_limit and not self._scan.hit else "stop"

    @property
    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


async def pieces(generation: TextGeneration) -> AsyncIterator[str]:
    """The generation's pieces, each produced in a worker thread; leaving early (a client disconnected, the
    response was cancelled) closes the generation, which stops the model."""
    try:
        while (piece := await anyio.to_thread.run_sync(generation.next_piece)) is not None:
            yield piece
    finally:
        with anyio.CancelScope(shield=True):  # cancelled or not, the model must stop before the slot frees
            await anyio.to_thread.run_sync(generation.close)


async def run_generation(generation: TextGeneration) -> str:
    """The whole text, generated in a worker thread."""
    async for _ in pieces(generation):
        pass
    return generation.text
