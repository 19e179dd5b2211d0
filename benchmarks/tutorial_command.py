"""Benchmark: the tutorial's run_classification.py command, run through textune on the shared disaster tweets.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/tutorial_command.py [--data ../shared/data/disaster-tweets] [--model minilm]
        [--seeds 42 1 2 3] [any other `textune train` flag, e.g. --head_learning_rate 2e-5]

Prints wall time, training samples/s, validation accuracy and F1 per seed (and their mean over several seeds),
and the machine, as Markdown rows for docs/benchmarks.md. Exits 0 with a message when the shared data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "disaster-tweets"
DOCS = ROOT / "docs" / "benchmarks.md"


def markdown_text(lines: list[str]) -> str:
    """A section's lines as docs/benchmarks.md holds them: prose wrapped at 110 columns, table rows left whole."""
    import textwrap

    return "\n".join(textwrap.fill(line, 110) if len(line) > 110 and not line.startswith("|") else line
                     for line in lines)


def write_section(section: str, text: str, path: Path = DOCS) -> None:
    """Replace (or append) one benchmark's `## ...` section of docs/benchmarks.md, leaving the others as they are.

    `text` starts with the `section` heading line; the section runs to the next `## ` heading.
    """
    import re

    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.M | re.S)
    updated = pattern.sub(lambda _: text, current) if pattern.search(current) else current.rstrip("\n") + "\n\n" + text
    path.write_text(updated.rstrip("\n") + "\n")
    print(f"wrote the {section!r} section of {path}")


def publish(section: str, text: str, write_docs: bool) -> int:
    """A benchmark's end: print its Markdown and, with --write-docs, put it in its section of docs/benchmarks.md."""
    print(text)
    if write_docs:
        write_section(section, text)
    return 0


def load_average() -> float:
    """The 1-minute load average, printed with results so contended runs can be told apart (nan if unknown)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def tutorial_flags(learning_rate: str = "2e-5", epochs: str = "1", seed: int = 42) -> list[str]:
    """The tutorial's columns, metric, length cap, batch size and schedule (files, order and output come apart)."""
    return ["--metric_name", "accuracy", "--text_column_name", "text", "--text_column_delimiter", "\\n",
            "--label_column_name", "target", "--max_seq_length", "512", "--per_device_train_batch_size", "32",
            "--learning_rate", learning_rate, "--num_train_epochs", epochs, "--seed", str(seed)]


def run_once(args, seed: int, extra: list[str]) -> dict | None:
    """One `textune train` run of the tutorial's command; its wall time and metrics (None if it failed)."""
    from textune.cli import main as textune

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "experiments"
        argv = [
            "train", "--model_name_or_path", args.model, "--train_file", f"{args.data}/train.csv",
            "--validation_file", f"{args.data}/val.csv", "--test_file", f"{args.data}/test.csv",
            "--shuffle_train_dataset", "true", "--do_train", "yes", "--do_eval", "yes", "--do_predict", "yes",
            "--output_dir", str(out), *tutorial_flags(args.learning_rate, args.epochs, seed), *extra,
        ]
        start = time.perf_counter()
        code = textune(argv)
        wall = time.perf_counter() - start
        if code != 0:
            return None
        results = json.loads((out / "all_results.json").read_text())
        import pandas as pd

        predictions = len(pd.read_csv(out / "predictions.csv"))
    return {
        "seed": seed,
        "wall_s": round(wall, 1),
        "train_samples_per_s": round(results["train_samples_per_second"], 1),
        "train_runtime_s": round(results["train_runtime"], 1),
        "eval_accuracy": round(results["eval_accuracy"], 4),
        "eval_f1": round(results["eval_f1"], 4),
        "predictions": predictions,
        "load_average": round(load_average(), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--epochs", default="1")
    parser.add_argument("--learning_rate", default="2e-5", help="The tutorial's value; others show headroom.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42],
                        help="Run once per seed (42 is Trainer's default): one run's metrics move by about a point "
                             "with the seed on 761 validation rows, so the mean says more.")
    args, extra = parser.parse_known_args()  # anything else goes to `textune train`, e.g. --head_learning_rate 2e-5
    if not (args.data / "train.csv").exists():
        print(f"skipped: no disaster tweets at {args.data}")
        return 0
    rows = []
    for seed in args.seeds:
        row = run_once(args, seed, extra)
        if row is None:
            return 1
        print(json.dumps(row), flush=True)
        rows.append(row)
    flags = f"lr {args.learning_rate}" + (f", {' '.join(extra)}" if extra else "")
    for row in rows:
        print(f"| tutorial command, {args.model}, {args.epochs} epoch, {flags}, seed {row['seed']} | {row['wall_s']} | "
              f"{row['train_samples_per_s']} | {row['eval_accuracy']} | {row['eval_f1']} |")
    if len(rows) > 1:
        import statistics

        accuracy = [row["eval_accuracy"] for row in rows]
        f1 = [row["eval_f1"] for row in rows]
        print(f"| mean of {len(rows)} seeds ({flags}) | | | {statistics.mean(accuracy):.4f} "
              f"(sd {statistics.stdev(accuracy):.4f}) | {statistics.mean(f1):.4f} (sd {statistics.stdev(f1):.4f}) |")
    print(f"machine: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
