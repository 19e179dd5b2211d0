"""The report's PNG plots: a registry of drawing functions, each returning a figure or None when it does not apply.

Figures are built with `matplotlib.figure.Figure` and rendered by the Agg canvas, never through pyplot, so
drawing needs no display and leaves the caller's matplotlib backend alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable


NOT_CURVES = ("eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_samples")
COUNTS = ("_total",)  # counts of rows logged beside the metrics (SQuAD v2's HasAns_total), not curves to compare
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
    loss = data.task.card().get("loss")
    axes.set_title("Training and validation loss" + (f" ({loss})" if loss else ""))
    axes.set_xlabel("Training step (optimizer updates)")
    axes.set_ylabel("Loss" + (f" ({loss})" if loss else ""))
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    return figure


@register_plot("metrics")
def plot_metrics(data):
    """Every validation metric at every evaluation (one evaluation is drawn as points)."""
    evals = [entry for entry in data.history if "eval_loss" in entry]
    names = sorted({key for entry in evals for key in entry if key.startswith("eval_") and key not in NOT_CURVES
                    and not key.endswith(COUNTS) and isinstance(entry[key], (int, float))})
    figure, axes = new_figure()
    for name in names:
        points = [(entry["step"], entry[name]) for entry in evals if name in entry]
        axes.plot(*zip(*points), marker="o", markersize=4, label=name.removeprefix("eval_"))
    if not names:
        _note(axes, "The run logged no validation metrics (pass --do_eval, or --eval_strategy steps).")
    elif len(evals) == 1:
        _note(axes, "One evaluation only: pass --eval_strategy steps --eval_steps N for a curve.")
    # scores (accuracy, F1, exact match) live in [0, the task's perfect score]; errors (mse) and correlations may not
    scale = data.task.metric_scale if data.task is not None else 1.0
    scores = all(0 <= entry[name] <= scale for entry in evals for name in names if name in entry)
    _integer_steps(axes)
    axes.set_title("Validation metrics over training")
    axes.set_xlabel("Training step (optimizer updates)")
    axes.set_ylabel(f"Score (0 to {scale:g}, higher is better)" if scores else "Metric value")
    if scores:
        axes.set_ylim(-0.02 * scale, 1.02 * scale)  # a metric stuck at 0 or at the top stays visible
    axes.grid(alpha=0.3)
    if names:
        axes.legend(loc="lower right" if scores else "best")
    return figure
