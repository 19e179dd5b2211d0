"""Benchmark: extractive question answering on the shared tweet-keyword questions, its quality against trivial
baselines and `textune predict`'s speed against transformers' question-answering pipeline on the same saved model.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/question_answering.py --reference-python ref/bin/python [--write-docs]
    .venv/bin/python benchmarks/question_answering.py --run RUN --reference-python ref/bin/python [--write-docs]

transformers 5 removed `pipeline("question-answering")`, so the reference runs in a second virtual environment
with the last transformers 4 and the same torch:
    python -m venv ref && ref/bin/pip install torch==2.13.0 transformers==4.57.3 pandas

In one run:
  (a) quality: without --run, `textune train --task question-answering` fine-tunes the packaged MiniLM for one
      epoch on train.json (textune's defaults otherwise: batch 8, learning rate 5e-5) and evaluates on dev.json;
      the table shows the run's eval metrics (EM, F1, HasAns/NoAns) and training time, next to two trivial
      baselines scored with textune's own SQuAD metrics: always "no answer", and the first word of the context;
  (b) speed: dev.json's questions as a CSV (id, question, context), answered by
      - the Predictor in-process (`Predictor.from_run(run)`, as `textune predict` builds it), load excluded;
      - `textune predict --model RUN --input questions.csv` as its own process, wall-clock, start-up included
        (start-up alone: the same command on a one-row file);
      - `pipeline("question-answering", model=RUN)` in the reference python, load excluded, with the run's
        max_seq_length, doc_stride and max_answer_length, handle_impossible_answer for SQuAD v2, at batch 32
        (textune's batch) and at the pipeline's default batch size 1;
      with each one's questions/s, the ratio to the pipeline's, and the share of questions given the same answer
      text, the disagreements sorted by kind (no answer on one side only, one answer inside the other, other).
Exits 0 with a message when the shared data is absent.
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
from tutorial_command import DEFAULT_DATA, load_average, machine, markdown_text, publish  # noqa: E402

SECTION = "## Question answering on the tweet keywords (`benchmarks/question_answering.py`)"
QA_DATA = DEFAULT_DATA.parent / "tweet-keyword-qa"
BATCH_SIZE = 32
METRICS = ("exact_match", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")

# Runs in the reference python (transformers 4): the pipeline on the questions, load and a warm-up batch excluded.
PIPELINE_SCRIPT = '''
import json, sys, time
import pandas as pd, torch, transformers
from transformers import pipeline

config = json.loads(sys.argv[1])
frame = pd.read_csv(config["questions"], dtype=str, keep_default_na=False)
questions, contexts = frame["question"].tolist(), frame["context"].tolist()
pipe = pipeline("question-answering", model=config["run"], tokenizer=config["run"], device=-1)
settings = config["settings"]
result = {"transformers": transformers.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
          "runs": []}
for run in config["runs"]:
    options = {**settings, **run}
    with torch.inference_mode():
        pipe(question=questions[:BATCH], context=contexts[:BATCH], **options)
        seconds = float("inf")
        for _ in range(config["repeats"]):
            started = time.perf_counter()
            answers = pipe(question=questions, context=contexts, **options)
            seconds = min(seconds, time.perf_counter() - started)
    result["runs"].append({**run, "seconds": seconds,
                           "answers": dict(zip(frame["id"], (answer["answer"] for answer in answers)))})
print(json.dumps(result))
'''.replace("BATCH", str(BATCH_SIZE))


def _env() -> dict:
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def train_run(data: Path, folder: Path) -> float:
    """The packaged MiniLM fine-tuned one epoch on train.json and evaluated on dev.json; the command's wall seconds."""
    command = [sys.executable, "-m", "textune", "train", "--task", "question-answering", "--model_name_or_path",
               "minilm", "--train_file", str(data / "train.json"), "--validation_file", str(data / "dev.json"),
               "--version_2_with_negative", "--num_train_epochs", "1", "--do_train", "--do_eval",
               "--output_dir", str(folder)]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=_env())
    return time.perf_counter() - started


def dev_rows(data: Path):
    """dev.json as rows (id, question, context, answers), read as textune reads it."""
    from textune.tasks.question_answering.squad import read_squad

    return read_squad(data / "dev.json", flag="--validation_file")


def baselines(rows) -> dict[str, dict]:
    """SQuAD v2 metrics of always answering nothing, and of answering the context's first word."""
    from textune.tasks.question_answering.metrics import squad_metrics

    golds = [answers["text"] for answers in rows["answers"]]
    first_words = [(context.split() or [""])[0] for context in rows["context"]]
    return {"always no answer": squad_metrics(golds, [""] * len(rows), version_2=True),
            "first word of the context": squad_metrics(golds, first_words, version_2=True)}


def run_metrics(run: Path) -> dict:
    """The run's eval metrics and Trainer's train_runtime (all_results.json), without the eval_ prefix."""
    results = json.loads((run / "all_results.json").read_text())
    return {key.removeprefix("eval_"): value for key, value in results.items()}


def time_predictor(run: Path, frame, backend: str, repeats: int) -> dict:
    """The Predictor as `textune predict` builds it, on the questions in-process; load and a warm-up excluded."""
    import torch

    from textune.inference.prediction import Predictor

    predictor = Predictor.from_run(run, backend=backend, batch_job=True)
    rows = predictor.task.check_rows(frame, "questions", with_targets=False)
    with torch.inference_mode():
        predictor.predict(rows.head(BATCH_SIZE))
        seconds = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            rows = predictor.task.check_rows(frame, "questions", with_targets=False)
            records = predictor.predict(rows)
            seconds = min(seconds, time.perf_counter() - started)
    return {"seconds": seconds, "backend": predictor.backend.name,
            "answers": dict(zip(records["id"], records["answer"]))}


def time_textune_predict(run: Path, source: Path, output: Path, repeats: int) -> dict:
    """`textune predict` as its own process, wall-clock from launch to exit (the best of `repeats`)."""
    import pandas as pd

    command = [sys.executable, "-m", "textune", "predict", "--model", str(run), "--input", str(source),
               "--output", str(output)]
    seconds = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=_env())
        seconds = min(seconds, time.perf_counter() - started)
        if done.returncode:
            raise SystemExit(f"textune predict failed:\n{done.stderr[-2000:]}")
    written = pd.read_csv(output, dtype=str, keep_default_na=False)
    return {"seconds": seconds, "answers": dict(zip(written["id"], written["answer"]))}


def time_pipeline(python: str, run: Path, source: Path, settings: dict, work: Path, repeats: int) -> dict:
    """The reference pipeline in `python` (transformers 4): its seconds and answers at batch 32 and at 1, and, to
    tell where answers differ, at batch 32 with align_to_words off (its default widens an answer to whole words)."""
    script = work / "pipeline_reference.py"
    script.write_text(PIPELINE_SCRIPT)
    config = {"run": str(run), "questions": str(source), "settings": settings, "repeats": repeats, "runs": [{"batch_size": BATCH_SIZE}, {"batch_size": 1},
                                                                   {"batch_size": BATCH_SIZE, "align_to_words": False}]}
    done = subprocess.run([python, str(script), json.dumps(config)], capture_output=True, text=True,
                          env=os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    if done.returncode:
        raise SystemExit(f"the reference pipeline failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pipeline_settings(run: Path) -> dict:
    """The pipeline's arguments that match the run's task settings (its own defaults differ: answers of 15 tokens)."""
    from textune.run_folder import read_run_file

    task = read_run_file(run)["task"]
    return {"max_seq_len": task["max_seq_length"], "doc_stride": task["doc_stride"],
            "max_answer_len": task["max_answer_length"],
            "handle_impossible_answer": bool(task["version_2_with_negative"])}


def dev_scores(answers: dict, rows) -> dict:
    """SQuAD v2 exact match and F1 of one contender's answers on dev.json (which side a disagreement favours)."""
    from textune.tasks.question_answering.metrics import squad_metrics

    golds = [gold["text"] for gold in rows["answers"]]
    return squad_metrics(golds, [answers[key] for key in rows["id"]], version_2=True)


def disagreements(ours: dict, theirs: dict) -> dict:
    """How often the answer texts agree, and the disagreements by kind, with a few examples."""
    kinds: dict[str, list] = {"textune answers nothing, the pipeline answers": [],
                              "the pipeline answers nothing, textune answers": [],
                              "one answer inside the other": [], "same text but for spaces": [], "other": []}
    for key, mine in ours.items():
        other = theirs[key]
        if mine == other:
            continue
        if not mine:
            kind = "textune answers nothing, the pipeline answers"
        elif not other:
            kind = "the pipeline answers nothing, textune answers"
        elif mine.strip() == other.strip():
            kind = "same text but for spaces"
        elif mine in other or other in mine:
            kind = "one answer inside the other"
        else:
            kind = "other"
        kinds[kind].append((key, mine, other))
    same = sum(ours[key] == theirs[key] for key in ours)
    return {"agreement": same / len(ours), "kinds": {kind: found for kind, found in kinds.items() if found}}


def markdown(quality: dict, speed: list[dict], startup: float, agreement: dict, info: dict, args) -> str:
    reference = next(row for row in speed if row["name"].startswith(f"transformers pipeline, batch {BATCH_SIZE}"))
    count = info["questions"]
    command = ".venv/bin/python benchmarks/question_answering.py --reference-python ref/bin/python --write-docs"
    lines = [
        SECTION, "",
        "```", command + (" --run RUN" if args.run else ""), "```", "",
        f"Data: `tweet-keyword-qa` (SQuAD v2.0 JSON built from the shared tweets: the question asks for the tweet's "
        f"disaster keyword; {info['unanswerable']:.1%} of dev's {count} questions have no answer). Model: the "
        f"packaged MiniLM (all-MiniLM-L6-v2) fine-tuned by `{info['train_command']}`, one epoch, textune's defaults "
        "otherwise (batch 8, learning rate 5e-5, the new span head at 50x). Metrics: SQuAD v2's, in percent, by "
        "textune's own scorer, on dev.json; the baselines are scored by the same code.", "",
        "| model | EM | F1 | HasAns EM | HasAns F1 | NoAns EM | NoAns F1 | training |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, metrics in quality["rows"].items():
        cells = " | ".join(f"{metrics[key]:.1f}" for key in METRICS)
        lines.append(f"| {name} | {cells} | {metrics.get('training', '')} |")
    lines += [
        "", f"Speed: dev.json's {count} questions as a CSV (id, question, context). The pipeline is transformers "
        f"{info['pipeline']['transformers']}'s (`pipeline(\"question-answering\")` is gone from transformers 5) "
        f"with torch {info['pipeline']['torch']} in a second environment, loading the same run folder, called "
        f"with {', '.join(f'{key}={value}' for key, value in info['settings'].items())} (the run's settings; its "
        "own default answer length is 15 tokens). In-process contenders exclude loading and a warm-up batch; "
        "`textune predict` is timed as its own process from launch to exit. Each time is the best of "
        f"{args.repeats}. Same answer: the same answer text, "
        "\"\" for no answer.", "",
        "| contender | seconds | questions/s | vs pipeline batch 32 | same answer as pipeline batch 32 | EM | F1 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in speed:
        lines.append(f"| {row['name']} | {row['seconds']:.2f} | {count / row['seconds']:.1f} | "
                     f"{reference['seconds'] / row['seconds']:.2f}x | {row['agreement']:.2%} | "
                     f"{row['scores']['exact_match']:.1f} | {row['scores']['f1']:.1f} |")
    kinds = "; ".join(f"{kind}: {len(found)}" for kind, found in agreement["kinds"].items()) or "none"
    examples = "; ".join(f"{mine!r} against the pipeline's {other!r}"
                         for found in agreement["kinds"].values() for _, mine, other in found[:2])
    unaligned = agreement["without_word_alignment"]
    left = "; ".join(f"{kind}: {len(found)}" for kind, found in unaligned["kinds"].items()) or "none"
    lines += [
        "", f"Start-up of `textune predict` (imports, model load, a one-row file in and out): {startup:.1f} s.", "",
        f"Disagreements of `textune predict` with the pipeline at batch 32, by kind: {kinds}"
        + (f" (e.g. {examples})." if examples else ".")
        + f" With the pipeline's align_to_words off (its default widens a span to whole words of its "
        f"pre-tokenizer), the answers agree on {unaligned['agreement']:.2%} of questions (left: {left}).", "",
        quality["meaning"], "", speed_meaning(speed, reference, count), "",
        "Targets (issue 13): `textune predict` at least 2x the pipeline's questions/s, the same answer on at least "
        "99% of questions.", "",
        f"Machine: {info['machine']}; load average {info['load'][0]:.2f} before and {info['load'][1]:.2f} after "
        "(other jobs on the cores show up here).", ""]
    return markdown_text(lines)


def quality_meaning(rows: dict) -> str:
    model = rows["MiniLM, 1 epoch"]
    first = rows["first word of the context"]
    empty = rows["always no answer"]
    return (f"What it means: one epoch of MiniLM finds the keyword span with {model['exact_match']:.1f}% exact "
            f"match ({model['HasAns_exact']:.1f}% on answerable questions, {model['NoAns_exact']:.1f}% of the "
            f"unanswerable ones left unanswered), against {empty['exact_match']:.1f}% for answering nothing and "
            f"{first['exact_match']:.1f}% for the first word.")


def speed_meaning(speed: list[dict], reference: dict, count: int) -> str:
    whole = next(row for row in speed if row["name"].startswith("`textune predict`"))
    in_process = speed[0]
    return (f"The in-process Predictor answers {count / in_process['seconds']:.0f} questions/s, "
            f"{reference['seconds'] / in_process['seconds']:.1f}x the pipeline at batch 32; `textune predict` as a "
            f"whole process, start-up included, {reference['seconds'] / whole['seconds']:.1f}x, with the same answer "
            f"on {whole['agreement']:.1%} of questions.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="A QA run folder of `textune train` to reuse "
                                                               "(default: train one into a temporary folder).")
    parser.add_argument("--reference-python", required=True,
                        help="Python of an environment with transformers 4.57.3 and torch (see the docstring).")
    parser.add_argument("--data", type=Path, default=QA_DATA)
    parser.add_argument("--repeats", type=int, default=3,
                        help="Time each contender this many times and keep the fastest (the cores are shared).")
    parser.add_argument("--write-docs", action="store_true", help="Write the section into docs/benchmarks.md.")
    args = parser.parse_args()
    if not (args.data / "train.json").exists() or not (args.data / "dev.json").exists():
        print(f"skipped: no tweet-keyword-qa data at {args.data}")
        return 0
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        work = Path(tmp)
        if args.run:
            run, training = args.run, None
        else:
            run = work / "run"
            training = train_run(args.data, run)
        results = run_metrics(run)
        training_text = (f"{training:.0f} s (the whole command)" if training is not None
                         else f"{results['train_runtime']:.0f} s (Trainer's train_runtime, when RUN was trained)")
        rows = dev_rows(args.data)
        quality = {"rows": {"MiniLM, 1 epoch": {**results, "training": training_text}, **baselines(rows)}}
        quality["meaning"] = quality_meaning(quality["rows"])
        print(json.dumps(quality, default=str), flush=True)

        frame = rows[["id", "question", "context"]]
        source = work / "questions.csv"
        frame.to_csv(source, index=False)
        frame.head(1).to_csv(work / "one.csv", index=False)
        settings = pipeline_settings(run)
        reference = time_pipeline(args.reference_python, run, source, settings, work, args.repeats)
        pipeline_answers = reference["runs"][0]["answers"]
        ours = time_predictor(run, frame, "auto", args.repeats)
        speed = [{"name": f"textune Predictor in-process, backend {ours['backend']} (load excluded)", **ours}]
        if ours["backend"] != "torch":  # like for like with the pipeline's fp32 too
            speed.append({"name": "textune Predictor in-process, backend torch fp32 (load excluded)",
                          **time_predictor(run, frame, "torch", args.repeats)})
        startup = time_textune_predict(run, work / "one.csv", work / "one_out.csv", args.repeats)["seconds"]
        whole = time_textune_predict(run, source, work / "predictions.csv", args.repeats)
        speed.append({"name": "`textune predict`, whole process (start-up included)", **whole})
        for result in reference["runs"]:
            words = ", align_to_words off (to tell why answers differ)" if result.get("align_to_words") is False else ""
            speed.append({"name": f"transformers pipeline, batch {result['batch_size']}{words} (load excluded)",
                          "seconds": result["seconds"], "answers": result["answers"]})
        for row in speed:
            row["agreement"] = disagreements(row["answers"], pipeline_answers)["agreement"]
            row["scores"] = dev_scores(row["answers"], rows)
            print(json.dumps({key: value for key, value in row.items() if key != "answers"}), flush=True)
        agreement = disagreements(whole["answers"], pipeline_answers)
        unaligned = next(result for result in reference["runs"] if result.get("align_to_words") is False)
        agreement["without_word_alignment"] = disagreements(whole["answers"], unaligned["answers"])
        for kind, found in agreement["kinds"].items():
            print(f"{kind}: {len(found)}; e.g. " + "; ".join(f"{key}: textune {mine!r}, pipeline {other!r}"
                                                              for key, mine, other in found[:5]), flush=True)
        info = {"questions": len(frame), "settings": settings, "pipeline": reference, "machine": machine(),
                "unanswerable": sum(not answers["text"] for answers in rows["answers"]) / len(rows),
                "train_command": "textune train --task question-answering --model_name_or_path minilm --train_file "
                                 "train.json --validation_file dev.json --version_2_with_negative "
                                 "--num_train_epochs 1", "load": (load_before, load_average())}
        text = markdown(quality, speed, startup, agreement, info, args)
    return publish(SECTION, text, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
