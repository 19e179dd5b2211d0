"""Export a run's model to ONNX (optionally int8), checked against PyTorch before it is written.

The exported file goes into the run folder (`model.onnx`, `model_int8.onnx`) with a parity record next to it
(`model.parity.json`): how far its probabilities are from PyTorch fp32 and how often its labels agree, on the
run's validation rows. `Predictor(backend="auto")`, and so predict, evaluate and serve, use an export only when
that record passed.

Example:
    >>> from textune.inference.export import export_onnx
    >>> result = export_onnx("runs/tweets", quantize="int8")
    >>> result.parity["label_agreement"], result.parity["max_abs_diff"]
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .backends import INSTALL_ONNX, ONNX_FILES, OnnxBackend, import_onnxruntime, parity_path, weights_fingerprint
from ..errors import TextuneError
from .prediction import Predictor
from ..run_folder import read_run_file

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("int8",)
DEFAULT_MIN_AGREEMENT = 0.99
DEFAULT_PARITY_ROWS = 1000
OPSET = 17  # LayerNormalization is one node from opset 17; ONNX Runtime 1.16+ runs it
# Used for the parity check only when the run's validation rows cannot be found (the data moved, no report).
FALLBACK_TEXTS = [
    "Forest fire near La Ronge Sask. Canada",
    "Just happened a terrible car crash",
    "I love fruits",
    "What a goooooooaaaaaal!!!!!!",
    "The flood water is rising fast, residents were told to evacuate tonight",
    "this is ridiculous....",
    "Summer is lovely",
    "Heard about the earthquake? Different cities, stay safe everyone",
    "My car is so fast",
    "There's an emergency evacuation happening now in the building across the street",
    "Was in NYC last week!",
    "No way...I can't eat that shit",
    "Thunderstorm warning for the county until 9 pm. Stay indoors and away from windows.",
    "You must be the coolest person in the whole wide world, I mean it, and also the kindest one I know of",
    "ok",
    "Police say the explosion at the plant injured three workers; the cause is under investigation",
] * 4


@dataclass
class ExportResult:
    """What `export_onnx` wrote.

    Attributes:
        model: The ONNX file.
        parity_file: Its parity record (JSON).
        parity: The record: rows compared, max_abs_diff, label_agreement, passed, metrics when labels were known.
    """

    model: Path
    parity_file: Path
    parity: dict


def export_onnx(run_dir: str | Path, output: str | Path | None = None, quantize: str | None = None, *,
                min_agreement: float = DEFAULT_MIN_AGREEMENT, parity_rows: int = DEFAULT_PARITY_ROWS,
                batch_size: int = 32, allow_pickle: bool = False, rows: pd.DataFrame | None = None,
                rows_logits: np.ndarray | None = None) -> ExportResult:
    """Export the run's model to ONNX, compare it with PyTorch fp32 on validation rows, and write both files.

    Args:
        run_dir: A run folder written by `textune train`.
        output: The ONNX file to write; default `model.onnx` (or `model_int8.onnx`) in the run folder, where
            `--backend auto|onnx|onnx-int8` look for it.
        quantize: None for fp32, or "int8" (ONNX Runtime dynamic quantization of the matrix multiplications).
        min_agreement: The share of rows on which the export must predict PyTorch's label; below it nothing is
            written. `auto` also never picks a model below 0.99, whatever this says.
        parity_rows: At most this many validation rows are compared.
        batch_size: Texts per forward pass in the comparison.
        allow_pickle: Allow pickle weights in the run folder.
        rows: Validation rows to compare on, in the run's columns (default: the run's, as `parity_sample` finds
            them); training passes the ones it holds.
        rows_logits: PyTorch fp32's logits on the first `parity_rows` of `rows`, when the caller has them (the
            backend choice at the end of training does), so they are not computed a second time.

    Returns:
        The ONNX file, its parity record's path, and the record.

    Raises:
        TextuneError: The folder is not a run, a package is missing, the quantization is unknown, or the export
            disagrees with PyTorch on more rows than allowed (nothing is written then).
    """
    run_dir = Path(run_dir).expanduser()
    if quantize not in (None, *QUANTIZATIONS):
        raise TextuneError(f"--quantize {quantize!r} is not known; use {', '.join(QUANTIZATIONS)} "
                           "(or leave it out for fp32)")
    if not 0.0 <= min_agreement <= 1.0:
        raise TextuneError(f"--min_agreement {min_agreement} must be between 0 and 1 (e.g. 0.99)")
    if parity_rows < 1:
        raise TextuneError(f"--parity_rows {parity_rows} must be at least 1 (default {DEFAULT_PARITY_ROWS})")
    read_run_file(run_dir, flag="run folder")
    _require_packages()
    target = Path(output).expanduser() if output else run_dir / ONNX_FILES[quantize]
    if target.suffix != ".onnx":
        raise TextuneError(f"--output {target} must end in .onnx")
    target.parent.mkdir(parents=True, exist_ok=True)

    reference = Predictor.from_run(run_dir, batch_size, allow_pickle, backend="torch")
    if rows is not None and len(rows):
        frame, source = rows.head(parity_rows).reset_index(drop=True), "validation"
    else:
        frame, source = parity_sample(run_dir, reference, parity_rows)
    # Everything is built in a hidden folder next to the target and renamed into place only once it passed,
    # so a failure or Ctrl-C never leaves a half-written model or a record describing another file.
    staging = Path(tempfile.mkdtemp(prefix=".textune-export-", dir=target.parent))
    try:
        exported = staging / "model.onnx"
        export_torch_model(reference, frame, exported)
        if quantize == "int8":
            exported = quantize_int8(exported, staging / "model_int8.onnx")
        candidate = Predictor(None, reference.tokenizer, reference.task, batch_size,
                              backend=OnnxBackend(exported, name="onnx-int8" if quantize else "onnx"))
        expected = reference.logits(frame) if rows_logits is None or rows is None else rows_logits[:len(frame)]
        record = compare_logits(reference.task, frame, expected, candidate.logits(frame)) | {
            "file": target.name, "format": "onnx", "quantize": quantize, "source": source,
            "min_agreement": min_agreement, "weights": weights_fingerprint(run_dir),
            "model_bytes": exported.stat().st_size, "versions": _versions(),
        }
        record["passed"] = record["label_agreement"] >= min_agreement
        _log(record)
        if not record["passed"]:
            hint = ("int8 changes borderline predictions: use the fp32 export, or pass --min_agreement "
                    f"{np.floor(record['label_agreement'] * 100) / 100:.2f} to keep it (auto will not pick it)"
                    if quantize else "please report this with the run's base model")
            raise TextuneError(
                f"the exported model predicts PyTorch's label on {record['label_agreement']:.1%} of {record['rows']} "
                f"{source} rows (max difference {record['max_abs_diff']:.4f}), below --min_agreement "
                f"{min_agreement:.2f}; nothing was written; {hint}")
        record_file = parity_path(target)
        staged_record = staging / "parity.json"
        staged_record.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        record_file.unlink(missing_ok=True)  # no moment where an old record vouches for the new file
        os.replace(exported, target)
        os.replace(staged_record, record_file)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(target, record_file, record)


def _require_packages() -> None:
    import_onnxruntime("textune export --format onnx")
    try:
        import onnx  # noqa: F401  (the exporter and the quantizer write through it)
    except ImportError:
        raise TextuneError(f"textune export --format onnx needs the onnx package: {INSTALL_ONNX}") from None


class LogitsOnly(torch.nn.Module):
    """Wraps a classifier so the exported graph takes token arrays positionally and returns only the logits."""

    def __init__(self, model, input_names: list[str]):
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs):
        return self.model(**dict(zip(self.input_names, inputs))).logits


def export_torch_model(predictor: Predictor, frame: pd.DataFrame, path: Path) -> None:
    """Write the predictor's PyTorch model to `path` as ONNX, with dynamic batch and sequence axes.

    Uses torch.onnx's TorchScript exporter (`dynamo=False`): on MiniLM its graph ran as fast or faster in ONNX
    Runtime than the torch.export-based one, and it exports in seconds rather than tens of seconds. Where a
    torch version no longer has it, the torch.export-based exporter (which needs onnxscript) is used instead.

    Raises:
        TextuneError: Neither exporter can export this model.
    """
    from transformers import DataCollatorWithPadding

    # Two rows, so no exporter mistakes a batch of 1 for a constant of the graph.
    sample = frame.iloc[np.arange(2) % len(frame)]
    features = predictor.task.tokenize(predictor.tokenizer, sample)
    names = list(features)
    batch = DataCollatorWithPadding(predictor.tokenizer, return_tensors="pt")(
        [{name: features[name][i] for name in names} for i in range(len(sample))])
    inputs = tuple(batch[name].to(torch.int64) for name in names)
    module = LogitsOnly(predictor.model.cpu().eval(), names).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings say nothing a user can act on
        try:
            torch.onnx.export(module, inputs, str(path), dynamo=False, input_names=names, output_names=["logits"],
                              dynamic_axes={name: {0: "batch", 1: "sequence"} for name in names}
                              | {"logits": {0: "batch"}}, opset_version=OPSET)
            return
        except (TypeError, NotImplementedError, RuntimeError) as error:
            logger.info("TorchScript ONNX export failed or is unavailable (%s); trying the torch.export-based "
                        "exporter", str(error).splitlines()[0] if str(error) else type(error).__name__)
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise TextuneError("this model needs torch's torch.export-based ONNX exporter, which needs "
                               "onnxscript: pip install 'textune[onnx]' (or: pip install onnxscript)") from None
        axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}
        try:
            # forward(*inputs) has one parameter holding every input, hence the one-element tuple of shapes
            program = torch.onnx.export(module, inputs, dynamo=True, verbose=False, input_names=names,
                                        output_names=["logits"],
                                        dynamic_shapes=(tuple(axes for _ in names),), opset_version=18)
        except Exception as error:  # the exporter's errors are pages long; the first line names the operator
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise TextuneError(f"this model cannot be exported to ONNX by torch {torch.__version__} ({first}); "
                               "use --backend torch") from None
        program.save(str(path))


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantization of the encoder's MatMul weights; activations are quantized at run time.

    Kept in fp32: the embedding tables, the classifier and pooler (Gemm nodes), and the first encoder layer,
    whose inputs (embeddings straight out of their LayerNorm) have the outliers that per-tensor activation
    quantization handles worst. Weights are scaled per output channel, in 7 bits (`reduce_range`) so the u8 x s8
    multiply-adds of CPUs without VNNI cannot saturate. On MiniLM fine-tuned on the disaster tweets, agreement
    with fp32 went from 98.4% (every MatMul, 8 bits) to 99.1% of validation and 99.5% of test labels, at about
    1.5x the throughput of fp32 ONNX on one AVX2 core, as quantizing every MatMul gave (within noise).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source), load_external_data=False)
    # Module paths survive in the exported node names: .../encoder/layer.0/... (BERT), .../layers.0/... (others)
    first_layer = [node.name for node in model.graph.node
                   if node.op_type == "MatMul" and re.search(r"(^|/)layers?\.0/", node.name)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a line per tensor, and advice for images, to the root logger
    try:
        # DefaultTensorType: shape inference cannot type every intermediate of a traced transformer graph.
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=first_layer,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)
    return target


def parity_sample(run_dir: Path, predictor: Predictor, limit: int) -> tuple[pd.DataFrame, str]:
    """Rows to compare the export on: the run's validation rows (from the report's validation_predictions.csv,
    else rebuilt from its data files), else built-in example sentences. Returns the frame and where it came from."""
    columns = predictor.columns
    report_file = run_dir / "validation_predictions.csv"
    if report_file.exists():
        table = pd.read_csv(report_file, keep_default_na=False, dtype=str)
        if "text" in table.columns and len(table):
            # The report stores each row's joined text; the parity check needs the model's input, not the columns.
            frame = pd.DataFrame({columns.text[0]: table["text"]} | {c: "" for c in columns.text[1:]})
            if columns.text_pair and "text_pair" in table.columns:
                frame[columns.text_pair] = table["text_pair"]
            if "label" in table.columns:
                frame[columns.label] = table["label"]
            if not columns.text_pair or columns.text_pair in frame.columns:
                return frame.head(limit), "validation"
    try:
        from ..serving.service import load_validation_frame

        frame = load_validation_frame(read_run_file(run_dir, flag="run folder"))
    except Exception as error:  # the data may have moved since training: fall back to the sentences below
        logger.info("parity check: the run's validation data could not be read (%s)", error)
        frame = None
    if frame is not None and len(frame):
        return frame.head(limit).reset_index(drop=True), "validation"
    if columns.text_pair:
        raise TextuneError(f"{run_dir}: no validation rows to check the export on (text pairs need them); "
                           "run `textune report` from the folder the run was trained in, then export again")
    return pd.DataFrame({columns.text[0]: FALLBACK_TEXTS[:limit]} | {c: "" for c in columns.text[1:]}), "example"


def compare_logits(task, frame: pd.DataFrame, expected: np.ndarray, got: np.ndarray) -> dict:
    """Probability (or value) differences and label agreement of a candidate's outputs `got` against the
    reference's `expected`, both on `frame`."""
    a, b = task.decode(expected), task.decode(got)
    probabilities = [name for name in a.columns if name.startswith("prob_")]
    if probabilities:
        difference = np.abs(a[probabilities].to_numpy(float) - b[probabilities].to_numpy(float))
        agree = (a["prediction"].to_numpy() == b["prediction"].to_numpy())
        compared = "probabilities"
    else:  # regression: a prediction agrees when within 1% (or 0.01 of small values)
        x, y = a["prediction"].to_numpy(float), b["prediction"].to_numpy(float)
        difference = np.abs(x - y)
        agree = difference <= 0.01 * np.maximum(1.0, np.abs(x))
        compared = "values"
    record = {"rows": len(frame), "compared": compared,
              "max_abs_diff": float(difference.max()) if difference.size else 0.0,
              "label_agreement": float(agree.mean()) if agree.size else 1.0}
    metrics = _metrics(task, frame, expected, got)
    if metrics:
        record["metrics"] = metrics
    return record


def _metrics(task, frame: pd.DataFrame, expected: np.ndarray, got: np.ndarray) -> dict | None:
    """Validation metrics of both models when the rows carry labels (a label the run never saw: none)."""
    from transformers import EvalPrediction

    label = task.columns.label
    if label not in frame.columns:
        return None
    try:
        references = np.asarray(task.labels.encode(frame[label], where="validation"))
    except (TextuneError, ValueError, TypeError):
        return None
    return {name: {key: round(float(value), 6) for key, value in
                   task.compute_metrics(EvalPrediction(predictions=logits, label_ids=references)).items()}
            for name, logits in (("torch", expected), ("exported", got))}


def _versions() -> dict:
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def _log(record: dict) -> None:
    logger.info("parity with PyTorch fp32 on %d %s rows: max %s difference %.2e, label agreement %.2f%%",
                record["rows"], record["source"], record["compared"], record["max_abs_diff"],
                100 * record["label_agreement"])
