"""Choosing a run's prediction backend once, at the end of training: each faster candidate is measured on the
run's own validation rows against PyTorch fp32, and the fastest that keeps the model's answers is recorded.

The record, backend.json in the run folder, lists every candidate (rows/s on this machine as texts_per_s,
agreement of its answers with fp32's, metric change, or why it was skipped), the one chosen and why.
`--backend auto` (predict, evaluate, serve, `Predictor.from_run`) uses it while the run's weights are the ones it was measured on; fp32 otherwise.

Example:
    >>> from textune.inference.backend_choice import choose_run_backend
    >>> choice = choose_run_backend("runs/tweets", validation_frame)
    >>> choice.chosen, choice.reason
    ('torch-int8', '1.9x the rows/s of fp32 on 761 validation rows, agreement 99.6%, f1 -0.12 points')
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomically
from .backends import AUTO_MIN_AGREEMENT, BACKENDS, BackendSource, build_backend, weights_fingerprint
from ..errors import TextuneError
from ..training.hardware import cpu_has_native_bf16
from ..run_folder import BACKEND_FILE

logger = logging.getLogger(__name__)

MIN_AGREEMENT = AUTO_MIN_AGREEMENT
MAX_METRIC_DROP = 0.5  # points (percent of the task's perfect score) a candidate may lose against fp32
MAX_ROWS = 1000  # validation rows measured: enough to see a 1% change of answers, seconds on a CPU
# Fewer rows cannot tell 99% agreement from chance (one changed answer is already >1%), and a run that small is a
# trial run: fp32 it is, without the seconds of measuring and exporting.
MIN_ROWS = 100
# Metrics (of any task) where higher is better, so a drop is a loss; others (losses, errors) are not compared.
WATCHED_METRICS = ("accuracy", "f1", "matthews_correlation", "roc_auc", "r2", "pearsonr", "spearmanr",
                   "exact_match")
CHOICES = ("auto", "none")


@dataclass
class BackendChoice:
    """What backend.json records.

    Attributes:
        chosen: The backend `--backend auto` uses for this run.
        reason: One line on why, for the log and the report.
        candidates: One dict per backend measured (fp32 first): texts_per_s (rows/s), agreement (share of rows
            whose records agree with fp32's), metric_drop (points; None without references), passed, and `why`
            when it was skipped or failed.
        rows: Validation rows measured on.
        weights: Fingerprint of the weights measured; another one means the record no longer applies.
        seconds: What measuring took (added to the training run).
    """

    chosen: str
    reason: str
    candidates: list[dict] = field(default_factory=list)
    rows: int = 0
    weights: str = ""
    seconds: float = 0.0
    min_agreement: float = MIN_AGREEMENT
    max_metric_drop: float = MAX_METRIC_DROP


def resolve_candidates(value: str) -> list[str]:
    """`--inference_backends` to backend names: auto (int8 of both kinds, bf16 where the CPU has it natively),
    none, or a comma-separated list of registered names.

    Raises:
        TextuneError: A name is not a registered backend.
    """
    value = (value or "none").strip()
    if value == "none":
        return []
    if value == "auto":
        # onnx-int8 first: at equal speed the earlier candidate wins, and it is the one `textune export` documents
        return ["onnx-int8", "torch-int8"] + (["torch-bf16"] if cpu_has_native_bf16() else [])
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise TextuneError(f"--inference_backends: {', '.join(unknown)} not known; use auto, none, or names from "
                           f"{', '.join(BACKENDS)}")
    return [name for name in names if name != "torch"]


def choose_run_backend(run_dir: str | Path, frame, candidates: list[str] | None = None, *, batch_size: int = 32,
                       allow_pickle: bool = False) -> BackendChoice:
    """Measure `candidates` against PyTorch fp32 on `frame` (validation rows), write backend.json, return it.

    A candidate passes when it gives fp32's answer (`task.agreement` of their records) on at least 99% of the
    rows and no watched metric (accuracy, F1, exact match, ...) drops by more than 0.5 points; the fastest
    passing one (fp32 included) is chosen.
    With fewer than 100 validation rows fp32 is chosen: nothing could vouch for another backend.

    Args:
        run_dir: A run folder written by `textune train`.
        frame: Validation rows in the run's columns (references optional), or None.
        candidates: Backend names; default `resolve_candidates("auto")`.
        batch_size: Features per forward pass, as predict's default.
        allow_pickle: Allow pickle weights in the run folder.
    """
    from .prediction import Predictor

    run_dir = Path(run_dir)
    started = time.perf_counter()
    candidates = resolve_candidates("auto") if candidates is None else candidates
    rows = 0 if frame is None else len(frame)
    if not candidates or rows < MIN_ROWS:
        why = ("no faster candidate was asked for (--inference_backends none)" if not candidates
               else "the run has no validation rows to check a faster backend on" if not rows
               else f"{rows} validation rows are too few to check 99% agreement (at least {MIN_ROWS})")
        return write_backend_choice(run_dir, BackendChoice("torch", f"fp32: {why}",
                                                           weights=weights_fingerprint(run_dir)))
    frame = frame.head(MAX_ROWS).reset_index(drop=True)
    reference = Predictor.from_run(run_dir, batch_size, allow_pickle, backend="torch")
    features = reference.features(frame)
    expected, speed = timed_outputs(reference, frame, features)
    rows = [{"backend": "torch", "texts_per_s": speed, "agreement": 1.0, "metric_drop": 0.0, "passed": True}]
    for name in candidates:
        rows.append(measure_candidate(name, run_dir, reference, frame, features, expected, batch_size,
                                      allow_pickle))
        logger.info("backend candidate %s", _describe(rows[-1]))
    best = max((row for row in rows if row["passed"]), key=lambda row: row["texts_per_s"])
    choice = BackendChoice(best["backend"], _reason(best, rows[0], rows, len(frame)), rows, len(frame),
                           weights_fingerprint(run_dir), round(time.perf_counter() - started, 1))
    return write_backend_choice(run_dir, choice)


def measure_candidate(name: str, run_dir: Path, reference, frame, features, expected: tuple[np.ndarray, ...],
                      batch_size: int, allow_pickle: bool) -> dict:
    """One candidate's rows/s and parity with `expected` (fp32's outputs for `features`, the features of
    `frame`), or why it cannot run."""
    from .export import compare_outputs
    from .prediction import Predictor

    started = time.perf_counter()
    row = {"backend": name, "passed": False}
    try:
        if name in ("onnx", "onnx-int8"):  # its file is written (with its own parity record) only if it agrees
            from .export import export_onnx

            export_onnx(run_dir, quantize="int8" if name == "onnx-int8" else None, min_agreement=MIN_AGREEMENT,
                        parity_rows=len(frame), batch_size=batch_size, allow_pickle=allow_pickle, rows=frame,
                        rows_outputs=expected)
        backend = build_backend(name, BackendSource(run_dir, lambda: reference.model, reference.task.output_names))
    except Exception as error:  # a candidate that cannot run (an exporter or quantizer failing on this model) loses
        why = str(error) if isinstance(error, TextuneError) else f"{type(error).__name__}: {error}"
        return row | {"why": why, "setup_s": round(time.perf_counter() - started, 1)}
    row["setup_s"] = round(time.perf_counter() - started, 1)
    candidate = Predictor(None, reference.tokenizer, reference.task, batch_size, backend=backend, run_dir=run_dir)
    got, row["texts_per_s"] = timed_outputs(candidate, frame, features)
    parity = compare_outputs(reference.task, frame, features, expected, got)
    row |= {"agreement": parity["agreement"], "max_abs_diff": parity["max_abs_diff"],
            "metric_drop": metric_drop(parity.get("metrics"), reference.task.metric_scale)}
    problems = []
    if row["agreement"] < MIN_AGREEMENT:
        problems.append(f"agreement {row['agreement']:.1%} < {MIN_AGREEMENT:.0%}")
    if row["metric_drop"] is not None and row["metric_drop"][1] > MAX_METRIC_DROP:
        problems.append(f"{row['metric_drop'][0]} {row['metric_drop'][1]:.2f} points below fp32")
    row["passed"] = not problems
    if problems:
        row["why"] = "; ".join(problems)
    return row


def timed_outputs(predictor, frame, features) -> tuple[tuple[np.ndarray, ...], float]:
    """The predictor's outputs for `features` (those of `frame`) and its rows/s, encoding included (after a
    warm-up pass on the first rows, which pays one-time costs: thread pools, lazy kernels, the tokenizer's
    caches)."""
    predictor.outputs(frame.head(2 * predictor.batch_size))
    started = time.perf_counter()
    predictor.features(frame)  # timed as predict pays it; the features themselves are the caller's, the same
    outputs = predictor.run(features)
    return outputs, round(len(frame) / max(time.perf_counter() - started, 1e-9), 1)


def metric_drop(metrics: dict | None, scale: float = 1.0) -> tuple[str, float] | None:
    """The watched metric the candidate loses most on, and by how many points (percent of `scale`, the task's
    perfect score: accuracy 0.9 -> 0.8 and SQuAD's f1 90 -> 80 are both 10 points; negative: it gains); None
    without references."""
    if not metrics:
        return None
    reference, candidate = metrics["torch"], metrics["exported"]
    drops = [(name, round(100 / scale * (reference[name] - candidate[name]), 3)) for name in WATCHED_METRICS
             if name in reference and name in candidate]
    return max(drops, key=lambda drop: drop[1]) if drops else None


def _describe(row: dict) -> str:
    if "texts_per_s" not in row:
        return f"{row['backend']}: skipped ({row['why']})"
    drop = row.get("metric_drop")
    metric = f", {drop[0]} {-drop[1]:+.2f} points" if drop else ""
    verdict = "passed" if row["passed"] else f"failed: {row['why']}"
    return (f"{row['backend']}: {row['texts_per_s']} rows/s, agreement {row['agreement']:.1%}"
            f"{metric} ({verdict})")


def _reason(best: dict, fp32: dict, rows: list[dict], count: int) -> str:
    if best is fp32:
        faster = [row["backend"] for row in rows[1:] if row.get("texts_per_s", 0) > fp32["texts_per_s"]]
        return (f"fp32: no faster candidate kept the model's answers on {count} validation rows"
                + (f" ({', '.join(faster)} failed parity)" if faster else ""))
    drop = best.get("metric_drop")
    metric = f", {drop[0]} {-drop[1]:+.2f} points" if drop else ""
    return (f"{best['texts_per_s'] / fp32['texts_per_s']:.1f}x the rows/s of fp32 on {count} validation rows, "
            f"agreement {best['agreement']:.1%}{metric}")


def write_backend_choice(run_dir: Path, choice: BackendChoice) -> BackendChoice:
    write_text_atomically(Path(run_dir) / BACKEND_FILE, json.dumps(asdict(choice), indent=2) + "\n")
    return choice


def read_backend_choice(run_dir: str | Path) -> dict | None:
    """backend.json as written, or None when the run has none (or it is unreadable)."""
    try:
        record = json.loads((Path(run_dir) / BACKEND_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("chosen") else None


def recorded_backend(run_dir: Path) -> str | None:
    """What backend.json tells `auto` to use: its choice while the weights are those it measured, fp32 once
    they changed (a retrained or replaced model was never checked); None without a record."""
    record = read_backend_choice(run_dir)
    if record is None:
        return None
    if record.get("weights") != weights_fingerprint(run_dir):
        logger.warning("backend auto: %s was measured on other weights than the run's current ones; using torch "
                       "fp32 (pass --backend to choose another)", BACKEND_FILE)
        return "torch"
    chosen = record["chosen"]
    if chosen not in BACKENDS:
        logger.warning("backend auto: %s names %r, which this textune does not know; using torch fp32",
                       BACKEND_FILE, chosen)
        return "torch"
    if chosen == "torch-bf16" and not cpu_has_native_bf16():  # measured on another machine: emulated bf16 is slow
        logger.warning("backend auto: %s chose torch-bf16 on a CPU with native bf16, which this one lacks; using "
                       "torch fp32", BACKEND_FILE)
        return "torch"
    logger.info("backend auto: %s, chosen at the end of training: %s", chosen, record.get("reason", ""))
    return chosen


def measured_backends(run_dir: Path) -> set[str]:
    """The backends backend.json measured (those only skipped, e.g. for a missing package, are not among them)."""
    record = read_backend_choice(run_dir) or {}
    return {row.get("backend") for row in record.get("candidates", []) if "texts_per_s" in row}


def choose_after_training(output_dir: Path, splits, candidates: str, batch_size: int = 32) -> dict[str, Path]:
    """`choose_run_backend` for the end of `train()`, at predict's default batch size: logs what it chose and
    what it cost; a failure is a warning (the model is saved and fp32 still predicts), never a failed run."""
    names = resolve_candidates(candidates)
    try:
        frame = splits.for_report().validation
        choice = choose_run_backend(output_dir, frame, names, batch_size=batch_size)
    except Exception as error:  # noqa: BLE001 - the run itself succeeded; predict falls back to fp32
        logger.warning("could not choose a prediction backend (%s: %s); predict uses torch fp32",
                       type(error).__name__, error)
        return {}
    logger.info("prediction backend: %s (%s); measuring took %.1f s. `textune predict` uses it with --backend "
                "auto (the default); %s has the numbers", choice.chosen, choice.reason, choice.seconds,
                output_dir / BACKEND_FILE)
    return {"backend": output_dir / BACKEND_FILE}
