"""Benchmark: `textune predict` with its defaults, as a whole process, against the transformers pipeline and an
ONNX Runtime dynamic-int8 pipeline (optimum's recipe), with the share of the CPU's measured fp32 matmul peak.

Usage (from the repository root, after `bash scripts/setup.sh`):
    .venv/bin/python benchmarks/predict_speed.py --run RUN [--rows 1000] [--write-docs]
    .venv/bin/python benchmarks/predict_speed.py --train [--write-docs]   # fine-tune the packaged MiniLM first

In one run:
  (a) the fp32 matmul peak of this CPU (2048 x 2048, best of a few passes);
  (b) `textune predict --model RUN --input TEXTS.csv` with no other flag, as its own process, wall-clock: start-up,
      imports, model load, reading and writing included; start-up alone is the same command on a one-row file;
  (c) `pipeline("text-classification", model=RUN, batch_size=32)`, load excluded;
  (d) what an experienced user picks instead: optimum's `ORTModelForSequenceClassification` exported and
      quantized by `ORTQuantizer` (dynamic int8, `AutoQuantizationConfig.avx512_vnni` or `.avx2` for this CPU),
      in a pipeline, export and load excluded. optimum-onnx 0.1.0 requires transformers < 4.58; where it cannot
      be imported, the same recipe is run directly (torch.onnx export, onnxruntime's `quantize_dynamic` with
      optimum's settings for the CPU, a pipeline-shaped loop: the tokenizer on batches of 32 in input order, one
      session run per batch), and the table says so;
  (e) validation F1 and label agreement of the backend predict chose, against torch fp32.
TEXTS: the tweets of test.csv, val.csv and train.csv (all 9,876, or the first --rows). FLOPs are those of the real
(unpadded) tokens through the encoder's matmuls. Exits 0 with a message when the shared data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_speed import encoder_flops, peak_matmul_flops  # noqa: E402  (shared by every benchmark)
from tutorial_command import DEFAULT_DATA, load_average, machine, markdown_text, publish  # noqa: E402

SECTION = "## Prediction speed with the defaults (`benchmarks/predict_speed.py`)"
BATCH_SIZE = 32
# ORTQuantizer's default operators for dynamic quantization (optimum.onnxruntime.configuration)
OPS = ["MatMul", "Attention", "LSTM", "Gather", "Transpose", "EmbedLayerNormalization"]


def read_texts(data: Path, rows: int | None) -> list[str]:
    import pandas as pd

    texts = []
    for name in ("test.csv", "val.csv", "train.csv"):
        texts += [str(text) for text in pd.read_csv(data / name)["text"].dropna().tolist()]
    return texts[:rows] if rows else texts


def train_run(data: Path, folder: Path) -> Path:
    """The packaged MiniLM fine-tuned on the shared tweets with textune's defaults (which choose the backend)."""
    command = [sys.executable, "-m", "textune", "train", "--model_name_or_path", "minilm", "--train_file",
               str(data / "train.csv"), "--validation_file", str(data / "val.csv"), "--label_column_name",
               "target", "--num_train_epochs", "1", "--output_dir", str(folder), "--do_train", "--do_eval"]
    subprocess.run(command, check=True, env=_env())
    return folder


def _env() -> dict:
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def textune_predict(run: Path, texts: list[str], work: Path, column: str) -> dict:
    """`textune predict` with its defaults as a process; wall seconds and the backend it logged."""
    import pandas as pd

    source = work / f"texts_{len(texts)}.csv"
    pd.DataFrame({column: texts}).to_csv(source, index=False)
    command = [sys.executable, "-m", "textune", "predict", "--model", str(run), "--input", str(source),
               "--output", str(work / f"predictions_{len(texts)}.csv")]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_env())
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"textune predict failed:\n{done.stderr[-2000:]}")
    backend = re.findall(r"inference backend: (\S+)", done.stderr)
    return {"seconds": seconds, "backend": backend[-1] if backend else "?"}


def pipeline_seconds(run: Path, texts: list[str]) -> float:
    import torch
    from transformers import pipeline

    pipe = pipeline("text-classification", model=str(run), device="cpu")
    with torch.inference_mode():
        pipe(texts[:BATCH_SIZE], batch_size=BATCH_SIZE, truncation=True)
        started = time.perf_counter()
        pipe(texts, batch_size=BATCH_SIZE, truncation=True)
    return time.perf_counter() - started


def cpu_has_vnni() -> bool:
    try:
        return "avx512_vnni" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def optimum_seconds(run: Path, texts: list[str], work: Path):
    """optimum's ORT int8 pipeline (export, quantization and load excluded), or its recipe run directly:
    seconds, a name, and a function from texts to predicted label ids (for its agreement with fp32)."""
    try:
        from optimum.onnxruntime import ORTModelForSequenceClassification, ORTQuantizer
        from optimum.onnxruntime.configuration import AutoQuantizationConfig
    except Exception as error:  # noqa: BLE001 - ImportError, or a transformers it was not written for
        print(f"optimum-onnx unavailable ({type(error).__name__}: {str(error).splitlines()[0]}); running its "
              "recipe with onnxruntime directly", flush=True)
        return (*recipe_seconds(run, texts, work), "ONNX Runtime int8, optimum's recipe run directly")
    from transformers import AutoTokenizer, pipeline

    model = ORTModelForSequenceClassification.from_pretrained(run, export=True)
    model.save_pretrained(work / "optimum")
    quantizer = ORTQuantizer.from_pretrained(work / "optimum")
    config = (AutoQuantizationConfig.avx512_vnni if cpu_has_vnni() else AutoQuantizationConfig.avx2)(
        is_static=False, per_channel=False)
    quantizer.quantize(save_dir=work / "optimum-int8", quantization_config=config)
    quantized = ORTModelForSequenceClassification.from_pretrained(work / "optimum-int8")
    pipe = pipeline("text-classification", model=quantized, tokenizer=AutoTokenizer.from_pretrained(run))
    pipe(texts[:BATCH_SIZE], batch_size=BATCH_SIZE, truncation=True)
    started = time.perf_counter()
    pipe(texts, batch_size=BATCH_SIZE, truncation=True)
    seconds = time.perf_counter() - started

    def labels(batch_texts):
        answers = pipe(batch_texts, batch_size=BATCH_SIZE, truncation=True)
        return [quantized.config.label2id[answer["label"]] for answer in answers]

    return seconds, labels, "optimum ORTModel int8 pipeline"


def recipe_seconds(run: Path, texts: list[str], work: Path):
    """ORTQuantizer's dynamic int8 settings (QInt8 symmetric weights per tensor, uint8 activations, reduce_range
    off on VNNI CPUs and on AVX2 as optimum's configs set it), on a plain torch.onnx export of the run's model."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run)
    model = AutoModelForSequenceClassification.from_pretrained(run).eval()
    sample = tokenizer(texts[:2], padding=True, truncation=True, return_tensors="pt")
    names = list(sample)
    fp32, int8 = work / "recipe.onnx", work / "recipe_int8.onnx"
    from textune.inference.export import LogitsOnly  # binds the inputs by name (BERT's positional order differs)

    with torch.no_grad():
        torch.onnx.export(LogitsOnly(model, names), tuple(sample[name] for name in names), str(fp32), dynamo=False,
                          input_names=names,
                          output_names=["logits"], opset_version=17,
                          dynamic_axes={name: {0: "batch", 1: "sequence"} for name in names})
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=False, reduce_range=False,
                     op_types_to_quantize=OPS)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])

    def run_all(batch_texts):
        labels = []
        for start in range(0, len(batch_texts), BATCH_SIZE):
            batch = tokenizer(batch_texts[start:start + BATCH_SIZE], padding=True, truncation=True, return_tensors="np")
            logits = session.run(None, {name: batch[name].astype(np.int64) for name in names})[0]
            np.exp(logits - logits.max(-1, keepdims=True))  # the pipeline's softmax, so the work matches
            labels += logits.argmax(-1).tolist()
        return labels

    run_all(texts[:BATCH_SIZE])
    started = time.perf_counter()
    run_all(texts)
    return time.perf_counter() - started, run_all


def real_token_flops(run: Path, texts: list[str]) -> float:
    from transformers import AutoConfig, AutoTokenizer

    from textune.run_folder import read_run_file

    limit = read_run_file(run)["task"].get("max_seq_length", 128)
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(run)(texts, truncation=True, max_length=limit)["input_ids"]]
    config = AutoConfig.from_pretrained(run)
    return sum(encoder_flops(config, length) for length in lengths)


def validation_parity(run: Path, data: Path, other_labels) -> dict:
    """F1 of torch fp32 and of what `auto` picks on val.csv, how often their labels agree, and how often the
    int8 pipeline's (`other_labels`: texts -> label ids) agree with fp32's."""
    import numpy as np
    import pandas as pd

    from textune.inference.prediction import Predictor

    fp32 = Predictor.from_run(run, backend="torch")
    auto = Predictor.from_run(run)
    columns = fp32.task.columns
    frame = pd.read_csv(data / "val.csv").dropna(subset=columns.text + [columns.label]).reset_index(drop=True)
    result = {"backend": auto.backend.name, "rows": len(frame)}
    labels, ids = {}, {}
    for name, predictor in (("fp32", fp32), ("auto", auto)):
        (logits,) = predictor.outputs(frame)
        records = fp32.task.decode(None, None, (logits,))
        result[f"f1_{name}"] = fp32.task.score(frame, records)["f1"]
        labels[name] = records["prediction"].to_numpy()
        ids[name] = logits.argmax(-1)
    result["agreement"] = float((labels["fp32"] == labels["auto"]).mean())
    # single-label classification (the tweets): the label id is the argmax of the logits
    result["other_agreement"] = float((np.asarray(other_labels(list(columns.texts(frame)))) == ids["fp32"]).mean())
    return result


def markdown(rows: list[dict], startup: float, parity: dict, peak: float, args, host: str,
             load: tuple[float, float], count: int) -> str:
    baseline = next(row for row in rows if row["name"].startswith("transformers pipeline"))
    lines = [
        SECTION, "",
        "```", ".venv/bin/python benchmarks/predict_speed.py --run RUN --write-docs"
        + (f" --rows {args.rows}" if args.rows else ""), "```", "",
        f"RUN: the packaged MiniLM fine-tuned by `textune train` with its defaults on the shared disaster tweets; "
        f"{count:,} tweets (test, validation and train files). `textune predict` runs as its own process with no "
        "flag but --model, --input and --output, timed wall-clock from launch to exit; the others run in-process "
        "with loading (and export) excluded. Share of peak: FLOPs of the real tokens through the encoder's "
        f"matmuls per second, over this CPU's measured fp32 matmul peak ({peak / 1e9:.0f} GFLOP/s).", "",
        "| contender | seconds | texts/s | vs pipeline | share of fp32 matmul peak |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(f"| {row['name']} | {row['seconds']:.1f} | {count / row['seconds']:.1f} | "
                     f"{baseline['seconds'] / row['seconds']:.2f}x | {row['share']:.1%} |")
    lines += [
        "", f"Start-up of `textune predict` (imports, model load, a one-row file in and out): {startup:.1f} s.", "",
        f"Backend chosen at the end of training and used by predict: {parity['backend']}. On the {parity['rows']} "
        f"validation tweets: F1 {parity['f1_auto']:.4f} against {parity['f1_fp32']:.4f} for torch fp32 "
        f"({100 * (parity['f1_auto'] - parity['f1_fp32']):+.2f} points), label agreement {parity['agreement']:.2%}. "
        f"The ONNX Runtime int8 pipeline's label agreement with fp32: {parity['other_agreement']:.2%}.",
        "", "Targets: whole-process `textune predict` at least 3x the pipeline's texts/s and at least the ONNX "
        "Runtime int8 pipeline's; F1 at most 0.5 points below fp32, agreement at least 99%.", "",
        f"Machine: {host}; load average {load[0]:.2f} before and {load[1]:.2f} after (other jobs on the cores show "
        "up here).", ""]
    return markdown_text(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="A run folder of `textune train` (or use --train).")
    parser.add_argument("--train", action="store_true", help="Fine-tune the packaged MiniLM into a temporary run.")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=None, help="Use only the first ROWS tweets.")
    parser.add_argument("--write-docs", action="store_true", help="Write the table into docs/benchmarks.md.")
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        print(f"skipped: no disaster tweets at {args.data}")
        return 0
    if (args.run is None) == (not args.train):
        parser.error("give --run RUN or --train (one of them)")
    with tempfile.TemporaryDirectory(prefix="predict-speed-") as tmp:
        work = Path(tmp)
        run = args.run or train_run(args.data, work / "run")
        from textune.run_folder import read_run_file

        column = read_run_file(run)["task"]["columns"]["text"][0]
        texts = read_texts(args.data, args.rows)
        load_before = load_average()
        peak = peak_matmul_flops("float32")
        print(f"fp32 matmul peak: {peak / 1e9:.0f} GFLOP/s", flush=True)
        startup = textune_predict(run, texts[:1], work, column)["seconds"]
        print(f"start-up: {startup:.1f} s", flush=True)
        whole = textune_predict(run, texts, work, column)
        rows = [{"name": f"`textune predict` with defaults (backend {whole['backend']}), whole process",
                 "seconds": whole["seconds"]}]
        print(json.dumps(rows[-1]), flush=True)
        rows.append({"name": "transformers pipeline, batch 32 (load excluded)", "seconds": pipeline_seconds(run, texts)})
        print(json.dumps(rows[-1]), flush=True)
        seconds, other_labels, name = optimum_seconds(run, texts, work)
        rows.append({"name": f"{name}, batch 32 (export and load excluded)", "seconds": seconds})
        print(json.dumps(rows[-1]), flush=True)
        flops = real_token_flops(run, texts)
        for row in rows:
            row["share"] = flops / row["seconds"] / peak
        parity = validation_parity(run, args.data, other_labels)
        print(json.dumps(parity), flush=True)
        text = markdown(rows, startup, parity, peak, args, machine(), (load_before, load_average()), len(texts))
    return publish(SECTION, text, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
