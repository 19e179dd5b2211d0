"""Benchmark: extension points on the shared disaster tweets with the packaged MiniLM, same seed and epochs.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/plugins.py [--variants default,class_weights_auto,mean_pool] [--data DIR]

Each variant fine-tunes 1 epoch (batch 32, lr 5e-5, seed 42) and reports validation accuracy and F1
(positive class), so `--class_weights auto` and a custom head are compared with the default in one run.
Exits 0 with a message when the shared data is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_command import DEFAULT_DATA, machine  # noqa: E402

VARIANTS = {
    "default": [],
    "class_weights_auto": ["--class_weights", "auto"],
    "focal": ["--loss", "focal"],
    "mean_pool": ["--head", "mean_pool"],
    "mlp": ["--head", "mlp"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--variants", default="default,class_weights_auto,mean_pool")
    parser.add_argument("--model", default="minilm")
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        print(f"skipped: no disaster tweets at {args.data}")
        return 0
    from textune.cli import main as textune

    rows = []
    for name in args.variants.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            argv = ["train", "--model_name_or_path", args.model, "--train_file", f"{args.data}/train.csv",
                    "--validation_file", f"{args.data}/val.csv", "--label_column_name", "target",
                    "--num_train_epochs", "1", "--per_device_train_batch_size", "32", "--learning_rate", "5e-5",
                    "--seed", "42", "--do_train", "--do_eval", "--output_dir", tmp, *VARIANTS[name]]
            start = time.perf_counter()
            if textune(argv) != 0:
                return 1
            results = json.loads((Path(tmp) / "all_results.json").read_text())
        rows.append({"variant": name, "wall_s": round(time.perf_counter() - start, 1),
                     "eval_accuracy": round(results["eval_accuracy"], 4), "eval_f1": round(results["eval_f1"], 4),
                     "eval_precision": round(results["eval_precision"], 4),
                     "eval_recall": round(results["eval_recall"], 4)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\nmachine: {machine()}\n")
    print("| variant | accuracy | F1 | precision | recall | wall s |\n| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['variant']} | {row['eval_accuracy']} | {row['eval_f1']} | {row['eval_precision']} | "
              f"{row['eval_recall']} | {row['wall_s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
