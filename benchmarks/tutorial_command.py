"""Benchmark: the tutorial's run_classification.py command, run through textune on the shared disaster tweets.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/tutorial_command.py [--data ../shared/data/disaster-tweets] [--model minilm]

Prints wall time, training samples/s, validation accuracy and F1, and the machine, as a Markdown row
for docs/benchmarks.md. Exits 0 with a message when the shared data is absent.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--epochs", default="1")
    parser.add_argument("--learning_rate", default="2e-5", help="The tutorial's value; others show headroom.")
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        print(f"skipped: no disaster tweets at {args.data}")
        return 0
    from textune.cli import main as textune

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "experiments"
        argv = [
            "train", "--model_name_or_path", args.model, "--train_file", f"{args.data}/train.csv",
            "--validation_file", f"{args.data}/val.csv", "--test_file", f"{args.data}/test.csv",
            "--shuffle_train_dataset", "true", "--metric_name", "accuracy", "--text_column_name", "text",
            "--text_column_delimiter", "\\n", "--label_column_name", "target", "--do_train", "yes", "--do_eval", "yes",
            "--do_predict", "yes", "--max_seq_length", "512", "--per_device_train_batch_size", "32",
            "--learning_rate", args.learning_rate, "--num_train_epochs", args.epochs, "--output_dir", str(out),
        ]
        start = time.perf_counter()
        code = textune(argv)
        wall = time.perf_counter() - start
        if code != 0:
            return code
        results = json.loads((out / "all_results.json").read_text())
        import pandas as pd

        predictions = len(pd.read_csv(out / "predictions.csv"))
    row = {
        "wall_s": round(wall, 1),
        "train_samples_per_s": round(results["train_samples_per_second"], 1),
        "train_runtime_s": round(results["train_runtime"], 1),
        "eval_accuracy": round(results["eval_accuracy"], 4),
        "eval_f1": round(results["eval_f1"], 4),
        "predictions": predictions,
        "machine": machine(),
    }
    print(json.dumps(row, indent=2))
    print(f"| tutorial command, {args.model}, {args.epochs} epoch, lr {args.learning_rate} | {row['wall_s']} | {row['train_samples_per_s']} | "
          f"{row['eval_accuracy']} | {row['eval_f1']} | {row['machine']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
