"""Dynamic batching: concurrent requests are queued, grouped into one forward pass, and answered separately.

One worker task owns the model. While it runs a batch in a thread, new requests queue up; the next batch takes
as many as fit in `max_batch_size`. Under load (the previous batch served several requests) a batch that is not
full waits at most `max_wait_s` for more; an idle server runs a lone request at once, adding no latency.
The queue is bounded in inputs: past `max_queue`, `submit` raises `QueueFull` at once (the API answers 429)
instead of growing. A request waits at most `timeout_s` (`RequestTimeout`, the API answers 504), and a batch
whose forward pass fails is retried one request at a time, so only the request that caused it fails.
Requests submitted with different `key`s (e.g. generation parameters) never share a batch: each batch is run with
its requests' key.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Generic, Hashable, TypeVar

logger = logging.getLogger(__name__)

Result = TypeVar("Result")


class QueueFull(Exception):
    """The server already holds `limit` inputs; the caller should retry after `retry_after` seconds."""

    def __init__(self, pending: int, incoming: int, limit: int, retry_after: int):
        super().__init__(f"server busy: {pending} inputs queued, {incoming} more would exceed the queue limit "
                         f"of {limit} (--max_queue); retry in {retry_after} s")
        self.limit = limit
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The server is draining for shutdown and takes no new work."""


class RequestTimeout(Exception):
    """A request's results did not come within the batcher's `timeout_s` (the forward pass is slow or hung)."""


@dataclass
class _Job:
    inputs: list
    future: asyncio.Future
    key: Hashable = None
    timed_out: bool = False

    def expire(self) -> None:
        if not self.future.done():
            self.timed_out = True
            self.future.cancel()  # a queued job is then skipped, a running one's result dropped


@dataclass
class BatchStats:
    """Counters for /readyz and the benchmark: how many batches ran and how full they were."""

    batches: int = 0
    inputs: int = 0
    requests: int = 0
    rejected: int = 0

    @property
    def mean_batch_size(self) -> float:
        return self.inputs / self.batches if self.batches else 0.0


class MicroBatcher(Generic[Result]):
    """Runs `predict(inputs) -> results` (one result per input) on batches formed from concurrent `submit` calls.

    Args:
        predict: Blocking function; it runs in one dedicated thread, never two batches at once. Called as
            `predict(inputs)` for requests submitted without a key, `predict(inputs, key)` for the others.
        max_batch_size: Most inputs per call of `predict` (a single larger request still runs whole).
        max_wait_s: Under load, how long a batch that is not full waits for more requests.
        max_queue: Most inputs queued or running; beyond, `submit` raises `QueueFull`.
        enabled: False runs each request alone: the baseline batching is measured against.
        timeout_s: Most seconds `submit` waits for its results (queued and running); None waits forever.

    Example:
        >>> batcher = MicroBatcher(predictor_fn, max_batch_size=32, max_wait_s=0.005)
        >>> await batcher.start()
        >>> results = await batcher.submit(["Forest fire near La Ronge"])
        >>> await batcher.stop()
    """

    def __init__(self, predict: Callable[[list[str]], list[Result]], *, max_batch_size: int = 32,
                 max_wait_s: float = 0.005, max_queue: int = 512, enabled: bool = True,
                 timeout_s: float | None = None):
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.enabled = enabled
        self.timeout_s = timeout_s
        self.stats = BatchStats()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._queued_inputs = 0
        self._pending_inputs = 0  # queued + running: what max_queue bounds
        self._seconds_per_input = 0.01  # running estimate, only used for Retry-After
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._batch_started: float | None = None  # monotonic start of the batch running now
        # Waiting for company pays off only under load: after a batch of one request, the next runs at once.
        self._last_batch_requests = 0

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done() and not self._closing

    @property
    def pending(self) -> int:
        return self._pending_inputs

    @property
    def busy_s(self) -> float:
        """Seconds the worker has spent on the batch it runs now (0 when idle): a hung model shows here."""
        return 0.0 if self._batch_started is None else time.monotonic() - self._batch_started

    async def start(self) -> None:
        """Start the worker on the running event loop."""
        self._closing = False
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textune-predict")
        self._worker = asyncio.create_task(self._run(), name="textune-batcher")

    async def stop(self) -> None:
        """Refuse new work, finish every queued request, then stop the worker."""
        if self._worker is None:
            return
        self._closing = True
        self._wakeup.set()
        await self._worker
        self._worker = None
        self._executor.shutdown(wait=True)

    async def submit(self, inputs: list, key: Hashable = None) -> list[Result]:
        """Queue `inputs` and wait (at most `timeout_s`) for their results, in order.

        Args:
            inputs: The request's inputs.
            key: How they are to be predicted (None: the default way); only requests of equal keys share a batch.

        Raises:
            QueueFull: Accepting them would exceed `max_queue`.
            ShuttingDown: `stop` was called, or `start` never was.
            RequestTimeout: The results did not come within the timeout (the request is dropped if still queued).
        """
        if not self.running:
            raise ShuttingDown("the server is shutting down")
        if self._pending_inputs + len(inputs) > self.max_queue:
            self.stats.rejected += 1
            raise QueueFull(self._pending_inputs, len(inputs), self.max_queue, self.retry_after())
        loop = asyncio.get_running_loop()
        job = _Job(list(inputs), loop.create_future(), key)
        self._jobs.append(job)
        self._queued_inputs += len(job.inputs)
        self._pending_inputs += len(job.inputs)
        self._wakeup.set()
        # A timer on the future rather than asyncio.wait_for, which wraps every request in a task of its own
        # (measured: that halves the batcher's requests per second).
        timer = loop.call_later(self.timeout_s, job.expire) if self.timeout_s is not None else None
        try:
            return await job.future
        except asyncio.CancelledError:
            if not job.timed_out:
                raise  # the caller itself was cancelled (a client that went away)
            raise RequestTimeout(f"no result within {self.timeout_s:g} s (--request_timeout_s); the model is slow or "
                                 f"stuck, retry later or with fewer inputs") from None
        finally:
            if timer is not None:
                timer.cancel()

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained, at the recently measured speed (at least 1)."""
        return max(1, math.ceil(self._pending_inputs * self._seconds_per_input))

    # -- worker -----------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            while not self._jobs:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.enabled and self._last_batch_requests > 1:
                await self._gather()
            batch = self._take_batch()
            if batch:
                await self._execute(batch)

    async def _gather(self) -> None:
        """Wait up to max_wait_s for the batch to fill; return early once it is full or on shutdown."""
        deadline = time.monotonic() + self.max_wait_s
        while self._queued_inputs < self.max_batch_size and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:  # an alias of TimeoutError from Python 3.11
                return

    def _take_batch(self) -> list[_Job]:
        """The oldest queued request and, batching, the next ones of the same key that fit; requests of other keys
        keep their places in the queue."""
        batch, size, left = [], 0, collections.deque()
        while self._jobs:
            job = self._jobs[0]
            if batch and (not self.enabled or size + len(job.inputs) > self.max_batch_size):
                break
            self._jobs.popleft()
            if batch and job.key != batch[0].key:
                left.append(job)
                continue
            self._queued_inputs -= len(job.inputs)
            if job.future.cancelled():  # the client went away while queued: skip its work
                self._pending_inputs -= len(job.inputs)
                continue
            batch.append(job)
            size += len(job.inputs)
        self._jobs.extendleft(reversed(left))
        return batch

    async def _execute(self, batch: list[_Job]) -> None:
        inputs = [value for job in batch for value in job.inputs]
        started = self._batch_started = time.monotonic()
        try:
            await self._run_jobs(batch)
        finally:
            self._batch_started = None
            self._pending_inputs -= len(inputs)
            elapsed = time.monotonic() - started
            self._seconds_per_input = 0.8 * self._seconds_per_input + 0.2 * elapsed / max(1, len(inputs))
            self.stats.batches += 1
            self.stats.inputs += len(inputs)
            self.stats.requests += len(batch)
            self._last_batch_requests = len(batch)

    async def _run_jobs(self, batch: list[_Job]) -> None:
        """One forward pass for the batch; if it fails, one per request, so only the culprit's request fails."""
        inputs = [value for job in batch for value in job.inputs]
        try:
            results = await self._predict(inputs, batch[0].key)
        except Exception as error:  # the worker carries on whatever the model raised
            if len(batch) > 1:
                logger.warning("prediction failed for a batch of %d requests (%s); retrying them one by one",
                               len(batch), error)
                for job in batch:
                    if not job.future.done():  # a request that timed out meanwhile is not retried
                        await self._run_jobs([job])
                return
            logger.exception("prediction failed for a request of %d inputs", len(inputs))
            if not batch[0].future.done():
                batch[0].future.set_exception(error)
            return
        start = 0
        for job in batch:
            if not job.future.done():
                job.future.set_result(results[start:start + len(job.inputs)])
            start += len(job.inputs)

    async def _predict(self, inputs: list, key: Hashable = None) -> list[Result]:
        arguments = (inputs,) if key is None else (inputs, key)
        results = await asyncio.get_running_loop().run_in_executor(self._executor, self.predict, *arguments)
        if len(results) != len(inputs):
            raise RuntimeError(f"predict returned {len(results)} results for {len(inputs)} inputs")
        return results
