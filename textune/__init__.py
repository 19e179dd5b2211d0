"""textune: fine-tune, evaluate, predict and deploy text models (classification, extractive question answering)
from your own files."""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Each public name and the submodule that defines it. They load on first use (PEP 562), so `import textune` and
# the CLI's --help do not pay seconds for torch and transformers; `from textune import X` works as before.
_EXPORTS = {
    "DataArguments": "training.arguments",
    "ModelArguments": "training.arguments",
    "TextuneTrainingArguments": "training.arguments",
    "BackendSpec": "inference.backends",
    "register_backend": "inference.backends",
    "FilePredictions": "inference.batch_predict",
    "evaluate_file": "inference.batch_predict",
    "predict_file": "inference.batch_predict",
    "ColumnSpec": "tasks.classification.columns",
    "ClassificationArguments": "tasks.classification.arguments",
    "read_table": "data.tables",
    "TextuneError": "errors",
    "TrainingInterrupted": "errors",
    "ExportResult": "inference.export",
    "export_onnx": "inference.export",
    "EncoderClassifier": "tasks.classification.heads",
    "register_head": "tasks.classification.heads",
    "LabelSpec": "tasks.classification.labels",
    "register_loss": "tasks.classification.losses",
    "Metric": "tasks.classification.metrics",
    "register_metric": "tasks.classification.metrics",
    "PackagedModel": "models.packaged",
    "register_model_alias": "models.packaged",
    "Predictor": "inference.prediction",
    "register_preprocessor": "tasks.classification.preprocess",
    "ClassificationTask": "tasks",
    "QuestionAnsweringArguments": "tasks.question_answering",
    "QuestionAnsweringTask": "tasks",
    "Task": "tasks",
    "register_task": "tasks",
    "RunResult": "training.train",
    "train": "training.train",
}

__all__ = [
    "__version__",
    "BackendSpec",
    "ClassificationArguments",
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
    "QuestionAnsweringArguments",
    "QuestionAnsweringTask",
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
