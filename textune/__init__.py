"""textune: fine-tune, evaluate, predict and deploy text classifiers from your own files."""

__version__ = "0.1.0"

from .arguments import DataArguments, ModelArguments, TextuneTrainingArguments  # noqa: E402
from .backends import BackendSpec, register_backend  # noqa: E402
from .batch_predict import FilePredictions, evaluate_file, predict_file  # noqa: E402
from .data import ColumnSpec, read_table  # noqa: E402
from .errors import TextuneError, TrainingInterrupted  # noqa: E402
from .export import ExportResult, export_onnx  # noqa: E402
from .heads import EncoderClassifier, register_head  # noqa: E402
from .labels import LabelSpec  # noqa: E402
from .losses import register_loss  # noqa: E402
from .metrics import Metric, register_metric  # noqa: E402
from .packaged import PackagedModel, register_model_alias  # noqa: E402
from .prediction import Predictor  # noqa: E402
from .preprocess import register_preprocessor  # noqa: E402
from .tasks import ClassificationTask, Task, register_task  # noqa: E402
from .training import RunResult, train  # noqa: E402

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
