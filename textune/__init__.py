"""textune: fine-tune, evaluate, predict and deploy text classifiers from your own files."""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Each public name and the submodule that defines it. They load on first use (PEP 562), so `import textune` and
# the CLI's --help do not pay seconds for torch and transformers; `from textune import X` works as before.
_EXPORTS = {
    "DataArguments": "arguments",
    "ModelArguments": "arguments",
    "TextuneTrainingArguments": "arguments",
    "BackendSpec": "backends",
    "register_backend": "backends",
    "FilePredictions": "batch_predict",
    "evaluate_file": "batch_predict",
    "predict_file": "batch_predict",
    "ColumnSpec": "data",
    "read_table": "data",
    "TextuneError": "errors",
    "TrainingInterrupted": "errors",
    "ExportResult": "export",
    "export_onnx": "export",
    "EncoderClassifier": "heads",
    "register_head": "heads",
    "LabelSpec": "labels",
    "register_loss": "losses",
    "Metric": "metrics",
    "register_metric": "metrics",
    "PackagedModel": "packaged",
    "register_model_alias": "packaged",
    "Predictor": "prediction",
    "register_preprocessor": "preprocess",
    "ClassificationTask": "tasks",
    "Task": "tasks",
    "register_task": "tasks",
    "RunResult": "training",
    "train": "training",
}

__all__ = [
    "__version__",
    "BackendSpec",
    "ClassificationTask",
    "ColumnSpec",
    "DataArguments",
    "EncoderClassifier",
    "ExportResult",
    "FilePredictions",
    "LabelSpec",
    "Metric",
    "ModelArguments",
    "PackagedModel",
    "Predictor",
    "RunResult",
    "Task",
    "TextuneError",
    "TextuneTrainingArguments",
    "TrainingInterrupted",
    "evaluate_file",
    "export_onnx",
    "predict_file",
    "read_table",
    "register_backend",
    "register_head",
    "register_loss",
    "register_metric",
    "register_model_alias",
    "register_preprocessor",
    "register_task",
    "train",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
