"""Evaluation metrics computed locally with scikit-learn and scipy: a registry of named metrics.

A metric never touches the network. `--metric_name` takes a registered name or the path of a local
evaluate-style metric script.
"""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...errors import TextuneError
from .labels import MULTI, REGRESSION, SINGLE


@dataclass(frozen=True)
class Metric:
    """A named metric: `fn(predictions, references, **context) -> dict[str, float]`.

    Attributes:
        fn: Gets hard predictions (class ids, multi-hot rows, or floats) and references; with
            `needs_scores` it gets probabilities (classification) in `predictions` instead.
        problem_types: The problem types it applies to.
        needs_scores: Whether it needs probabilities rather than predicted labels (roc_auc).
    """

    fn: Callable[..., dict]
    problem_types: tuple[str, ...] = (SINGLE, MULTI)
    needs_scores: bool = False


METRICS: dict[str, Metric] = {}


def register_metric(name: str, metric: Metric | Callable[..., dict], problem_types: tuple[str, ...] | None = None) -> None:
    """Register a metric under `name` so `--metric_name name` and config files can select it."""
    if not isinstance(metric, Metric):
        metric = Metric(_accepting_context(metric), problem_types or (SINGLE, MULTI, REGRESSION))
    METRICS[name] = metric


def _accepting_context(fn: Callable[..., dict]) -> Callable[..., dict]:
    """Let a plain `(predictions, references) -> dict` callable be called with the metric context."""
    parameters = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return fn
    return lambda predictions, references, **context: dict(fn(predictions, references))


def _average(context: dict) -> str:
    if context["problem_type"] == MULTI:
        return "micro"
    return "binary" if context["num_labels"] == 2 else "macro"


def _accuracy(predictions, references, **context):
    from sklearn.metrics import accuracy_score

    return {"accuracy": float(accuracy_score(references, predictions))}


def _prf(kind: str):
    def compute(predictions, references, **context):
        from sklearn import metrics as sk

        fn = {"f1": sk.f1_score, "precision": sk.precision_score, "recall": sk.recall_score}[kind]
        return {kind: float(fn(references, predictions, average=_average(context), zero_division=0))}

    return compute


def _mcc(predictions, references, **context):
    from sklearn.metrics import matthews_corrcoef

    return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}


def _roc_auc(scores, references, **context):
    from sklearn.metrics import roc_auc_score

    try:
        if context["problem_type"] == SINGLE and context["num_labels"] == 2:
            value = roc_auc_score(references, scores[:, 1])
        elif context["problem_type"] == SINGLE:
            value = roc_auc_score(references, scores, multi_class="ovr", labels=list(range(context["num_labels"])))
        else:
            value = roc_auc_score(references, scores, average="micro")
    except ValueError:  # only one class present in the references
        value = float("nan")
    return {"roc_auc": float(value)}


def _regression(kind: str):
    def compute(predictions, references, **context):
        from scipy import stats
        from sklearn import metrics as sk

        if kind == "pearsonr":
            return {"pearsonr": float(stats.pearsonr(predictions, references)[0])}
        if kind == "spearmanr":
            return {"spearmanr": float(stats.spearmanr(predictions, references)[0])}
        fn = {"mse": sk.mean_squared_error, "mae": sk.mean_absolute_error, "r2": sk.r2_score}[kind]
        return {kind: float(fn(references, predictions))}

    return compute


for _name in ("accuracy",):
    register_metric(_name, Metric(_accuracy))
for _name in ("f1", "precision", "recall"):
    register_metric(_name, Metric(_prf(_name)))
register_metric("matthews_correlation", Metric(_mcc, (SINGLE,)))
register_metric("roc_auc", Metric(_roc_auc, (SINGLE, MULTI), needs_scores=True))
for _name in ("mse", "mae", "r2", "pearsonr", "spearmanr"):
    register_metric(_name, Metric(_regression(_name), (REGRESSION,)))

DEFAULT_METRICS = {
    SINGLE: ("accuracy", "f1", "precision", "recall"),
    MULTI: ("accuracy", "f1", "precision", "recall"),
    REGRESSION: ("mse", "mae", "r2"),
}


def load_metric_script(path: str | Path) -> Metric:
    """Load an evaluate-style metric script (a class with `_compute`, or a `compute` function) from a file.

    The script runs in this process, without `evaluate.load`, so nothing is fetched from the hub.
    """
    path = Path(path)
    if path.is_dir():
        path = path / f"{path.name}.py"
    if not path.is_file():
        raise TextuneError(f"--metric_name {path}: no such metric script")
    spec = importlib.util.spec_from_file_location(f"textune_metric_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as error:
        raise TextuneError(f"--metric_name {path} imports a missing package ({error.name}); pip install it") from None
    classes = [obj for obj in vars(module).values()
               if inspect.isclass(obj) and obj.__module__ == module.__name__ and hasattr(obj, "_compute")]
    if classes:
        instance = classes[0]()

        def compute(predictions, references, **context):
            return dict(instance._compute(predictions=predictions, references=references))

        return Metric(compute, (SINGLE, MULTI, REGRESSION))
    if callable(getattr(module, "compute", None)):
        return Metric(_accepting_context(module.compute), (SINGLE, MULTI, REGRESSION))
    raise TextuneError(f"--metric_name {path} defines neither a metric class with _compute nor a compute() function")


def is_metric_script(metric_name: str) -> bool:
    """Whether `--metric_name` names a script (a .py file or a folder holding one) rather than a registered name."""
    return metric_name.endswith(".py") or Path(metric_name).exists()


def resolve_metrics(problem_type: str, metric_name: str | None) -> dict[str, Metric]:
    """The metrics for a run: the problem type's defaults plus `metric_name` (a name or a script path)."""
    chosen = {name: METRICS[name] for name in DEFAULT_METRICS[problem_type]}
    if metric_name is None:
        return chosen
    if metric_name in METRICS:
        metric = METRICS[metric_name]
        if problem_type not in metric.problem_types:
            raise TextuneError(f"--metric_name {metric_name} does not apply to {problem_type.replace('_', ' ')}")
        chosen[metric_name] = metric
    elif is_metric_script(metric_name):
        chosen[Path(metric_name).stem] = load_metric_script(metric_name)
    else:
        names = ", ".join(sorted(name for name, m in METRICS.items() if problem_type in m.problem_types))
        raise TextuneError(f"--metric_name {metric_name!r} is not known; use one of {names}, or a metric script path")
    return chosen


def compute_metrics(metrics: dict[str, Metric], problem_type: str, num_labels: int,
                    predictions: np.ndarray, scores: np.ndarray | None, references: np.ndarray) -> dict[str, float]:
    """Run each metric on one set of predictions and merge their results."""
    context = {"problem_type": problem_type, "num_labels": num_labels}
    results: dict[str, float] = {}
    for metric in metrics.values():
        results.update(metric.fn(scores if metric.needs_scores else predictions, references, **context))
    return results
