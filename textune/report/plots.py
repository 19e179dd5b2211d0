"""The report's PNG plots: a registry of drawing functions, each returning a figure or None when it does not apply.

Figures are built with `matplotlib.figure.Figure` and rendered by the Agg canvas, never through pyplot, so
drawing needs no display and leaves the caller's matplotlib backend alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..tasks.classification.labels import MULTI, REGRESSION, SINGLE

LOSS_NAMES = {SINGLE: "cross-entropy", MULTI: "binary cross-entropy", REGRESSION: "mean squared error"}
NOT_CURVES = ("eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_samples")
DPI = 110

PLOTS: dict[str, Callable] = {}


def register_plot(name: str):
    """Add a plot to every report: `fn(report_data) -> Figure | None`, saved as plots/<name>.png."""
    def decorate(fn):
        PLOTS[name] = fn
        return fn

    return decorate


def new_figure(width: float = 7.0, height: float = 4.2):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return figure, figure.subplots()


def draw_plots(data, folder: Path) -> dict[str, Path]:
    """Draw every registered plot that applies to this run into `folder`; returns the PNGs by name."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, draw in PLOTS.items():
        figure = draw(data)
        if figure is None:
            continue
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=DPI)
        written[name] = path
    return written


def _integer_steps(axes) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _note(axes, text: str) -> None:
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", wrap=True, fontsize=10,
              color="0.35", bbox=dict(boxstyle="round", facecolor="0.96", edgecolor="0.8"))


@register_plot("loss")
def plot_loss(data):
    """Training loss at every logging step and validation loss at every evaluation."""
    train = [(entry["step"], entry["loss"]) for entry in data.history if "loss" in entry and "step" in entry]
    evals = [(entry["step"], entry["eval_loss"]) for entry in data.history if "eval_loss" in entry]
    figure, axes = new_figure()
    if train:
        axes.plot(*zip(*train), marker="o" if len(train) < 30 else None, markersize=3, label="training (per logging step)")
    if evals:
        axes.plot(*zip(*evals), marker="s", markersize=5, label="validation")
    if len(train) < 2:
        mean = next((entry["train_loss"] for entry in data.history if "train_loss" in entry), None)
        if mean is not None and not train:
            step = data.history[-1].get("step", 0)
            axes.plot([step], [mean], marker="o", linestyle="none", label="training (mean over the run)")
        _note(axes, "Too few training losses were logged to draw a curve:\n"
                    "pass --logging_steps N (e.g. 10) and --eval_strategy steps --eval_steps M.")
    _integer_steps(axes)
    axes.set_title(f"Training and validation loss ({LOSS_NAMES[data.problem_type]})")
    axes.set_xlabel("Training step (optimizer updates)")
    axes.set_ylabel(f"Loss ({LOSS_NAMES[data.problem_type]})")
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    return figure


@register_plot("metrics")
def plot_metrics(data):
    """Every validation metric at every evaluation (one evaluation is drawn as points)."""
    evals = [entry for entry in data.history if "eval_loss" in entry]
    names = sorted({key for entry in evals for key in entry if key.startswith("eval_") and key not in NOT_CURVES
                    and isinstance(entry[key], (int, float))})
    figure, axes = new_figure()
    for name in names:
        points = [(entry["step"], entry[name]) for entry in evals if name in entry]
        axes.plot(*zip(*points), marker="o", markersize=4, label=name.removeprefix("eval_"))
    if not names:
        _note(axes, "The run logged no validation metrics (pass --do_eval, or --eval_strategy steps).")
    elif len(evals) == 1:
        _note(axes, "One evaluation only: pass --eval_strategy steps --eval_steps N for a curve.")
    classification = data.problem_type != REGRESSION
    _integer_steps(axes)
    axes.set_title("Validation metrics over training")
    axes.set_xlabel("Training step (optimizer updates)")
    axes.set_ylabel("Score (0 to 1, higher is better)" if classification else "Metric value")
    if classification:
        axes.set_ylim(-0.02, 1.02)  # a metric stuck at 0 or 1 stays visible
    axes.grid(alpha=0.3)
    if names:
        axes.legend(loc="lower right" if classification else "best")
    return figure


@register_plot("confusion_matrix")
def plot_confusion(data):
    """Counts of true vs predicted labels on validation; colour is the share of each true class."""
    if data.validation is None or data.validation.confusion is None:
        return None
    counts = data.validation.confusion
    names = data.task.labels.display_names
    n = len(names)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(4.5 + 0.35 * n, 14)
    figure, axes = new_figure(size + 1.2, size)
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="Share of the true class's rows")
    if n <= 25:
        for i in range(n):
            for j in range(n):
                axes.text(j, i, f"{counts[i, j]}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=9 if n < 8 else 7,
                          color="white" if shares[i, j] > 0.5 else "black")
    short = [name if len(name) <= 18 else name[:17] + "…" for name in names]
    axes.set_xticks(range(n), short, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    axes.set_yticks(range(n), short)
    axes.set_xlabel("Predicted label")
    axes.set_ylabel("True label")
    axes.set_title(f"Confusion matrix (validation, {int(counts.sum())} rows)")
    return figure


@register_plot("predicted_vs_true")
def plot_regression(data):
    """Predicted against true value on validation, with the line a perfect model would lie on."""
    if data.validation is None or data.problem_type != REGRESSION:
        return None
    truth, predicted = data.validation.references, data.validation.predictions
    figure, axes = new_figure(5.5, 5.2)
    axes.scatter(truth, predicted, s=12, alpha=0.6, label="validation rows")
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="0.4", label="perfect prediction (y = x)")
    r2 = data.metrics.get("eval_r2")
    title = f"Predicted vs true (validation, {len(truth)} rows"
    axes.set_title(title + (f", R² = {r2:.3f})" if r2 is not None else ")"))
    axes.set_xlabel(f"True value ({data.task.columns.label})")
    axes.set_ylabel("Predicted value")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    return figure


@register_plot("text_length")
def plot_text_length(data):
    """Tokens per text in each split, and where --max_seq_length cuts them."""
    if data.data is None:
        return None
    lengths = {role: values for role, values in data.data.token_lengths.items() if len(values)}
    if not lengths:
        return None
    figure, axes = new_figure()
    longest = max(int(values.max()) for values in lengths.values())
    shortest = min(int(values.min()) for values in lengths.values())
    cap = data.data.max_seq_length
    top = max(longest, cap) if cap <= 1.5 * longest else longest
    # whole-token bin widths (fractional ones alias into a comb pattern), at most ~50 bins
    width = max(1, int(np.ceil((top - shortest + 1) / 50)))
    bins = np.arange(shortest, top + width + 1, width) - 0.5
    for role, values in lengths.items():
        axes.hist(values, bins=bins, histtype="step", linewidth=1.6, label=f"{role} ({len(values)} texts)")
    if cap <= top:
        cut = sum(int((values > cap).sum()) for values in lengths.values())
        axes.axvline(cap, color="crimson", linestyle="--", label=f"--max_seq_length {cap} ({cut} texts truncated)")
    else:
        axes.plot([], [], " ", label=f"all texts are shorter than --max_seq_length {cap}")
    axes.set_title("Text length distribution (before truncation)")
    axes.set_xlabel("Text length (tokens, special tokens included)")
    axes.set_ylabel("Texts (rows)")
    axes.set_ylim(0, axes.get_ylim()[1] * 1.3)  # headroom so the legend does not cover the peak
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", framealpha=0.95)
    return figure
