"""Benchmark: textune's training throughput and accuracy against plain transformers Trainer, measured in one run.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/training_speed.py                 # throughput on 1,024 rows, MFU
    .venv/bin/python benchmarks/training_speed.py --accuracy      # plus the full 1-epoch accuracy parity
    .venv/bin/python benchmarks/training_speed.py --accuracy --write-docs   # also update docs/benchmarks.md

Three ways to fine-tune the packaged MiniLM on the same first 1,024 rows of the shared disaster tweets,
1 epoch, batch 32, lr 2e-5, seed 42:
    tutorial  plain Trainer as the tutorial runs it: every tweet padded to 512 tokens, default collator, fp32.
              Every step costs the same (32 x 512 tokens), so it runs --tutorial_steps steps, not 32.
    plain     a well-configured plain Trainer: dynamic padding (DataCollatorWithPadding), fp32.
    textune   `textune train` with the tutorial's flags and nothing else: textune's defaults decide the rest.
Throughput is Trainer's own train_samples_per_second for each. FLOP utilisation divides achieved FLOP/s by the
peak matmul FLOP/s measured here for the dtype used: MFU counts the FLOPs on real tokens, HFU also counts padding.
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
from tutorial_command import DEFAULT_DATA, machine, tutorial_flags, write_section  # noqa: E402

SECTION = "## Training speed (`benchmarks/training_speed.py`)"

ROWS = 1024


class StepRecorder:
    """Records the shape and real-token count of every training batch, to count the FLOPs each run did."""

    def __init__(self):
        self.batches: list[tuple[int, int, list[int]]] = []  # (batch, padded length, real lengths)

    def install(self):
        from transformers import Trainer

        original = Trainer.training_step
        recorder = self

        def training_step(trainer, model, inputs, *args, **kwargs):
            mask = inputs["attention_mask"]
            recorder.batches.append((mask.shape[0], mask.shape[1], mask.sum(dim=1).tolist()))
            return original(trainer, model, inputs, *args, **kwargs)

        Trainer.training_step = training_step
        return self

    def reset(self):
        self.batches = []


def encoder_flops(config, length: int) -> float:
    """Forward FLOPs of one sequence of `length` tokens through a BERT encoder (matmuls only)."""
    d, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    dense = 2 * length * (4 * d * d + 2 * d * ff)  # QKV, output projection, two feed-forward matmuls
    attention = 2 * 2 * length * length * d  # QK^T and attention x V
    return layers * (dense + attention)


def training_flops(config, batches, padded: bool) -> float:
    """Forward + backward (3x forward) FLOPs of the recorded batches, on real tokens or on padded shapes."""
    total = 0.0
    for size, padded_length, lengths in batches:
        if padded:
            total += size * encoder_flops(config, padded_length)
        else:
            total += sum(encoder_flops(config, length) for length in lengths)
    return 3 * total


def peak_matmul_flops(dtype_name: str, n: int = 2048, repeats: int = 5) -> float:
    """Measured FLOP/s of an n x n matmul in `dtype_name`: the denominator of FLOP utilisation."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def load_rows(data: Path, rows: int | None):
    import pandas as pd

    train = pd.read_csv(data / "train.csv")
    return train if rows is None else train.head(rows)


def plain_trainer(model_path: str, train, validation, *, pad_to_max: bool, max_steps: int = -1) -> dict:
    """Fine-tune with transformers alone, configured as the tutorial (pad_to_max) or well (dynamic padding)."""
    import numpy as np
    from datasets import Dataset
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, default_data_collator, set_seed)

    set_seed(42)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    padding = "max_length" if pad_to_max else False

    def encode(frame):
        features = tokenizer(frame["text"].tolist(), truncation=True, max_length=512, padding=padding)
        return Dataset.from_dict(dict(features, labels=frame["target"].tolist()))

    def compute_metrics(prediction):
        predicted = np.argmax(prediction.predictions, axis=-1)
        return {"accuracy": accuracy_score(prediction.label_ids, predicted),
                "f1": f1_score(prediction.label_ids, predicted)}

    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=32, learning_rate=2e-5,
                                 num_train_epochs=1, max_steps=max_steps, seed=42, save_strategy="no",
                                 report_to="none", logging_strategy="no", dataloader_pin_memory=False,
                                 disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=encode(train),
                          eval_dataset=None if validation is None else encode(validation),
                          data_collator=default_data_collator if pad_to_max else DataCollatorWithPadding(tokenizer),
                          compute_metrics=compute_metrics)
        metrics = trainer.train().metrics
        if validation is not None:
            metrics |= trainer.evaluate()
    return metrics


def textune_train(data: Path, rows: int | None, evaluate: bool) -> dict:
    """`textune train` with the tutorial's flags on the same rows: its defaults decide everything else."""
    from textune.cli import main as textune

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", "--model_name_or_path", "minilm", "--train_file", str(data / "train.csv"),
                "--validation_file", str(data / "val.csv"), "--do_train", "yes", "--do_eval", str(evaluate),
                "--do_predict", "no", "--output_dir", f"{tmp}/run", "--disable_tqdm", "true", *tutorial_flags()]
        if rows is not None:
            argv += ["--max_train_samples", str(rows)]
        code = textune(argv)
        if code != 0:
            raise SystemExit(f"textune train failed with exit code {code}")
        return json.loads((Path(tmp) / "run" / "all_results.json").read_text())


def throughput(data: Path, model_path: str, tutorial_steps: int) -> list[dict]:
    """Benchmark 1: samples/s and FLOP utilisation of the three configurations on the same 1,024 rows."""
    import torch
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    from textune.training.arguments import TextuneTrainingArguments

    textune_bf16 = TextuneTrainingArguments(output_dir=tempfile.gettempdir()).bf16
    # bf16 is emulated (slowly) on CPUs without native support: a shorter measurement is enough to show it
    from textune.training.hardware import cpu_has_native_bf16

    bf16_size = 2048 if cpu_has_native_bf16() or torch.cuda.is_available() else 512
    peaks = {"float32": peak_matmul_flops("float32"), "bfloat16": peak_matmul_flops("bfloat16", bf16_size, 2)}
    print(f"peak matmul: fp32 {peaks['float32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bfloat16'] / 1e9:.0f} GFLOP/s "
          f"({torch.get_num_threads()} threads)", flush=True)
    recorder = StepRecorder().install()
    train = load_rows(data, ROWS)
    runs = [
        ("tutorial: plain Trainer, pad to 512, fp32", "float32",
         lambda: plain_trainer(model_path, train, None, pad_to_max=True, max_steps=tutorial_steps)),
        ("plain Trainer, dynamic padding, fp32", "float32",
         lambda: plain_trainer(model_path, train, None, pad_to_max=False)),
        (f"textune defaults ({'bf16' if textune_bf16 else 'fp32'})", "bfloat16" if textune_bf16 else "float32",
         lambda: textune_train(data, ROWS, evaluate=False)),
    ]
    rows = []
    for name, dtype, run in runs:
        recorder.reset()
        metrics = run()
        seconds = metrics["train_runtime"]
        samples = sum(size for size, _, _ in recorder.batches)
        rows.append({
            "config": name,
            "samples": samples,
            "train_runtime_s": round(seconds, 1),
            "samples_per_s": round(samples / seconds, 2),
            "padded_tokens_per_sample": round(sum(s * p for s, p, _ in recorder.batches) / samples, 1),
            "mfu": training_flops(config, recorder.batches, padded=False) / seconds / peaks[dtype],
            "hfu": training_flops(config, recorder.batches, padded=True) / seconds / peaks[dtype],
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def accuracy(data: Path, model_path: str) -> list[dict]:
    """Benchmark 3: validation accuracy and F1 after the full 1-epoch run, plain Trainer (dynamic) vs textune."""
    import pandas as pd

    train, validation = load_rows(data, None), pd.read_csv(data / "val.csv")
    plain = plain_trainer(model_path, train, validation, pad_to_max=False)
    ours = textune_train(data, None, evaluate=True)
    rows = [
        {"config": "plain Trainer, dynamic padding, fp32", "samples_per_s": round(plain["train_samples_per_second"], 2),
         "eval_accuracy": round(plain["eval_accuracy"], 4), "eval_f1": round(plain["eval_f1"], 4)},
        {"config": "textune defaults", "samples_per_s": round(ours["train_samples_per_second"], 2),
         "eval_accuracy": round(ours["eval_accuracy"], 4), "eval_f1": round(ours["eval_f1"], 4)},
    ]
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def markdown(speed: list[dict], parity: list[dict] | None, tutorial_steps: int) -> str:
    plain = next(row for row in speed if row["config"].startswith("plain"))
    lines = [
        f"Machine: {machine()}.",
        "",
        f"Throughput: the first {ROWS} rows, 1 epoch, batch 32, lr 2e-5 (the tutorial configuration runs "
        f"{tutorial_steps} steps: its steps all cost the same). Ratios are against the plain Trainer with dynamic "
        "padding, measured in the same run.",
        "",
        "| configuration | samples/s | vs plain (b) | padded tokens/sample | MFU | HFU |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in speed:
        lines.append(f"| {row['config']} | {row['samples_per_s']} | {row['samples_per_s'] / plain['samples_per_s']:.2f}x "
                     f"| {row['padded_tokens_per_sample']} | {row['mfu']:.1%} | {row['hfu']:.1%} |")
    tutorial = speed[0]
    ours = speed[-1]
    lines += ["", f"textune vs the tutorial configuration: {ours['samples_per_s'] / tutorial['samples_per_s']:.1f}x; "
                  f"vs the well-configured plain Trainer: {ours['samples_per_s'] / plain['samples_per_s']:.2f}x."]
    if parity:
        lines += ["", "Accuracy parity: all 5,852 training rows, 1 epoch, the same flags; validation 761 rows.", "",
                  "| configuration | samples/s | accuracy | F1 |", "| --- | --- | --- | --- |"]
        lines += [f"| {row['config']} | {row['samples_per_s']} | {row['eval_accuracy']} | {row['eval_f1']} |"
                  for row in parity]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--tutorial_steps", type=int, default=4)
    parser.add_argument("--accuracy", action="store_true", help="Also run the full 1-epoch accuracy comparison.")
    parser.add_argument("--skip_throughput", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        print(f"skipped: no disaster tweets at {args.data}")
        return 0
    from textune.models.loading import resolve_model

    model_path, _ = resolve_model("minilm")
    speed = [] if args.skip_throughput else throughput(args.data, model_path, args.tutorial_steps)
    parity = accuracy(args.data, model_path) if args.accuracy else None
    text = markdown(speed, parity, args.tutorial_steps) if speed else json.dumps(parity, indent=2)
    print(text)
    if args.write_docs and speed:
        write_section(SECTION, f"{SECTION}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
