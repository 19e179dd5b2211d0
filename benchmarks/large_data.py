"""Benchmark: `textune predict` on 10,000 and 1,000,000 rows: wall time, rows/s and peak memory (RSS).

Usage (from the repository root):
    .venv/bin/python benchmarks/large_data.py [--rows 10000 1000000] [--run RUN_DIR] [--baseline-rows 10000 100000]
        [--train 300000:false 300000:true 1000000:true] [--write-docs]

It writes a synthetic CSV of tweet-like rows per size (texts recombined from halves of the shared disaster
tweets, or synthetic words without them), runs `textune predict` on it in a child process and reads the
child's peak RSS from `/usr/bin/time -v` (psutil polling where that is absent). MiniLM would take about an
hour for 1M rows on 2 cores, so the default model is a tiny randomly initialised BERT (2 layers, hidden 32)
built here: what is measured is the streaming, not the model. `--run` measures a real run instead (use
fewer rows). `--baseline-rows` also measures the whole-file path that `textune predict` used before it
streamed (read everything, predict everything, write once). `--train ROWS:MODE ...` measures `textune
train` for a few steps on a file of ROWS rows with `--large_data MODE` (true: on disk; false: in memory).
Prints a Markdown table; --write-docs puts it under `## Large data` in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_command import DEFAULT_DATA, DOCS, machine, publish  # noqa: E402  (shared by every benchmark)

SECTION = "## Large data"
SYNTHETIC_WORDS = ("fire flood storm crash evacuate wildfire earthquake coffee sunny music party garden movie "
                   "happy the a today near my house we saw big in town and is so").split()

# The whole-file path `textune predict` took before it streamed, for --baseline-rows.
WHOLE_FILE_PREDICT = """
import sys
from textune.data.tables import read_table
from textune.inference.prediction import Predictor
predictor = Predictor.from_run(sys.argv[1])
frame = read_table(sys.argv[2], None, "--input")
predictor.task.prediction_table(frame, predictor.predict(frame)).to_csv(sys.argv[3], index=False)
"""


def source_texts(data: Path) -> list[str]:
    """Tweets to recombine: the shared disaster tweets when present, else sentences of synthetic words."""
    path = data / "train.csv"
    if path.exists():
        import pandas as pd

        return [str(text) for text in pd.read_csv(path)["text"].dropna()]
    rng = random.Random(0)
    return [" ".join(rng.choices(SYNTHETIC_WORDS, k=rng.randint(5, 25))) for _ in range(5000)]


def write_rows(path: Path, rows: int, texts: list[str], with_label: bool = False, seed: int = 0) -> None:
    """A CSV shaped like the disaster tweets (id, keyword, location, text[, target]); each text joins the first
    half of one tweet to the second half of another, so 1M rows are not 150 copies of the same 7k texts."""
    import pandas as pd

    rng = random.Random(seed)
    halves = [text.split() for text in texts]
    block = 100_000  # rows generated and appended at a time, so this process stays small too
    for start in range(0, rows, block):
        count = min(block, rows - start)
        made = []
        for _ in range(count):
            first, second = rng.choice(halves), rng.choice(halves)
            made.append(" ".join(first[:len(first) // 2] + second[len(second) // 2:]))
        frame = pd.DataFrame({"id": range(start, start + count),
                              "keyword": [rng.choice(["", "fire", "flood", "storm"]) for _ in range(count)],
                              "location": [rng.choice(["", "Paris", "Lagos", "Ottawa"]) for _ in range(count)],
                              "text": made})
        if with_label:
            frame["target"] = [int(any(w in t for w in ("fire", "flood", "storm", "crash"))) for t in made]
        frame.to_csv(path, mode="a" if start else "w", header=start == 0, index=False)


def build_tiny_run(folder: Path, texts: list[str]) -> Path:
    """A run folder with a randomly initialised 2-layer BERT (hidden 32) and a WordPiece tokenizer trained on
    the texts: tokenization and the prediction loop cost what they cost with any model, the forward pass little."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    from textune.data.tables import ColumnSpec
    from textune.tasks.classification.labels import LabelSpec
    from textune.run_folder import write_run_file
    from textune.tasks import ClassificationTask

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=4000, special_tokens=specials))
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    config = BertConfig(vocab_size=backend.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=128, pad_token_id=0,
                        id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1})
    folder.mkdir(parents=True, exist_ok=True)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    task = ClassificationTask(ColumnSpec(text=["text"], label="target", id="id"),
                              LabelSpec("single_label_classification", ["0", "1"]), max_seq_length=128)
    write_run_file(folder, {"task": task.to_dict(), "base_model": "tiny random BERT (benchmark)"})
    return folder


THREADS: dict[str, str] = {}  # --threads N: the children's torch (OpenMP) and tokenizer (rayon) threads


def measure(command: list[str], env: dict | None = None) -> dict:
    """Run a command: its wall time, peak RSS in MB (/usr/bin/time -v, else psutil) and peak anonymous RSS.

    RSS also counts the pages of memory-mapped files that were read, which the kernel drops under memory
    pressure; anonymous RSS (heap: Python objects, tensors) is what a process really holds, polled from
    /proc every 0.1 s.
    """
    import psutil

    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", **THREADS, **(env or {}))
    timed = Path("/usr/bin/time").exists()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report, tempfile.TemporaryFile("w+") as errors:
        started = time.perf_counter()
        child = subprocess.Popen(["/usr/bin/time", "-v", "-o", report.name, *command] if timed else command,
                                 env=env, stdout=subprocess.DEVNULL, stderr=errors)
        peak_rss = peak_anon = 0
        while child.poll() is None:
            try:
                tree = [psutil.Process(child.pid)]
                tree += tree[0].children(recursive=True)
                peak_rss = max(peak_rss, sum(process.memory_info().rss for process in tree))
                peak_anon = max(peak_anon, sum(_anonymous_rss(process.pid) for process in tree))
            except psutil.Error:
                pass
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        if child.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{errors.read()[-3000:]}")
        if timed:
            found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", Path(report.name).read_text())
            peak_rss = int(found.group(1)) * 1024 if found else peak_rss
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_rss / 2**20, 1),
            "peak_anon_mb": round(peak_anon / 2**20, 1) if peak_anon else None}


def _anonymous_rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^RssAnon:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) * 1024 if found else 0


def bench_predict(run_dir: Path, folder: Path, sizes: list[int], texts: list[str], baseline: bool) -> list[dict]:
    results = []
    for rows in sizes:
        data = folder / f"rows-{rows}.csv"
        if not data.exists():
            write_rows(data, rows, texts)
        output = folder / f"rows-{rows}.predictions.csv"
        if baseline:
            command = [sys.executable, "-c", WHOLE_FILE_PREDICT, str(run_dir), str(data), str(output)]
        else:
            command = [sys.executable, "-m", "textune", "predict", "--model", str(run_dir), "--input", str(data),
                       "--output", str(output)]
        row = {"path": "whole file (before)" if baseline else "textune predict (streaming)", "rows": rows,
               "file_mb": round(data.stat().st_size / 2**20, 1)} | measure(command)
        lines = sum(1 for _ in output.open()) - 1
        assert lines >= rows, f"{output} has {lines} rows, expected {rows}"
        row["rows_per_s"] = round(rows / row["seconds"])
        print(json.dumps(row), flush=True)
        results.append(row)
        output.unlink()
    return results


def bench_train(model_dir: Path, folder: Path, runs: list[tuple[int, str]], texts: list[str], steps: int) -> list[dict]:
    """Peak RSS of `textune train` for a few steps, per (rows, --large_data mode): in memory (false) or on disk."""
    results = []
    for rows, mode in runs:
        data = folder / f"train-{rows}.csv"
        if not data.exists():
            write_rows(data, rows, texts, with_label=True, seed=1)
        output = folder / f"train-run-{mode}"
        cache = folder / f"cache-{mode}"
        command = [sys.executable, "-m", "textune", "train", "--model_name_or_path", str(model_dir),
                   "--train_file", str(data), "--label_column_name", "target", "--large_data", mode,
                   "--max_steps", str(steps), "--per_device_train_batch_size", "32", "--do_train",
                   "--max_eval_samples", "2000", "--do_eval", "--eval_strategy", "no", "--save_strategy", "no",
                   "--report_to", "none", "--output_dir", str(output), "--overwrite_output_dir"]
        row = {"mode": "--large_data " + mode, "rows": rows, "file_mb": round(data.stat().st_size / 2**20, 1),
               "steps": steps} | measure(command, env={"HF_DATASETS_CACHE": str(cache)})
        row["rows_per_s"] = round(rows / row["seconds"])
        print(json.dumps(row), flush=True)
        results.append(row)
        shutil.rmtree(output, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return results


def markdown(predictions: list[dict], training: list[dict], model: str, machine_line: str,
             threads: int | None) -> str:
    command = " ".join(arg for arg in sys.argv[1:] if not arg.startswith("--workdir") and "/" not in arg)
    lines = [SECTION, "", "```", f".venv/bin/python benchmarks/large_data.py {command}", "```", "",
             f"`textune predict` on synthetic tweet-like CSVs (id, keyword, location, text), model: {model}, "
             "default `--chunk_rows 4096`, batch 32. Peak RSS is the command's maximum resident set "
             "(`/usr/bin/time -v`); it also counts pages of memory-mapped files that were read, which the kernel "
             "drops under memory pressure, so peak anonymous RSS (the heap: Python objects, tensors; polled from "
             "`/proc` every 0.1 s) is listed too. Wall times include 10-20 s of start-up (imports, model load). "
             f"Machine: {machine_line}"
             + (f"; the commands ran with OMP_NUM_THREADS={threads} and RAYON_RS_NUM_CPUS={threads} (torch and "
                "tokenizer threads), faster than 2 threads on a busy machine" if threads else "")
             + ". Other jobs shared the machine: wall times are *contended*.", "",
             "| path | rows | file MB | wall s | rows/s | peak RSS MB | peak anon MB |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in predictions:
        lines.append(f"| {row['path']} | {row['rows']:,} | {row['file_mb']} | {row['seconds']} | "
                     f"{row['rows_per_s']:,} | {row['peak_rss_mb']} | {row['peak_anon_mb']} |")
    streamed = {row["rows"]: row for row in predictions if "streaming" in row["path"]}
    if len(streamed) >= 2:
        small, large = streamed[min(streamed)], streamed[max(streamed)]
        lines += ["", f"Streaming, peak RSS at {large['rows']:,} rows / at {small['rows']:,} rows: "
                      f"**{large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x** for {large['rows'] // small['rows']}x "
                      f"the rows (anonymous: {_ratio(large, small)})."]
    whole = {row["rows"]: row for row in predictions if "whole" in row["path"]}
    if len(whole) >= 2:
        small, large = whole[min(whole)], whole[max(whole)]
        lines += [f"The whole-file path grows with the file: {_ratio(large, small)} anonymous memory for "
                  f"{large['rows'] // small['rows']}x the rows ({large['peak_anon_mb']:,} MB at {large['rows']:,})."]
    if training:
        lines += ["", f"`textune train` with the same tiny model for {training[0]['steps']} steps (batch 32), "
                      "10% held out for validation, evaluated on 2,000 of those rows, and the run report; the wall "
                      "time is mostly reading and tokenizing the file:", "",
                  "| mode | rows | file MB | wall s | rows/s | peak RSS MB | peak anon MB |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in training:
            lines.append(f"| `{row['mode']}` | {row['rows']:,} | {row['file_mb']} | {row['seconds']} | "
                         f"{row['rows_per_s']:,} | {row['peak_rss_mb']} | {row['peak_anon_mb']} |")
        on_disk = sorted((row for row in training if row["mode"].endswith("true")), key=lambda row: row["rows"])
        if len(on_disk) >= 2:
            lines += ["", f"On disk, anonymous memory is {_ratio(on_disk[-1], on_disk[0])} for "
                          f"{on_disk[-1]['rows'] / on_disk[0]['rows']:.1f}x the rows; the rest of RSS is pages of the "
                          "memory-mapped Arrow files. In memory, the tokenized table is held as Python lists."]
    return "\n".join(lines) + "\n"


def _ratio(large: dict, small: dict) -> str:
    return f"{large['peak_anon_mb'] / small['peak_anon_mb']:.2f}x" if large["peak_anon_mb"] and small["peak_anon_mb"] \
        else "not measured"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--run", type=Path, default=None, help="A real run folder (default: a tiny random BERT).")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Tweets to recombine into rows.")
    parser.add_argument("--baseline-rows", type=int, nargs="*", default=[],
                        help="Also measure the whole-file path on these sizes (memory grows with the rows).")
    parser.add_argument("--train", nargs="*", default=[], metavar="ROWS:MODE",
                        help="Also measure training: ROWS rows with --large_data MODE (true or false), "
                             "e.g. 300000:false.")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the generated files here (default: temp).")
    parser.add_argument("--threads", type=int, default=None,
                        help="Threads for torch and the tokenizer in each command (1 is faster on a busy machine).")
    parser.add_argument("--write-docs", action="store_true", help=f"Write the table into {DOCS.relative_to(ROOT)}.")
    args = parser.parse_args()
    texts = source_texts(args.data)
    if args.threads:
        THREADS.update(OMP_NUM_THREADS=str(args.threads), RAYON_RS_NUM_CPUS=str(args.threads))
    with tempfile.TemporaryDirectory(prefix="large-data-bench-") as tmp:
        folder = args.workdir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        run_dir = args.run or build_tiny_run(folder / "tiny-run", texts)
        model = f"the run {args.run}" if args.run else "tiny random BERT (2 layers, hidden 32)"
        predictions = bench_predict(run_dir, folder, sorted(args.rows), texts, baseline=False)
        if args.baseline_rows:
            predictions += bench_predict(run_dir, folder, sorted(args.baseline_rows), texts, baseline=True)
        runs = [(int(spec.split(":")[0]), spec.split(":")[1]) for spec in args.train]
        training = bench_train(run_dir, folder, runs, texts, args.train_steps) if runs else []
    text = markdown(predictions, training, model, machine(), args.threads)
    return publish(SECTION, text, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
