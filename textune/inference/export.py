"""Export a run's model to ONNX (optionally int8), checked against PyTorch before it is written.

The exported file goes into the run folder (`model.onnx`, `model_int8.onnx`) with a parity record next to it
(`model.parity.json`): how far its outputs are from PyTorch fp32 and how often its answers (the task's records)
agree, on the run's validation rows. `Predictor(backend="auto")`, and so predict, evaluate and serve, use an
export only when that record passed.

Example:
    >>> from textune.inference.export import export_onnx
    >>> result = export_onnx("runs/tweets", quantize="int8")
    >>> result.parity["agreement"], result.parity["max_abs_diff"]
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

@dataclass
class ExportResult:
    """What `export_onnx` wrote.

    Attributes:
        model: The ONNX file.
        parity_file: Its parity record (JSON).
        parity: The record: rows compared, max_abs_diff (over every output), agreement (share of rows whose
            records agree), passed, and metrics when the rows carry references.
    """

    model: Path
    parity_file: Path
    parity: dict


def export_onnx(run_dir: str | Path, output: str | Path | None = None, quantize: str | None = None, *,
                min_agreement: float = DEFAULT_MIN_AGREEMENT, parity_rows: int = DEFAULT_PARITY_ROWS,
                batch_size: int = 32, allow_pickle: bool = False, rows: pd.DataFrame | None = None,
                rows_outputs: tuple[np.ndarray, ...] | None = None) -> ExportResult:
    """Export the run's model to ONNX, compare it with PyTorch fp32 on validation rows, and write both files.

    Args:
        run_dir: A run folder written by `textune train`.
        output: The ONNX file to write; default `model.onnx` (or `model_int8.onnx`) in the run folder, where
            `--backend auto|onnx|onnx-int8` look for it.
        quantize: None for fp32, or "int8" (ONNX Runtime dynamic quantization of the matrix multiplications).
        min_agreement: The share of rows on which the export must give PyTorch's answer (`task.agreement`);
            below it nothing is written. `auto` also never picks a model below 0.99, whatever this says.
        parity_rows: At most this many validation rows are compared.
        batch_size: Features per forward pass in the comparison.
        allow_pickle: Allow pickle weights in the run folder.
        rows: Validation rows to compare on, in the run's columns (default: the run's, as `parity_sample` finds
            them); training passes the ones it holds.
        rows_outputs: PyTorch fp32's outputs on the first `parity_rows` of `rows`, when the caller has them (the
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
                              backend=OnnxBackend(exported, reference.task.output_names,
                                                  name="onnx-int8" if quantize else "onnx"))
        features = reference.features(frame)
        # rows_outputs cover exactly these rows only when the caller's rows were taken whole
        reuse = rows_outputs is not None and rows is not None and len(frame) == len(rows)
        expected = rows_outputs if reuse else reference.run(features)
        record = compare_outputs(reference.task, frame, features, expected, candidate.run(features)) | {
            "file": target.name, "format": "onnx", "quantize": quantize, "source": source,
            "min_agreement": min_agreement, "weights": weights_fingerprint(run_dir),
            "model_bytes": exported.stat().st_size, "versions": _versions(),
        }
        record["passed"] = record["agreement"] >= min_agreement
        _log(record)
        if not record["passed"]:
            hint = ("int8 changes borderline predictions: use the fp32 export, or pass --min_agreement "
                    f"{np.floor(record['agreement'] * 100) / 100:.2f} to keep it (auto will not pick it)"
                    if quantize else "please report this with the run's base model")
            raise TextuneError(
                f"the exported model gives PyTorch's answer on {record['agreement']:.1%} of {record['rows']} "
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


class OutputsOnly(torch.nn.Module):
    """Wraps a model so the exported graph takes token arrays positionally and returns only the task's outputs."""

    def __init__(self, model, input_names: list[str], output_names: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.input_names = input_names
        self.output_names = output_names

    def forward(self, *inputs):
        output = self.model(**dict(zip(self.input_names, inputs)))
        return tuple(output[name] for name in self.output_names)


def export_torch_model(predictor: Predictor, frame: pd.DataFrame, path: Path) -> None:
    """Write the predictor's PyTorch model to `path` as ONNX, named by the task's outputs, with dynamic batch and
    sequence axes (on the inputs, and on every output axis that follows the sequence length).

    Uses torch.onnx's TorchScript exporter (`dynamo=False`): on MiniLM its graph ran as fast or faster in ONNX
    Runtime than the torch.export-based one, and it exports in seconds rather than tens of seconds. Where a
    torch version no longer has it, the torch.export-based exporter (which needs onnxscript) is used instead.

    Raises:
        TextuneError: Neither exporter can export this model.
    """
    from .prediction import feature_columns, pad_right

    # Two rows, so no exporter mistakes a batch of 1 for a constant of the graph.
    sample = frame.iloc[np.arange(2) % len(frame)].reset_index(drop=True)
    features = predictor.features(sample)
    names = predictor.task.model_inputs(features)
    columns = feature_columns(features, names)
    batch = pad_right(predictor.tokenizer, [{name: columns[name][i] for name in names}
                                            for i in range(len(columns[names[0]]))], "pt")
    inputs = tuple(batch[name].to(torch.int64) for name in names)
    output_names = tuple(predictor.task.output_names)
    module = OutputsOnly(predictor.model.cpu().eval(), names, output_names).eval()
    output_axes = _sequence_axes(module, inputs, names, predictor.tokenizer.pad_token_id or 0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings say nothing a user can act on
        try:
            torch.onnx.export(module, inputs, str(path), dynamo=False, input_names=names,
                              output_names=list(output_names),
                              dynamic_axes={name: {0: "batch", 1: "sequence"} for name in names}
                              | {name: {0: "batch"} | {axis: "sequence" for axis in output_axes[name]}
                                 for name in output_names}, opset_version=OPSET)
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
                                        output_names=list(output_names),
                                        dynamic_shapes=(tuple(axes for _ in names),), opset_version=18)
        except Exception as error:  # the exporter's errors are pages long; the first line names the operator
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise TextuneError(f"this model cannot be exported to ONNX by torch {torch.__version__} ({first}); "
                               "use --backend torch") from None
        program.save(str(path))


def _sequence_axes(module: torch.nn.Module, inputs: tuple, names: list[str], pad_id: int) -> dict[str, list[int]]:
    """Each output's axes (after the batch's) that grow with the sequence: found by running one more (padded,
    masked) position, since an output's size alone cannot tell a sequence axis from, say, the classes."""
    longer = tuple(torch.nn.functional.pad(tensor, (0, 1), value=pad_id if name == "input_ids" else 0)
                   for name, tensor in zip(names, inputs))
    with torch.no_grad():
        short, long = module(*inputs), module(*longer)
    return {name: [axis for axis in range(1, a.dim()) if a.shape[axis] != b.shape[axis]]
            for name, a, b in zip(module.output_names, short, long)}


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantization of the MatMul weights inside the encoder's numbered blocks; activations are
    quantized at run time.

    Kept in fp32: the embedding tables, every layer after the blocks (pooler, the task's output layers: small, and
    where int8 moves the outputs most), and the first block, whose inputs (embeddings straight out of their
    LayerNorm) have the outliers that per-tensor activation quantization handles worst. Weights are scaled per
    output channel, in 7 bits (`reduce_range`) so the u8 x s8 multiply-adds of CPUs without VNNI cannot saturate. On MiniLM fine-tuned on the disaster tweets, agreement
    with fp32 went from 98.4% (every MatMul, 8 bits) to 99.1% of validation and 99.5% of test predictions, at about
    1.5x the throughput of fp32 ONNX on one AVX2 core, as quantizing every MatMul gave (within noise).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source), load_external_data=False)
    # Module paths survive in the exported node names: .../encoder/layer.1/... (BERT), .../layers.1/... (others)
    matmuls = [node.name for node in model.graph.node if node.op_type == "MatMul"]
    blocks = [name for name in matmuls if re.search(r"(^|/)layers?\.\d+/", name)]
    chosen = [name for name in blocks if not re.search(r"(^|/)layers?\.0/", name)]
    if not blocks:  # names without module paths (another exporter): every MatMul, as nothing tells them apart
        logger.info("int8: the exported graph's node names carry no module paths; quantizing every MatMul")
        chosen = matmuls
    if not chosen:  # one block only: nothing to quantize (an empty list would mean every node to the quantizer)
        shutil.copyfile(source, target)
        return target
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a line per tensor, and advice for images, to the root logger
    try:
        # DefaultTensorType: shape inference cannot type every intermediate of a traced transformer graph.
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         op_types_to_quantize=["MatMul"], nodes_to_quantize=chosen,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)
    return target


def parity_sample(run_dir: Path, predictor: Predictor, limit: int) -> tuple[pd.DataFrame, str]:
    """Rows to compare the export on: the run's validation rows (those the task keeps in the run folder, else
    rebuilt from the run's data files), else the task's built-in examples. Returns the rows and where they came
    from ("validation" or "example").

    Raises:
        TextuneError: None of these has a row (the message says how to get some).
    """
    task = predictor.task
    saved = task.saved_rows(run_dir, limit)
    if saved is not None and len(saved):
        return saved.head(limit).reset_index(drop=True), "validation"
    try:
        from ..serving.service import load_validation_frame

        frame = load_validation_frame(read_run_file(run_dir, flag="run folder"))
    except Exception as error:  # the data may have moved since training: fall back to the task's examples
        logger.info("parity check: the run's validation data could not be read (%s)", error)
        frame = None
    if frame is not None and len(frame):
        return frame.head(limit).reset_index(drop=True), "validation"
    examples = task.example_rows(limit)
    if examples is None or not len(examples):
        raise TextuneError(f"{run_dir}: no validation rows to check the export on (this task has no built-in "
                           "examples); run `textune report` from the folder the run was trained in, then export "
                           "again")
    return examples.reset_index(drop=True), "example"


def compare_outputs(task, rows: pd.DataFrame, features, expected: tuple[np.ndarray, ...],
                    got: tuple[np.ndarray, ...]) -> dict:
    """How far a candidate's outputs `got` are from the reference's `expected` (every output), how often their
    records agree, and both models' metrics when `rows` carry references."""
    a, b = task.decode(rows, features, expected), task.decode(rows, features, got)
    difference = max((float(np.abs(x - y).max()) for x, y in zip(expected, got) if x.size), default=0.0)
    record = {"rows": len(rows), "compared": ", ".join(task.output_names), "max_abs_diff": difference,
              "agreement": task.agreement(a, b)}
    metrics = _metrics(task, rows, a, b)
    if metrics:
        record["metrics"] = metrics
    return record


def _metrics(task, rows: pd.DataFrame, expected: pd.DataFrame, got: pd.DataFrame) -> dict | None:
    """Both models' metrics when the rows carry references (none, or ones the run never saw: None)."""
    try:
        return {name: {key: round(float(value), 6) for key, value in task.score(rows, records).items()}
                for name, records in (("torch", expected), ("exported", got))}
    except (TextuneError, KeyError, ValueError, TypeError):
        return None


def _versions() -> dict:
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def _log(record: dict) -> None:
    logger.info("parity with PyTorch fp32 on %d %s rows: max %s difference %.2e, agreement %.2f%%",
                record["rows"], record["source"], record["compared"], record["max_abs_diff"],
                100 * record["agreement"])
