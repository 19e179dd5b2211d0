"""Benchmark: LoRA (`--use_peft`) against full fine-tuning of the packaged MiniLM, measured in one run.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/lora.py                  # 1,000 demo tweets, 1 epoch each way, 500 to validate
    .venv/bin/python benchmarks/lora.py --rows 2000 --write-docs

Both runs are a bare `textune train` (the packaged disaster tweets and the demo's flags: 1 epoch, batch 32) on the
first `--rows` training rows, training and evaluation only; LoRA adds `--use_peft` (r 16, alpha 32, all-linear) and
its usual higher learning rate (`--lora_learning_rate`, default 5e-4; full fine-tuning keeps the demo's 5e-5).
Each runs in a process of its own, so its peak RSS (ru_maxrss) is its own. Reported: the share of parameters that
train, Trainer's train_samples_per_second, peak RSS, and validation accuracy and F1 (on `--eval_rows` of the 10% of
the demo data held out).
The two runs are timed one after the other: compare them on a quiet machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_command import load_average, machine, markdown_text, publish  # noqa: E402  (shared by every benchmark)

SECTION = "## LoRA (`benchmarks/lora.py`)"


def one_run(mode: str, rows: int, eval_rows: int, lora_learning_rate: float) -> dict:
    """Train once in this process (`--one MODE`) and return what it measured."""
    import textune.training.train as flow
    from textune.cli import main as textune

    counts = {}
    transform = flow.apply_model_transforms

    def counted(model, model_args, training_args):
        model = transform(model, model_args, training_args)
        counts["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        counts["total"] = sum(p.numel() for p in model.parameters())
        return model

    flow.apply_model_transforms = counted
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", "--max_train_samples", str(rows), "--max_eval_samples", str(eval_rows), "--do_train",
                "--do_eval", "--inference_backends", "none",
                "--disable_tqdm", "true", "--output_dir", f"{tmp}/run"]
        if mode == "lora":
            argv += ["--use_peft", "--learning_rate", str(lora_learning_rate)]
        if textune(argv) != 0:
            raise SystemExit(f"textune train ({mode}) failed")
        metrics = json.loads((Path(tmp) / "run" / "all_results.json").read_text())
    return {"mode": mode, "trainable": counts["trainable"], "total": counts["total"],
            "train_samples_per_s": metrics["train_samples_per_second"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "accuracy": round(metrics["eval_accuracy"], 4), "f1": round(metrics["eval_f1"], 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="Training rows (--max_train_samples).")
    parser.add_argument("--eval_rows", type=int, default=500, help="Validation rows (--max_eval_samples).")
    parser.add_argument("--lora_learning_rate", type=float, default=5e-4)
    parser.add_argument("--one", choices=["full", "lora"], help=argparse.SUPPRESS)
    parser.add_argument("--write-docs", action="store_true", help="Update docs/benchmarks.md.")
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one_run(args.one, args.rows, args.eval_rows, args.lora_learning_rate)))
        return 0
    results = []
    for mode in ("full", "lora"):
        done = subprocess.run([sys.executable, __file__, "--one", mode, "--rows", str(args.rows), "--eval_rows",
                               str(args.eval_rows), "--lora_learning_rate", str(args.lora_learning_rate)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the {mode} run failed:\n{done.stderr[-3000:]}")
        output = done.stdout
        results.append(json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:]))
        print(json.dumps(results[-1]))
    lines = [SECTION, "",
             f"`python benchmarks/lora.py --rows {args.rows} --eval_rows {args.eval_rows}`: the packaged MiniLM on "
             f"the first {args.rows} demo tweets, 1 epoch, batch 32, validation on {args.eval_rows} held-out rows, "
             "each run in its own process; full fine-tuning at the demo's lr 5e-5, "
             f"LoRA (r 16, alpha 32, all-linear, head trained fully) at {args.lora_learning_rate:g}. "
             f"Machine: {machine()}; load average {load_average():.1f}.", "",
             "| run | trainable parameters | train samples/s | peak RSS (MB) | val accuracy | val F1 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in results:
        share = 100 * row["trainable"] / row["total"]
        lines.append(f"| {row['mode']} | {row['trainable']:,} of {row['total']:,} ({share:.2f}%) | "
                     f"{row['train_samples_per_s']:.1f} | {row['peak_rss_mb']} | {row['accuracy']:.4f} | "
                     f"{row['f1']:.4f} |")
    return publish(SECTION, markdown_text(lines), args.write_docs)


if __name__ == "__main__":
    raise SystemExit(main())
