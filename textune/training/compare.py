"""Choosing a backbone from evidence: fine-tune each candidate on the same data, seed and budget, then rank them.

Usage:
    textune compare --models minilm,distilbert/distilbert-base-uncased --train_file train.csv \
        --validation_file val.csv --num_train_epochs 1 --output_dir runs/compare   # plus the task's flags

Each candidate is an ordinary `textune train` run in `<output_dir>/<NN>-<name>/` (with its own report); the
leaderboard is `compare.md`, `compare.csv` and `compare.png`. A candidate that fails is listed as failed, with
the reason, and the others still run.
"""

from __future__ import annotations

import logging
import re
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path, PureWindowsPath
from typing import Sequence

import pandas as pd

from .arguments import DataArguments, ModelArguments, TextuneTrainingArguments
from ..errors import TextuneError, TrainingInterrupted
from ..run_folder import remove_outputs, remove_run_outputs

logger = logging.getLogger(__name__)

LOWER_IS_BETTER = {"mse", "mae", "loss"}
LEADERBOARD_FILES = ("compare.csv", "compare.md", "compare.png")


@dataclass
class CompareArguments:
    """What `textune compare` adds to `textune train`'s flags."""

    models: str = field(metadata={"help": "Comma-separated candidates: packaged aliases (minilm), local model "
                                          "folders or hub ids. `textune models` lists recommended ones."})
    latency_samples: int = field(default=32, metadata={
        "help": "Validation texts predicted one at a time to measure inference latency (median ms per text)."})

    def __post_init__(self):
        if not self.candidates:
            raise TextuneError("--models is empty: pass comma-separated model names, e.g. --models minilm,./my-model")
        if len(set(self.candidates)) != len(self.candidates):
            raise TextuneError(f"--models names a model twice: {self.models}")
        if self.latency_samples < 1:
            raise TextuneError(f"--latency_samples must be at least 1, got {self.latency_samples}")

    @property
    def candidates(self) -> list[str]:
        return [name.strip() for name in self.models.split(",") if name.strip()]


@dataclass
class CandidateResult:
    """One row of the leaderboard."""

    model: str
    status: str  # "ok" or "failed"
    run_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)  # validation metrics without the eval_ prefix
    train_seconds: float | None = None  # Trainer's train_runtime: optimisation only, not loading or evaluation
    latency_ms: float | None = None  # median time to predict one text, batch size 1
    backend: str | None = None  # what latency_ms ran on: the backend the run chose at the end of training
    params_m: float | None = None
    reason: str = ""


@dataclass
class Leaderboard:
    """The candidates, best first (failed ones last), the metric they are ranked by, and the files written.

    `shown_metrics` are the task's headline metrics (`Task.headline_metrics`), the leaderboard's columns and plot;
    `metric_scale` is a perfect score of them (`Task.metric_scale`: 1.0, or 100.0 for SQuAD's), the plot's axis.
    """

    results: list[CandidateResult]
    ranking_metric: str | None
    files: dict[str, Path] = field(default_factory=dict)
    shown_metrics: tuple[str, ...] = ()
    metric_scale: float = 1.0


def compare_models(compare_args: CompareArguments, model_args: ModelArguments, data_args: DataArguments,
                   training_args: TextuneTrainingArguments, task_args=None) -> Leaderboard:
    """Fine-tune every candidate with the same data, seed and budget, and write the leaderboard.

    `model_args.model_name_or_path` is replaced by each candidate; every other flag is shared, the task's own
    (`task_args`, None: its defaults) included.

    Raises:
        TextuneError: Bad data or flags (checked once, before any candidate trains), or a non-empty
            `--output_dir` without --overwrite_output_dir.
    """
    from ..data.splits import load_splits
    from .train import input_files, prepare_output_dir

    training_args = replace(training_args, do_train=True, do_eval=True, do_predict=False)
    # bad data fails here once, not once per candidate
    splits = load_splits(data_args, training_args.seed, task_args=task_args)
    root = prepare_output_dir(training_args, input_files(data_args), remove=remove_comparison)
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for number, name in enumerate(compare_args.candidates, start=1):
        run_dir = root / f"{number:02d}-{slug(name)}"
        logger.info("compare: candidate %d of %d: %s -> %s", number, len(compare_args.candidates), name, run_dir)
        results.append(run_candidate(name, run_dir, model_args, data_args, training_args, splits.validation,
                                     compare_args.latency_samples, task_args))
    metric = ranking_metric(results, splits.task.headline_metrics)
    board = Leaderboard(rank(results, metric), metric, shown_metrics=tuple(splits.task.headline_metrics),
                        metric_scale=splits.task.metric_scale)
    board.files = write_leaderboard(board, root, training_args, data_args)
    return board


def remove_comparison(root: Path) -> None:
    """What a previous comparison wrote in `root` (--overwrite_output_dir): its leaderboard and candidate runs.

    A candidate folder loses only what its run wrote, and is removed only if nothing else is left in it.
    """
    remove_outputs(root, LEADERBOARD_FILES)
    for candidate in root.glob("[0-9][0-9]-*"):
        if candidate.is_dir() and not candidate.is_symlink():
            remove_run_outputs(candidate)
            if not any(candidate.iterdir()):
                candidate.rmdir()


def run_candidate(name: str, run_dir: Path, model_args: ModelArguments, data_args: DataArguments,
                  training_args: TextuneTrainingArguments, validation: pd.DataFrame,
                  latency_samples: int, task_args=None) -> CandidateResult:
    """Train, evaluate and time one candidate; any failure becomes a failed row with its reason."""
    from .train import train

    try:
        run = train(replace(model_args, model_name_or_path=name), data_args,
                    replace(training_args, output_dir=str(run_dir), overwrite_output_dir=True), task_args)
        metrics = {key.removeprefix("eval_"): value for key, value in run.metrics.get("eval", {}).items()
                   if isinstance(value, (int, float))}
        latency, backend, params = measure_latency(run_dir, validation, latency_samples)
        return CandidateResult(name, "ok", run_dir, metrics, run.metrics.get("train", {}).get("train_runtime"),
                               latency, backend, params)
    except (TrainingInterrupted, KeyboardInterrupt):
        raise  # the user stopped the comparison, not this candidate
    except Exception as error:  # noqa: BLE001 - a broken candidate must not stop the others
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if not isinstance(error, TextuneError):
            reason = f"{type(error).__name__}: {reason}"
        logger.warning("compare: %s failed: %s", name, reason)
        return CandidateResult(name, "failed", run_dir, reason=reason)


def measure_latency(run_dir: Path, validation: pd.DataFrame, samples: int) -> tuple[float, str, float]:
    """Median milliseconds to predict one text (batch size 1, after a warm-up) on the backend `textune predict`
    would use (the run's own choice, so each candidate as it would be deployed), that backend, and parameters in
    millions."""
    from ..inference.prediction import Predictor

    predictor = Predictor.from_run(run_dir, batch_size=1)
    rows = validation.iloc[:samples]
    predictor.outputs(rows.iloc[:1])  # warm-up: first-call allocations are not latency
    timings = []
    for i in range(len(rows)):
        start = time.perf_counter()
        predictor.outputs(rows.iloc[i:i + 1])
        timings.append((time.perf_counter() - start) * 1000)
    params = sum(p.numel() for p in predictor.model.parameters()) / 1e6
    return statistics.median(timings), predictor.backend.name, params


def slug(name: str) -> str:
    """A folder name for a candidate: its last path or hub-id component, made filesystem-safe."""
    # PureWindowsPath splits on "/" and "\\" alike, so C:\\models\\bert is `bert` on every OS, not `C-models-bert`
    last = PureWindowsPath(name.rstrip("/\\")).name or name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", last).strip("-.") or "model"


def ranking_metric(results: list[CandidateResult], headline: Sequence[str]) -> str | None:
    """The first of the task's headline metrics (`Task.headline_metrics`) that the runs report."""
    reported = {key for result in results for key in result.metrics}
    for name in headline:
        if name and name in reported:
            return name
    return None


def rank(results: list[CandidateResult], metric: str | None) -> list[CandidateResult]:
    ok = [result for result in results if result.status == "ok"]
    failed = [result for result in results if result.status != "ok"]
    if metric:
        sign = 1 if metric in LOWER_IS_BETTER else -1
        ok.sort(key=lambda result: sign * result.metrics.get(metric, sign * float("inf")))  # missing: last
    return ok + failed


def leaderboard_frame(board: Leaderboard) -> pd.DataFrame:
    """compare.csv's rows: rank, model, status, the shown metrics and the loss, time, latency, size, run folder,
    reason."""
    shown = [name for name in (*board.shown_metrics, "loss")
             if any(name in result.metrics for result in board.results)]
    if board.ranking_metric and board.ranking_metric not in shown:
        shown.insert(0, board.ranking_metric)
    rows = []
    for position, result in enumerate(board.results, start=1):
        row = {"rank": position if result.status == "ok" else None, "model": result.model, "status": result.status}
        row |= {f"eval_{name}": result.metrics.get(name) for name in shown}
        row |= {"train_seconds": result.train_seconds, "latency_ms": result.latency_ms, "backend": result.backend,
                "params_millions": result.params_m, "run_dir": str(result.run_dir), "reason": result.reason}
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["rank"] = frame["rank"].astype("Int64")
    return frame


def write_leaderboard(board: Leaderboard, root: Path, training_args: TextuneTrainingArguments,
                      data_args: DataArguments) -> dict[str, Path]:
    frame = leaderboard_frame(board)
    files = {"leaderboard_csv": root / "compare.csv", "leaderboard": root / "compare.md"}
    frame.to_csv(files["leaderboard_csv"], index=False)
    files["leaderboard"].write_text(leaderboard_markdown(frame, board, training_args, data_args), encoding="utf-8")
    if any(result.status == "ok" for result in board.results):
        files["leaderboard_plot"] = plot_leaderboard(board, root / "compare.png")
    return files


def leaderboard_markdown(frame: pd.DataFrame, board: Leaderboard, training_args: TextuneTrainingArguments,
                         data_args: DataArguments) -> str:
    budget = (f"max_steps {training_args.max_steps}" if training_args.max_steps and training_args.max_steps > 0
              else f"{training_args.num_train_epochs:g} epoch(s)")
    lines = [
        "# Model comparison", "",
        f"Same data, seed and budget for every candidate: train {data_args.train_file or 'demo data'}, "
        f"validation {data_args.validation_file or f'{data_args.validation_split_percentage}% of train'}"
        f"{f', at most {data_args.max_train_samples} training rows' if data_args.max_train_samples else ''}; "
        f"seed {training_args.seed}; {budget}, batch size {training_args.per_device_train_batch_size}, "
        f"learning rate {training_args.learning_rate:g}.",
        f"Ranked by validation {board.ranking_metric or '(no metric)'}"
        f"{' (lower is better)' if board.ranking_metric in LOWER_IS_BETTER else ''}. Training time is the "
        "optimisation only; latency is the median time to predict one text (batch size 1) on this machine, on the backend each run "
        "chose at the end of training (`backend`), as `textune predict` runs it.", "",
    ]
    shown = frame.drop(columns=["reason", "run_dir"]).copy()
    shown["report"] = [f"{Path(path).name}/report.html" if status == "ok" else "" for path, status
                       in zip(frame["run_dir"], frame["status"])]
    headers = list(shown.columns)
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "|".join(" --- " for _ in headers) + "|")
    for row in shown.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(value, column) for value, column in zip(row, headers)) + " |")
    failed = [result for result in board.results if result.status != "ok"]
    if failed:
        lines += ["", "Failed:", ""] + [f"- `{result.model}`: {result.reason}" for result in failed]
    if any(result.status == "ok" for result in board.results):
        lines += ["", "![Validation score against training time and latency](compare.png)"]
    return "\n".join(lines) + "\n"


COLUMN_FORMATS = {"train_seconds": "{:,.1f}", "latency_ms": "{:,.1f}", "params_millions": "{:,.1f}"}


def _cell(value, column: str = "") -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        if column == "params_millions" and value < 1:
            return f"{value:.3f}"  # tiny test models
        return COLUMN_FORMATS.get(column, "{:.4f}").format(value)
    return str(value).replace("|", "\\|")


def plot_leaderboard(board: Leaderboard, path: Path) -> Path:
    """The first two shown metrics (or the ranking metric) against training time and against latency."""
    leaderboard_figure(board).savefig(path)
    return path


def leaderboard_figure(board: Leaderboard):
    """compare.png's figure: a score axis from 0 to the task's perfect score when every point lies in it."""
    from matplotlib.figure import Figure

    ok = [result for result in board.results if result.status == "ok"]
    scores = [name for name in board.shown_metrics if any(name in result.metrics for result in ok)][:2]
    if not scores and board.ranking_metric:
        scores = [board.ranking_metric]
    figure = Figure(figsize=(11, 4.6), dpi=110, layout="constrained")
    axes_pair = figure.subplots(1, 2, sharey=True)
    for axes, attribute, label in ((axes_pair[0], "train_seconds", "Training time (s)"),
                                   (axes_pair[1], "latency_ms", "Inference latency (ms per text, batch size 1)")):
        for number, metric in enumerate(scores):
            points = [(getattr(r, attribute), r.metrics[metric], r.model) for r in ok
                      if getattr(r, attribute) is not None and metric in r.metrics]
            if not points:
                continue
            xs, ys, names = zip(*points)
            axes.scatter(xs, ys, marker="o^"[number], s=50, label=f"validation {metric}")
            if number == 0:  # one name per model is enough; the other metric sits right above or below it
                at: dict[tuple, list[str]] = {}  # models on the same spot share one label instead of overprinting
                for x, y, name in zip(xs, ys, names):
                    at.setdefault((round(x, 1), round(y, 3)), []).append(slug(name))
                for (x, y), together in at.items():
                    axes.annotate(", ".join(together), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
        costs = [getattr(r, attribute) for r in ok if getattr(r, attribute) is not None]
        if costs:  # cost axes start at zero so ratios between models read true; room on the right for names
            axes.set_xlim(0, max(costs) * 1.3)
        axes.set_xlabel(label)
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right")
    scale = board.metric_scale
    values = [r.metrics[name] for r in ok for name in scores if name in r.metrics]
    # scores between 0 and a perfect score read true on a full axis; errors (lower is better) and metrics outside it
    # (r2, matthews_correlation below 0) keep matplotlib's
    bounded = bool(values) and not set(scores) & LOWER_IS_BETTER and all(0 <= value <= scale for value in values)
    axes_pair[0].set_ylabel(f"Validation score (0 to {scale:g})" if bounded else "Validation metric")
    if bounded:
        axes_pair[0].set_ylim(-0.02 * scale, 1.02 * scale)
    failed = [slug(result.model) for result in board.results if result.status != "ok"]
    title = "Model comparison: validation score vs cost (up and left is better)"
    figure.suptitle(title + (f"\nfailed: {', '.join(failed)}" if failed else ""))
    return figure
