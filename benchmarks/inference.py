"""Benchmark: `Predictor` on each inference backend vs transformers' text-classification pipeline.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/textune train --model_name_or_path minilm --train_file ../shared/data/disaster-tweets/train.csv \
        --validation_file ../shared/data/disaster-tweets/val.csv --label_column_name target --output_dir runs/bench
    .venv/bin/python benchmarks/inference.py --run runs/bench --export [--n 2000] [--write-docs]

For each backend (torch fp32, onnx, onnx-int8, and torch-bf16 where the CPU has native bf16) it measures
throughput on `--n` shared disaster tweets (`predictor.predict(texts)`, batch 32, best of `--repeats`) as a
ratio to `pipeline("text-classification", model=RUN, batch_size=32)` measured in the same run (all contenders
loaded at once and timed in turns, so load from other jobs falls on each alike); single-text
latency p50/p99 over `--calls` calls of `predictor.predict([text])`; and validation accuracy and F1 next to
torch fp32's. `--export` first writes the missing ONNX exports into the run folder (int8 with
`--min_agreement 0`, so it is measured whatever its agreement; `--backend auto` still skips it below 99%).
Prints JSON lines and a Markdown table; --write-docs puts the table under `## Inference backends` in
docs/benchmarks.md. Exits 0 with a message when the shared data is absent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_command import DEFAULT_DATA, DOCS, load_average, machine, markdown_text, publish  # noqa: E402  (shared by every benchmark)

SECTION = "## Inference backends"
BATCH_SIZE = 32


def tweets(data: Path, count: int) -> list[str]:
    import pandas as pd

    texts = [str(text) for text in pd.read_csv(data / "train.csv")["text"].dropna().tolist()]
    return (texts * (count // len(texts) + 1))[:count]


class Contender:
    """One way of predicting: a name, a batch call (texts -> anything) and a one-text call."""

    def __init__(self, name: str, batch, one, predictor=None):
        self.name, self.batch, self.one, self.predictor = name, batch, one, predictor
        self.seconds: list[float] = []
        self.latencies: list[float] = []


def pipeline_contender(run_dir: Path) -> Contender | None:
    """The baseline: transformers' pipeline on the run folder (only runs saved as plain transformers models)."""
    import torch
    from transformers import pipeline

    try:
        pipe = pipeline("text-classification", model=str(run_dir), device="cpu")
    except Exception as error:  # a textune head is not a transformers class: no pipeline to compare with
        print(f"no pipeline baseline: the run does not load in transformers ({str(error).splitlines()[0]})")
        return None

    def batch(texts):
        with torch.inference_mode():
            return pipe(texts, batch_size=BATCH_SIZE, truncation=True)

    def one(text):
        with torch.inference_mode():
            return pipe(text, truncation=True)

    return Contender("transformers pipeline (baseline)", batch, one)


def predictor_contender(run_dir: Path, backend: str, batch_size: int) -> Contender:
    from textune.inference.prediction import Predictor

    predictor = Predictor.from_run(run_dir, batch_size=batch_size, backend=backend)
    return Contender(backend, predictor.predict, lambda text: predictor.predict([text]), predictor)


def measure(contenders: list[Contender], texts: list[str], repeats: int, calls: int) -> None:
    """Time every contender in turn, round after round, so load from other jobs falls on all of them alike.

    Throughput: `repeats` timed passes over `texts` each (the best counts), after a warm-up on a slice.
    Latency: `calls` one-text calls each, a different tweet per call, after 10 warm-up calls.
    """
    for contender in contenders:
        contender.batch(texts[:BATCH_SIZE * 2])
        for text in texts[:10]:
            contender.one(text)
    for _ in range(repeats):
        for contender in contenders:
            start = time.perf_counter()
            contender.batch(texts)
            contender.seconds.append(time.perf_counter() - start)
    for i in range(calls):
        for contender in contenders:
            start = time.perf_counter()
            contender.one(texts[i % len(texts)])
            contender.latencies.append((time.perf_counter() - start) * 1000)


def timing_row(contender: Contender, count: int) -> dict:
    times = sorted(contender.latencies)
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    return {"backend": contender.name, "texts_per_s": round(count / min(contender.seconds), 1),
            "p50_ms": round(statistics.median(times), 2), "p99_ms": round(p99, 2)}


def accuracy_row(predictor, validation) -> dict:
    """Validation accuracy and F1, and the predicted labels (for agreement with torch fp32)."""
    records = predictor.records(validation)
    metrics = predictor.task.score(validation, records)
    return {"accuracy": round(metrics["accuracy"], 4), "f1": round(metrics["f1"], 4),
            "labels": records["prediction"].tolist()}


def validation_frame(data: Path, run_dir: Path):
    """The shared validation file in the run's columns, without rows a run cannot score (empty text or label)."""
    import pandas as pd

    from textune.run_folder import read_run_file
    from textune.tasks import task_from_dict

    columns = task_from_dict(read_run_file(run_dir)["task"]).columns
    frame = pd.read_csv(data / "val.csv")
    if not set(columns.text + [columns.label]) <= set(frame.columns):
        print(f"no accuracy columns: {data / 'val.csv'} lacks the run's columns {columns.text + [columns.label]}")
        return None
    return frame.dropna(subset=columns.text + [columns.label]).reset_index(drop=True)


def available_backends(run_dir: Path, requested: list[str] | None) -> list[str]:
    from textune.inference.backends import ONNX_FILES
    from textune.training.hardware import cpu_has_native_bf16

    if requested:
        return sorted(requested, key=lambda name: name != "torch")  # torch first: the others' agreement needs it
    names = ["torch"]
    names += [name for name, quantize in (("onnx", None), ("onnx-int8", "int8"))
              if (run_dir / ONNX_FILES[quantize]).exists()]
    if cpu_has_native_bf16():
        names.append("torch-bf16")
    return names


def export_missing(run_dir: Path) -> None:
    from textune.inference.backends import ONNX_FILES
    from textune.inference.export import export_onnx

    for quantize in (None, "int8"):
        if not (run_dir / ONNX_FILES[quantize]).exists():
            result = export_onnx(run_dir, quantize=quantize, min_agreement=0.0)
            print(json.dumps({"exported": str(result.model), "agreement": result.parity["agreement"],
                              "max_abs_diff": result.parity["max_abs_diff"]}), flush=True)


def markdown(rows: list[dict], args, host: str, load: tuple[float, float]) -> str:
    baseline = next((row for row in rows if "pipeline" in row["backend"]), None)
    reference = next((row for row in rows if row["backend"] == "torch"), None)
    lines = [
        SECTION, "",
        "```", ".venv/bin/python benchmarks/inference.py --run RUN --export --write-docs"
        + (f" --threads {args.threads}" if args.threads else "")
        + (f" --batch-size {args.batch_size}" if args.batch_size != BATCH_SIZE else ""), "```", "",
        "RUN: a run folder (the packaged MiniLM fine-tuned on the shared disaster tweets). Throughput: "
        f"{args.n} training tweets through `predictor.predict(texts)` (batch {args.batch_size}, sorted by length), "
        f"best of {args.repeats}, against `pipeline(\"text-classification\", model=RUN, batch_size={BATCH_SIZE})` "
        "in the same process, every contender timed in turn so that other load falls on all alike. Latency: "
        f"{args.calls} calls of `predict([text])`, one tweet each. Accuracy and F1 on the {args.validation_rows} "
        "validation tweets; agreement: share of validation labels equal to torch fp32's.",
        "",
        "| backend | texts/s | vs pipeline | p50 ms (1 text) | p99 ms | accuracy | F1 | F1 vs fp32 (points) | "
        "agreement |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        ratio = f"{row['texts_per_s'] / baseline['texts_per_s']:.2f}x" if baseline else ""
        delta = (f"{100 * (row['f1'] - reference['f1']):+.2f}" if reference and "f1" in row and "f1" in reference
                 and row is not reference else "")
        lines.append(f"| {row['backend']} | {row['texts_per_s']} | {ratio} | {row['p50_ms']} | {row['p99_ms']} | "
                     f"{row.get('accuracy', '')} | {row.get('f1', '')} | {delta} | {row.get('agreement', '')} |")
    lines += ["", "Targets: at least 3x the pipeline's texts/s, F1 at most 0.5 points below torch fp32, single-text "
                  "p50 at most 5 ms.", "",
              f"Machine: {host}; load average {load[0]:.2f} before and {load[1]:.2f} after (other jobs on the "
              "cores show up here).", ""]
    return markdown_text(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="A run folder of `textune train` (see the usage).")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n", type=int, default=2000, help="Tweets for the throughput measurement.")
    parser.add_argument("--calls", type=int, default=200, help="Single-text calls for the latency percentiles.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed throughput passes per backend (best counts).")
    parser.add_argument("--backends", nargs="+", default=None, help="Default: torch and every exported or native one.")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="Predictor's texts per forward pass "
                        "(the pipeline keeps 32, the issue's baseline).")
    parser.add_argument("--threads", type=int, default=0, help="Threads for every backend (0: torch's default).")
    parser.add_argument("--export", action="store_true", help="Export the missing ONNX models into --run first.")
    parser.add_argument("--no-pipeline", action="store_true", help="Skip the transformers pipeline baseline.")
    parser.add_argument("--write-docs", action="store_true", help=f"Write the table into {DOCS.relative_to(ROOT)}.")
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        print(f"skipped: no disaster tweets at {args.data}")
        return 0
    if min(args.n, args.calls, args.repeats, args.batch_size) < 1:
        parser.error("--n, --calls, --repeats and --batch-size must be at least 1")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)  # ONNX Runtime sessions take torch's thread count too
    if args.export:
        export_missing(args.run)
    texts = tweets(args.data, args.n)
    validation = validation_frame(args.data, args.run)
    args.validation_rows = 0 if validation is None else len(validation)
    contenders = []
    if not args.no_pipeline and (baseline := pipeline_contender(args.run)) is not None:
        contenders.append(baseline)
    contenders += [predictor_contender(args.run, name, args.batch_size)
                   for name in available_backends(args.run, args.backends)]
    load_before = load_average()
    measure(contenders, texts, args.repeats, args.calls)
    rows, reference = [], None
    for contender in contenders:
        row = timing_row(contender, len(texts))
        if contender.predictor is not None and validation is not None:
            row |= accuracy_row(contender.predictor, validation)
            if contender.name == "torch":  # first among the backends: the others' agreement is with it
                reference = row
            elif reference is not None:
                same = sum(a == b for a, b in zip(row["labels"], reference["labels"]))
                row["agreement"] = round(same / len(row["labels"]), 4)
        print(json.dumps({key: value for key, value in row.items() if key != "labels"}), flush=True)
        rows.append(row)
    text = markdown(rows, args, machine(), (load_before, load_average()))
    return publish(SECTION, text, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
