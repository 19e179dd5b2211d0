"""Benchmark: `textune predict` on a text-to-text run against transformers' text2text-generation pipeline, same
model, same inputs, same greedy generation settings, measured in one run.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/text_to_text_speed.py --run RUN --input pairs.csv --reference-python ref/bin/python \
        [--rows 200] [--threads 1] [--write-docs]

transformers 5 removed `pipeline("text2text-generation")` (and "translation", "summarization"), so the reference
runs in a second virtual environment with the last transformers 4 and the same torch:
    python -m venv ref && ref/bin/pip install torch==2.13.0 transformers==4.57.3 pandas sentencepiece

RUN is a run folder of `textune train --task translation|summarization|text2text`; --input a file with the run's
input column (its first --rows inputs are used; references are not needed). Contenders, all greedy (num_beams 1,
no sampling) with the run's max new tokens (--generation_max_length), on the CPU:
  - the Predictor in-process (`Predictor.from_run(RUN)`, as `textune predict` builds it), load and a warm-up
    batch excluded: inputs sorted by length, batches of --batch_size, KV cache;
  - `textune predict --model RUN --input inputs.csv --num_beams 1 --do_sample false` as its own process,
    wall-clock from launch to exit (start-up included);
  - `pipeline("text2text-generation", model=RUN)` in the reference python, load and a warm-up excluded, called with
    the list of (prefixed) inputs at its default batch size 1 and at --batch_size.
Each prints texts/s, the ratio to the pipeline's default call, and the share of inputs with the same output text
as the pipeline at batch 1 (no padding: generate's own output for each input alone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_command import load_average, machine, markdown_text, publish  # noqa: E402

SECTION = "## Text-to-text generation speed (`benchmarks/text_to_text_speed.py`)"

# Runs in the reference python (transformers 4): the pipeline on the inputs, load and a warm-up excluded.
PIPELINE_SCRIPT = '''
import json, sys, time
import torch, transformers
from transformers import pipeline

config = json.loads(sys.argv[1])
if config["threads"]:
    torch.set_num_threads(config["threads"])
texts = json.loads(open(config["inputs"], encoding="utf-8").read())
pipe = pipeline("text2text-generation", model=config["run"], tokenizer=config["run"], device=-1)
result = {"transformers": transformers.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
          "runs": []}
for batch_size in config["batch_sizes"]:
    options = dict(config["generate"], batch_size=batch_size, truncation=True, clean_up_tokenization_spaces=True)
    with torch.inference_mode():
        pipe(texts[:batch_size], **options)
        seconds = float("inf")
        for _ in range(config["repeats"]):
            started = time.perf_counter()
            outputs = pipe(texts, **options)
            seconds = min(seconds, time.perf_counter() - started)
    result["runs"].append({"batch_size": batch_size, "seconds": seconds,
                           "outputs": [output["generated_text"].strip() for output in outputs]})
print(json.dumps(result))
'''


def _env(threads: int) -> dict:
    """The environment of the contenders' processes: this checkout's textune, offline, and the same threads."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return env | ({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {})


def read_inputs(run: Path, path: Path, rows: int):
    """The run's task and the first `rows` non-empty inputs of `path`, in its input column, as a table (id, text)."""
    import pandas as pd

    from textune.data.splits import read_rows
    from textune.run_folder import read_run_file
    from textune.tasks import task_from_dict

    task = task_from_dict(read_run_file(run)["task"])
    frame = read_rows(path, None, "--input", task.name)
    if task.text_column not in frame.columns:
        raise SystemExit(f"--input {path} has no column {task.text_column!r} (the run's input column)")
    texts = frame[task.text_column].fillna("").astype(str)
    texts = texts[texts.str.strip() != ""].head(rows).tolist()
    return task, pd.DataFrame({"id": [f"t{i}" for i in range(len(texts))], task.text_column: texts})


def greedy(task) -> dict:
    """The run's max new tokens, greedy: what every contender generates with."""
    return {"max_new_tokens": task.generation.max_new_tokens, "num_beams": 1, "do_sample": False}


def time_predictor(run: Path, frame, batch_size: int, repeats: int) -> dict:
    """The Predictor as `textune predict` builds it, greedy, in-process; load and a warm-up batch excluded."""
    import torch

    from textune.inference.generation import GenerationSettings
    from textune.inference.prediction import Predictor

    predictor = Predictor.from_run(run, batch_size=batch_size, backend="torch", batch_job=True)
    predictor.task = predictor.task.with_generation(GenerationSettings(**greedy(predictor.task)))
    with torch.inference_mode():
        predictor.predict(frame.head(batch_size))
        seconds = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            records = predictor.predict(frame)
            seconds = min(seconds, time.perf_counter() - started)
    return {"seconds": seconds, "outputs": records["prediction"].tolist()}


def time_textune_predict(run: Path, source: Path, output: Path, settings: dict, batch_size: int,
                         repeats: int, threads: int) -> dict:
    """`textune predict` as its own process, greedy, wall-clock from launch to exit (the best of `repeats`)."""
    import pandas as pd

    command = [sys.executable, "-m", "textune", "predict", "--model", str(run), "--input", str(source),
               "--output", str(output), "--batch_size", str(batch_size), "--max_new_tokens",
               str(settings["max_new_tokens"]), "--num_beams", "1", "--do_sample", "false"]
    seconds = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=_env(threads))
        seconds = min(seconds, time.perf_counter() - started)
        if done.returncode:
            raise SystemExit(f"textune predict failed:\n{done.stderr[-2000:]}")
    written = pd.read_csv(output, dtype=str, keep_default_na=False)
    return {"seconds": seconds, "outputs": written["prediction"].tolist()}


def time_pipeline(python: str, run: Path, texts: list[str], settings: dict, batch_size: int, work: Path,
                  repeats: int, threads: int) -> dict:
    """The reference pipeline in `python` (transformers 4) at batch 1 and `batch_size`: seconds and outputs."""
    script, inputs = work / "pipeline_reference.py", work / "inputs.json"
    script.write_text(PIPELINE_SCRIPT)
    inputs.write_text(json.dumps(texts), encoding="utf-8")
    config = {"run": str(run), "inputs": str(inputs), "generate": settings, "repeats": repeats,
              "batch_sizes": [1, batch_size], "threads": threads}
    done = subprocess.run([python, str(script), json.dumps(config)], capture_output=True, text=True,
                          env=_env(threads) | {"PYTHONPATH": ""})
    if done.returncode:
        raise SystemExit(f"the reference pipeline failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_share(ours: list[str], theirs: list[str]) -> float:
    return sum(a == b for a, b in zip(ours, theirs, strict=True)) / len(ours)


def markdown(speed: list[dict], info: dict, args) -> str:
    reference = speed[-2]  # the pipeline at batch 1, its default
    count = info["texts"]
    lines = [
        SECTION, "",
        "```", ".venv/bin/python benchmarks/text_to_text_speed.py --run RUN --input FILE --reference-python "
               f"ref/bin/python --rows {args.rows}", "```", "",
        f"Run: {info['run']} ({info['task']}, {info['model']}); inputs: the first {count} of {args.input.name} "
        f"(mean {info['mean_words']:.1f} words). Greedy: max_new_tokens {info['settings']['max_new_tokens']}, "
        f"num_beams 1, no sampling, {args.threads or 'default'} torch thread(s), for every contender. The pipeline "
        "is transformers "
        f"{info['pipeline']['transformers']}'s `pipeline(\"text2text-generation\")` (gone from transformers 5) "
        f"with torch {info['pipeline']['torch']} in a second environment, on the same run folder, given the "
        "prefixed inputs. In-process contenders exclude loading and a warm-up batch; `textune predict` is timed "
        f"as its own process from launch to exit. Best of {args.repeats}. Same output: the same text as the "
        "pipeline at batch 1 (each input alone, no padding).", "",
        "| contender | seconds | texts/s | vs pipeline (batch 1) | same output as pipeline batch 1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in speed:
        lines.append(f"| {row['name']} | {row['seconds']:.2f} | {count / row['seconds']:.1f} | "
                     f"{reference['seconds'] / row['seconds']:.2f}x | {row['agreement']:.2%} |")
    lines += ["", f"Machine: {info['machine']}; load average {info['load'][0]:.2f} before and {info['load'][1]:.2f} "
              "after (other jobs on the cores show up here).", ""]
    return markdown_text(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="A text-to-text run folder of `textune train`.")
    parser.add_argument("--input", type=Path, required=True, help="A file with the run's input column.")
    parser.add_argument("--reference-python", required=True,
                        help="Python of an environment with transformers 4.57.3 and torch (see the docstring).")
    parser.add_argument("--rows", type=int, default=200, help="Inputs used (the first ones of --input).")
    parser.add_argument("--batch_size", type=int, default=32, help="textune's batch (and the pipeline's second).")
    parser.add_argument("--repeats", type=int, default=1,
                        help="Time each contender this many times and keep the fastest (the cores are shared).")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of every contender (0: torch's default, one per core). 1 by default: on "
                             "cores shared with other jobs, 2 threads made each generation step ~10x slower "
                             "(measured), which swamps the comparison.")
    parser.add_argument("--write-docs", action="store_true", help="Write the section into docs/benchmarks.md.")
    args = parser.parse_args()
    load_before = load_average()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    task, frame = read_inputs(args.run, args.input, args.rows)
    settings = greedy(task)
    texts = [(task.settings.source_prefix or "") + text for text in frame[task.text_column]]
    with tempfile.TemporaryDirectory(prefix="s2s-bench-") as tmp:
        work = Path(tmp)
        source = work / "inputs.csv"
        frame.to_csv(source, index=False)
        reference = time_pipeline(args.reference_python, args.run, texts, settings, args.batch_size, work,
                                  args.repeats, args.threads)
        print(json.dumps({key: value for key, value in reference.items() if key != "runs"}), flush=True)
        speed = [{"name": f"textune Predictor in-process, batch {args.batch_size} (load excluded)",
                  **time_predictor(args.run, frame, args.batch_size, args.repeats)},
                 {"name": f"`textune predict`, whole process, batch {args.batch_size} (start-up included)",
                  **time_textune_predict(args.run, source, work / "out.csv", settings, args.batch_size,
                                         args.repeats, args.threads)}]
        for result in reference["runs"]:
            default = " (its default)" if result["batch_size"] == 1 else ""
            speed.append({"name": f"transformers pipeline, batch {result['batch_size']}{default} (load excluded)",
                          "seconds": result["seconds"], "outputs": result["outputs"]})
    unpadded = next(result["outputs"] for result in reference["runs"] if result["batch_size"] == 1)
    baseline = speed[-2]["seconds"]  # the pipeline at batch 1
    for row in speed:
        row["agreement"] = same_share(row["outputs"], unpadded)
        print(json.dumps({"name": row["name"], "seconds": round(row["seconds"], 3),
                          "texts_per_s": round(len(frame) / row["seconds"], 2),
                          "ratio_to_pipeline_batch_1": round(baseline / row["seconds"], 2),
                          "same_output": row["agreement"]}), flush=True)
    differing = [(text, ours, theirs) for text, ours, theirs in zip(texts, speed[1]["outputs"], unpadded)
                 if ours != theirs]
    for text, ours, theirs in differing[:5]:
        print(f"differs: {text!r}: textune {ours!r}, pipeline {theirs!r}", flush=True)
    config = json.loads((args.run / "config.json").read_text(encoding="utf-8"))
    info = {"texts": len(frame), "settings": settings, "pipeline": reference, "machine": machine(),
            "run": args.run.name, "task": task.name, "model": config.get("model_type", "?"),
            "mean_words": sum(len(text.split()) for text in frame[task.text_column]) / len(frame),
            "load": (load_before, load_average())}
    return publish(SECTION, markdown(speed, info, args), args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
