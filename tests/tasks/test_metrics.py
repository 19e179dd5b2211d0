"""Unit tests for textune.tasks.classification.metrics: choosing metrics by name or script, and their values on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from textune.tasks.classification import metrics
from textune.errors import TextuneError
from textune.tasks.classification.labels import MULTI, REGRESSION, SINGLE
from textune.tasks.classification.metrics import compute_metrics, register_metric, resolve_metrics

EVALUATE_SCRIPT = '''
import datasets
import evaluate


class ExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="", citation="", inputs_description="",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        hits = sum(int(p == r) for p, r in zip(predictions, references))
        return {"exact": hits / len(references)}
'''

PLAIN_SCRIPT = '''
def compute(predictions, references):
    return {"hits": float(sum(int(p == r) for p, r in zip(predictions, references)))}
'''

# Binary: TP=2 FP=1 FN=0 TN=1 for the positive class 1.
BINARY_PREDICTIONS = np.array([1, 0, 1, 1])
BINARY_REFERENCES = np.array([1, 0, 0, 1])


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the metric registry, so registering in a test leaves the module as it was."""
    monkeypatch.setattr(metrics, "METRICS", dict(metrics.METRICS))
    return metrics.METRICS


@pytest.mark.parametrize(("problem_type", "names"), [
    (SINGLE, ["accuracy", "f1", "precision", "recall"]),
    (MULTI, ["accuracy", "f1", "precision", "recall"]),
    (REGRESSION, ["mse", "mae", "r2"]),
])
def test_resolve_metrics_defaults_per_problem_type(problem_type, names):
    assert list(resolve_metrics(problem_type, None)) == names


def test_resolve_metrics_adds_the_named_metric_to_the_defaults():
    chosen = resolve_metrics(SINGLE, "matthews_correlation")

    assert list(chosen) == ["accuracy", "f1", "precision", "recall", "matthews_correlation"]
    values = compute_metrics(chosen, SINGLE, 2, BINARY_PREDICTIONS, None, BINARY_REFERENCES)
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2 - 0) / sqrt(3*2*2*1)
    assert values["matthews_correlation"] == pytest.approx(2 / math.sqrt(12))


def test_resolve_metrics_refuses_an_unknown_name_listing_the_known_ones():
    with pytest.raises(TextuneError) as caught:
        resolve_metrics(SINGLE, "bleu")

    message = str(caught.value)
    assert "'bleu'" in message
    assert "accuracy, f1, matthews_correlation, precision, recall, roc_auc" in message
    assert "mse" not in message  # only names that apply to this problem type


@pytest.mark.parametrize(("problem_type", "name"), [
    (REGRESSION, "f1"),
    (REGRESSION, "roc_auc"),
    (SINGLE, "mse"),
    (MULTI, "matthews_correlation"),
])
def test_resolve_metrics_refuses_a_metric_that_does_not_apply(problem_type, name):
    with pytest.raises(TextuneError, match=f"{name} does not apply to {problem_type.replace('_', ' ')}"):
        resolve_metrics(problem_type, name)


def test_resolve_metrics_refuses_a_missing_metric_script(tmp_path):
    with pytest.raises(TextuneError, match="no such metric script"):
        resolve_metrics(SINGLE, str(tmp_path / "nope.py"))


def test_compute_metrics_binary_uses_the_positive_class():
    values = compute_metrics(resolve_metrics(SINGLE, None), SINGLE, 2, BINARY_PREDICTIONS, None, BINARY_REFERENCES)

    # positive-class F1 is 0.8; the macro average over both classes would be (0.8 + 2/3) / 2
    assert values == pytest.approx({"accuracy": 0.75, "f1": 0.8, "precision": 2 / 3, "recall": 1.0})


def test_compute_metrics_multi_class_uses_the_macro_average():
    references = np.array([0, 0, 0, 0, 1, 2])
    predictions = np.array([0, 0, 0, 1, 1, 1])
    # per class (P, R, F1): 0 -> (1, 3/4, 6/7); 1 -> (1/3, 1, 1/2); 2 -> (0, 0, 0), zero division counted as 0

    values = compute_metrics(resolve_metrics(SINGLE, None), SINGLE, 3, predictions, None, references)

    assert values == pytest.approx({
        "accuracy": 4 / 6,
        "precision": (1 + 1 / 3 + 0) / 3,
        "recall": (3 / 4 + 1 + 0) / 3,
        "f1": (6 / 7 + 1 / 2 + 0) / 3,
    })


def test_compute_metrics_multi_label_uses_subset_accuracy_and_micro_averages():
    references = np.array([[1, 0, 0], [0, 1, 0]])
    predictions = np.array([[1, 0, 1], [0, 1, 0]])

    values = compute_metrics(resolve_metrics(MULTI, None), MULTI, 3, predictions, None, references)

    # micro over all cells: TP=2 FP=1 FN=0
    assert values == pytest.approx({"accuracy": 0.5, "precision": 2 / 3, "recall": 1.0, "f1": 0.8})


def test_compute_metrics_regression():
    predictions = np.array([1.0, 2.0, 3.0])
    references = np.array([1.0, 2.0, 4.0])

    values = compute_metrics(resolve_metrics(REGRESSION, "spearmanr"), REGRESSION, 1, predictions, None, references)

    # residuals 0, 0, -1; variance of references around 7/3 sums to 14/3
    assert values == pytest.approx({"mse": 1 / 3, "mae": 1 / 3, "r2": 1 - 1 / (14 / 3), "spearmanr": 1.0})


def test_roc_auc_uses_the_probabilities_not_the_predicted_labels():
    # the hard predictions tie a negative with both positives (AUC 0.75); the scores rank every positive first
    scores = np.array([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6], [0.3, 0.7]])

    values = compute_metrics(resolve_metrics(SINGLE, "roc_auc"), SINGLE, 2, BINARY_PREDICTIONS, scores,
                             BINARY_REFERENCES)

    assert values["roc_auc"] == pytest.approx(1.0)
    assert values["accuracy"] == pytest.approx(0.75)


def test_roc_auc_multi_class_is_one_vs_rest_on_probabilities():
    references = np.array([0, 1, 2, 2])
    scores = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.2, 0.2, 0.6]])

    values = compute_metrics({"roc_auc": metrics.METRICS["roc_auc"]}, SINGLE, 3, scores.argmax(1), scores, references)

    assert values == {"roc_auc": pytest.approx(1.0)}


@pytest.mark.filterwarnings("ignore:Only one class is present")
def test_roc_auc_is_nan_when_the_references_hold_one_class():
    scores = np.array([[0.2, 0.8], [0.4, 0.6]])

    values = compute_metrics({"roc_auc": metrics.METRICS["roc_auc"]}, SINGLE, 2, np.array([1, 1]), scores,
                             np.array([1, 1]))

    assert math.isnan(values["roc_auc"])


def test_an_evaluate_metric_script_is_loaded_by_path_and_computed(tmp_path, monkeypatch):
    evaluate = pytest.importorskip("evaluate")
    # evaluate.Metric makes a cache folder on init; keep it out of the home directory
    monkeypatch.setattr(evaluate.config, "HF_METRICS_CACHE", str(tmp_path / "evaluate-cache"))
    script = tmp_path / "exact_match.py"
    script.write_text(EVALUATE_SCRIPT)

    chosen = resolve_metrics(SINGLE, str(script))

    assert list(chosen) == ["accuracy", "f1", "precision", "recall", "exact_match"]
    values = compute_metrics(chosen, SINGLE, 2, BINARY_PREDICTIONS, None, BINARY_REFERENCES)
    assert values["exact"] == pytest.approx(0.75)


def test_a_metric_script_with_a_plain_compute_function_works(tmp_path):
    script = tmp_path / "hits.py"
    script.write_text(PLAIN_SCRIPT)

    chosen = resolve_metrics(REGRESSION, str(script))

    assert "hits" in chosen
    values = compute_metrics(chosen, REGRESSION, 1, np.array([1.0, 2.0]), None, np.array([1.0, 3.0]))
    assert values["hits"] == 1.0


def test_a_metric_script_folder_is_loaded_from_the_script_named_after_it(tmp_path):
    folder = tmp_path / "hits"
    folder.mkdir()
    (folder / "hits.py").write_text(PLAIN_SCRIPT)

    chosen = resolve_metrics(SINGLE, str(folder))

    assert compute_metrics({"hits": chosen["hits"]}, SINGLE, 2, BINARY_PREDICTIONS, None, BINARY_REFERENCES) == {
        "hits": 3.0}


def test_a_metric_script_that_imports_a_missing_package_names_it(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import textune_no_such_package\n")

    with pytest.raises(TextuneError, match="textune_no_such_package"):
        resolve_metrics(SINGLE, str(script))


def test_a_metric_script_without_a_metric_is_refused(tmp_path):
    script = tmp_path / "empty.py"
    script.write_text("VALUE = 1\n")

    with pytest.raises(TextuneError, match="neither a metric class"):
        resolve_metrics(SINGLE, str(script))


def test_register_metric_with_a_plain_callable_makes_it_selectable_by_name(registry):
    def errors(predictions, references, **context):
        return {"errors": float(np.sum(predictions != references))}

    register_metric("errors", errors)

    for problem_type in (SINGLE, MULTI, REGRESSION):
        assert "errors" in resolve_metrics(problem_type, "errors")
    chosen = resolve_metrics(SINGLE, "errors")
    assert compute_metrics(chosen, SINGLE, 2, BINARY_PREDICTIONS, None, BINARY_REFERENCES)["errors"] == 1.0


def test_register_metric_limits_a_callable_to_the_given_problem_types(registry):
    register_metric("errors", lambda predictions, references, **context: {"errors": 0.0}, problem_types=(REGRESSION,))

    with pytest.raises(TextuneError, match="does not apply"):
        resolve_metrics(SINGLE, "errors")


def test_register_metric_accepts_a_callable_of_predictions_and_references_only(registry):
    register_metric("errors", lambda predictions, references: {"errors": float(np.sum(predictions != references))})

    chosen = resolve_metrics(SINGLE, "errors")

    assert compute_metrics(chosen, SINGLE, 2, BINARY_PREDICTIONS, None, BINARY_REFERENCES)["errors"] == 1.0


def test_with_metric_refuses_an_unknown_metric_when_called_not_when_scoring():
    import pandas as pd

    from textune.tasks import ClassificationTask
    from textune.tasks.classification.columns import ColumnSpec
    from textune.tasks.classification.labels import LabelSpec

    task = ClassificationTask(ColumnSpec(text=["text"], label="target"), LabelSpec.infer(pd.Series([0, 1])))
    assert "mse" not in task.metrics
    with pytest.raises(TextuneError, match="no_such_metric"):
        task.with_metric("no_such_metric")
    assert "f1" in task.with_metric("f1").metrics
