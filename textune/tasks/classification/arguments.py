"""`textune train`'s flags of text classification: columns, labels, metric, preprocessing, head and loss."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import TextuneError
from ..arguments import SequenceArguments

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
DEFAULT_HEAD = "linear"  # transformers' own AutoModelForSequenceClassification head


@dataclass
class ClassificationArguments(SequenceArguments):
    """Which columns hold the text and the label, how labels are read, and the head and loss that learn them
    (run_classification.py's flags, plus textune's)."""

    text_column_names: str | None = field(
        default=None,
        metadata={
            "aliases": ["--text_column_name"],
            "help": "Comma-separated text column(s), joined with --text_column_delimiter. Default: sentence or text.",
        },
    )
    text_column_delimiter: str = field(
        default=" ", metadata={"help": "Joins several text columns; escapes such as \\n mean a newline."}
    )
    text_pair_column_name: str | None = field(
        default=None, metadata={"help": "Second text column for sentence-pair tasks (e.g. hypothesis)."}
    )
    label_column_name: str | None = field(default=None, metadata={"help": "Label column. Default: label."})
    label_delimiter: str | None = field(
        default=None, metadata={"help": "Split string labels on this to make a multi-label task, e.g. ','."}
    )
    label_names: list[str] | None = field(
        default=None,
        metadata={"help": "Readable class names for config.json, predictions, the API, the demo and the report: "
                          "raw label=name pairs, comma-separated, e.g. \"0=not a disaster,1=disaster\" (unnamed "
                          "labels keep their raw value; for a label starting with '-', write --label_names=-1=...), "
                          "or the names alone in sorted label order. Data files and submission.csv keep the raw "
                          "labels. In --config, a mapping or a list."},
    )
    do_regression: bool | None = field(
        default=None, metadata={"help": "Regression instead of classification. Default: inferred from the labels."}
    )
    problem_type: str | None = field(
        default=None, metadata={"help": f"Force the problem type: one of {', '.join(PROBLEM_TYPES)}."}
    )
    metric_name: str | None = field(
        default=None,
        metadata={"help": "Extra metric (accuracy, f1, matthews_correlation, roc_auc, mse, ...) or a metric script path."},
    )
    preprocess: str | None = field(
        default=None,
        metadata={"help": "Comma-separated preprocessing steps applied to every split and at prediction: "
                          "lowercase, normalize_tweets, join_keyword_location, or registered names."},
    )
    head: str = field(
        default=DEFAULT_HEAD,
        metadata={"help": "Classification head: linear (transformers' own), mlp, mean_pool, multisample_dropout, "
                          "or a name registered with textune.register_head."},
    )
    pooling: str | None = field(
        default=None, metadata={"help": "How the encoder output is pooled for the head: cls or mean. "
                                        "Default: the head's own (mean for mean_pool, else cls)."},
    )
    head_dropout: float = field(default=0.1, metadata={"help": "Dropout before the head (textune heads; see --dropout)."})
    class_weights: str = field(
        default="none",
        metadata={"help": "Weights per class for imbalanced data: none, auto (balanced inverse frequency), "
                          "or one number per class in label order, e.g. 1,3."},
    )
    loss: str = field(
        default="cross_entropy",
        metadata={"help": "Training loss: cross_entropy (MSE for regression), focal, or a registered name."},
    )
    focal_gamma: float = field(default=2.0, metadata={"help": "Focusing parameter of --loss focal."})

    def __post_init__(self):
        super().__post_init__()
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise TextuneError(
                f"--problem_type {self.problem_type!r} is not known: use one of {', '.join(PROBLEM_TYPES)}"
            )
        if self.label_names is not None:  # syntax errors now; names vs the training labels once they are read
            from .labels import parse_label_names

            parse_label_names(self.label_names)
        if self.focal_gamma < 0:
            raise TextuneError(f"--focal_gamma must be >= 0, got {self.focal_gamma}")

    @property
    def text_columns(self) -> list[str] | None:
        if not self.text_column_names:
            return None
        return [name.strip() for name in self.text_column_names.split(",") if name.strip()]
