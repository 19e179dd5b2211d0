"""Command-line arguments of `textune train`: run_classification.py's flags plus textune's own.

Every default lives here, in the dataclass field; the CLI and JSON/YAML files only override.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from .distributed import launched_on_several_processes
from .dropout import DROPOUT_MODES
from ..errors import TextuneError
from .hardware import accelerator_present, resolve_bf16
from .head_learning_rate import resolve_head_learning_rate

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


@dataclass
class ModelArguments:
    """Which pretrained model, config and tokenizer to fine-tune (run_classification.py's ModelArguments)."""

    model_name_or_path: str = field(
        default="minilm",
        metadata={"help": "Hub id, local directory, or alias of a packaged model (`textune models`: minilm)."},
    )
    config_name: str | None = field(default=None, metadata={"help": "Config name or path if not the model's."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer name or path if not the model's."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where to store models downloaded from the hub."})
    use_fast_tokenizer: bool = field(default=True, metadata={"help": "Use a fast (Rust) tokenizer."})
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of a hub model."})
    token: str | None = field(default=None, metadata={"help": "Hub token for private models."})
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Execute model code shipped with a hub repository. Off unless you trust the repo."},
    )
    ignore_mismatched_sizes: bool = field(
        default=False, metadata={"help": "Load a checkpoint whose head has a different shape."}
    )
    head: str = field(
        default="linear",
        metadata={"help": "Classification head: linear (transformers' own), mlp, mean_pool, multisample_dropout, "
                          "or a name registered with textune.register_head."},
    )
    pooling: str | None = field(
        default=None, metadata={"help": "How the encoder output is pooled for the head: cls or mean. "
                                        "Default: the head's own (mean for mean_pool, else cls)."},
    )
    head_dropout: float = field(default=0.1, metadata={"help": "Dropout before the head (textune heads; see --dropout)."})
    allow_pickle: bool = field(
        default=False,
        metadata={"help": "Allow pickle weights (pytorch_model.bin); they can run code when loaded. Default: safetensors only."},
    )


@dataclass
class DataArguments:
    """What data to train, evaluate and predict on (run_classification.py's DataTrainingArguments + textune's)."""

    dataset_name: str | None = field(default=None, metadata={"help": "A dataset on the hub (needs the network)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_file: str | None = field(default=None, metadata={"help": "Training data: csv, tsv, json, jsonl or parquet."})
    validation_file: str | None = field(
        default=None, metadata={"help": "Validation data. Without it, --validation_split_percentage of train is held out."}
    )
    test_file: str | None = field(default=None, metadata={"help": "Data to predict on; a label column is optional."})
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
    validation_split_percentage: int = field(
        default=10, metadata={"help": "Percent of train held out (stratified) when there is no validation file."}
    )
    train_split_name: str | None = field(default=None, metadata={"help": "Split of --dataset_name used for training."})
    validation_split_name: str | None = field(default=None, metadata={"help": "Split of --dataset_name for validation."})
    test_split_name: str | None = field(default=None, metadata={"help": "Split of --dataset_name for prediction."})
    remove_splits: str | None = field(default=None, metadata={"help": "Comma-separated splits to drop."})
    remove_columns: str | None = field(default=None, metadata={"help": "Comma-separated columns to drop."})
    max_seq_length: int = field(
        default=128, metadata={"help": "Cap on tokens per example; longer texts are truncated."}
    )
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every example to --max_seq_length (slow). Default: pad per batch."}
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenization."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Accepted for compatibility; nothing is cached."})
    shuffle_train_dataset: bool = field(default=False, metadata={"help": "Shuffle the training rows once before use."})
    shuffle_seed: int = field(default=42, metadata={"help": "Seed for --shuffle_train_dataset."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use at most this many validation rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use at most this many test rows."})
    metric_name: str | None = field(
        default=None,
        metadata={"help": "Extra metric (accuracy, f1, matthews_correlation, roc_auc, mse, ...) or a metric script path."},
    )
    preprocess: str | None = field(
        default=None,
        metadata={"help": "Comma-separated preprocessing steps applied to every split and at prediction: "
                          "lowercase, normalize_tweets, join_keyword_location, or registered names."},
    )
    encoding: str | None = field(default=None, metadata={"help": "Text encoding of the data files. Default: utf-8."})
    large_data: str = field(
        default="auto",
        metadata={"help": "Keep --train_file on disk, raw and tokenized, as memory-mapped Arrow files (in "
                          "HF_DATASETS_CACHE, deleted after the run) instead of in RAM: true, false, or auto (true "
                          "for a train file of 64 MB or more).", "choices": ["auto", "true", "false"]},
    )

    def __post_init__(self):
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise TextuneError(
                f"--problem_type {self.problem_type!r} is not known: use one of {', '.join(PROBLEM_TYPES)}"
            )
        if self.label_names is not None:  # syntax errors now; names vs the training labels once they are read
            from ..tasks.classification.labels import parse_label_names

            parse_label_names(self.label_names)
        if not 0 < self.validation_split_percentage < 100:
            raise TextuneError(
                f"--validation_split_percentage must be between 1 and 99, got {self.validation_split_percentage}"
            )
        if self.max_seq_length < 1:
            raise TextuneError(f"--max_seq_length must be positive, got {self.max_seq_length}")
        # library callers may pass a bool; the run record keeps the flag's spelling
        self.large_data = {True: "true", False: "false"}.get(self.large_data, str(self.large_data).lower())
        if self.large_data not in ("auto", "true", "false"):
            raise TextuneError(f"--large_data must be auto, true or false, got {self.large_data!r}")

    @property
    def text_columns(self) -> list[str] | None:
        if not self.text_column_names:
            return None
        return [name.strip() for name in self.text_column_names.split(",") if name.strip()]


@dataclass
class TextuneTrainingArguments(TrainingArguments):
    """transformers' TrainingArguments, plus the v4 flag `--overwrite_output_dir` that tutorials still pass."""

    logging_steps: float = field(
        default=0.05,
        metadata={"help": "Log the training loss every N steps, or every fraction of the run if below 1. "
                          "Default: 20 points per run, so short runs still get a loss curve."},
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Allow writing into a non-empty --output_dir."}
    )
    # transformers' own --label_names (the batch keys holding labels) means nothing here, where the key is always
    # `labels`; init=False keeps it out of the parser so --label_names can name the classes (DataArguments).
    label_names: list[str] | None = field(default=None, init=False)
    head_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the parameters the checkpoint did not provide (the new classification "
                          "head, and the pooler under it); the encoder trains at --learning_rate. Default: 50x "
                          "--learning_rate, so a short run trains its new head. Give the --learning_rate value for "
                          "one rate for all, as plain Trainer does."},
    )
    dropout: str = field(
        default="auto",
        metadata={"help": "Dropout while training: auto (default: none when the run sees each training row once, "
                          "--num_train_epochs <= 1 or --max_steps within one epoch, where no row repeats and "
                          "dropout only slows training; the model's rates otherwise), model (the model's rates, as "
                          "plain Trainer) or off. The saved config keeps the model's rates.",
                  "choices": list(DROPOUT_MODES)},
    )
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
    early_stopping_patience: int | None = field(
        default=None,
        metadata={"help": "Stop after this many evaluations without improvement of --metric_for_best_model. "
                          "Turns on per-epoch evaluation, saving and loading the best model unless set."},
    )
    bf16: str = field(
        default="auto",
        metadata={"help": "bf16 mixed precision: auto (where the GPU or CPU computes bf16 natively; fp32 elsewhere, "
                          "where bf16 would be slower), true or false. A bare --bf16 means true.",
                  "nargs": "?", "const": "true"},
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={"help": "Order of training rows: group_by_length (default: random batches of similar length, "
                          "so little padding is computed), random, sequential or batch_rebalance.",
                  "choices": ["random", "sequential", "group_by_length", "batch_rebalance"]},
    )
    group_by_length: bool | None = field(
        default=None,
        metadata={"help": "transformers v4's flag, still accepted: true means --train_sampling_strategy "
                          "group_by_length, false means random.", "nargs": "?", "const": True},
    )
    average_tokens_across_devices: bool = field(
        default=False,
        metadata={"help": "transformers' loss normalisation by the label count of all processes, for losses that "
                          "divide by it. Off by default: a classifier's loss is a mean per process, which Trainer "
                          "would multiply by the number of processes (reported train and eval loss N times too "
                          "high under torchrun, transformers issue 35078)."},
    )
    inference_backends: str = field(
        default="auto",
        metadata={"help": "Faster prediction backends to measure against fp32 on the validation rows once training "
                          "ends; `--backend auto` (predict, evaluate, serve) then uses the fastest that keeps 99%% "
                          "of fp32's labels and its metrics within 0.5 points, recorded in backend.json. auto: "
                          "onnx-int8 (when onnxruntime is installed), torch-int8, and torch-bf16 on CPUs with "
                          "native bf16; none: fp32; or a comma-separated list, e.g. torch-int8."},
    )
    resume: bool = field(
        default=False,
        metadata={"help": "Continue from the last complete checkpoint in --output_dir (optimizer, scheduler, RNG "
                          "and data position restored); incomplete checkpoints are skipped."},
    )

    def __post_init__(self):
        if self.hub_token:  # Trainer pickles its arguments into training_args.bin, token included
            raise TextuneError("--hub_token: a token given as an argument shows in ps and the shell history and is "
                               "saved in training_args.bin; set HF_TOKEN or run `hf auth login` instead")
        if self.early_stopping_patience is not None:
            if self.early_stopping_patience < 1:
                raise TextuneError(f"--early_stopping_patience must be at least 1, got {self.early_stopping_patience}")
            # early stopping needs evaluations to compare and the best checkpoint to return to
            if str(self.eval_strategy) in ("no", "IntervalStrategy.NO"):
                self.eval_strategy = "epoch"
                self.save_strategy = "epoch" if str(self.save_strategy) in ("steps", "SaveStrategy.STEPS") \
                    else self.save_strategy
            self.load_best_model_at_end = True
        self.head_learning_rate = resolve_head_learning_rate(self.head_learning_rate, self.learning_rate)
        if self.head_learning_rate < 0:
            raise TextuneError(f"--head_learning_rate must be >= 0, got {self.head_learning_rate}")
        if self.dropout not in DROPOUT_MODES:
            raise TextuneError(f"--dropout must be one of {', '.join(DROPOUT_MODES)}, got {self.dropout!r}")
        if self.inference_backends not in ("auto", "none"):
            from ..inference.backend_choice import resolve_candidates

            resolve_candidates(self.inference_backends)  # an unknown name fails now, not after training
        if self.focal_gamma < 0:
            raise TextuneError(f"--focal_gamma must be >= 0, got {self.focal_gamma}")
        if self.group_by_length is not None:
            self.train_sampling_strategy = "group_by_length" if self.group_by_length else "random"
        self.bf16 = resolve_bf16(self.bf16, self.fp16, self.use_cpu)
        # Without a GPU, say the run is on the CPU where Trainer needs telling: it refuses bf16 otherwise, and under
        # torchrun accelerate picks the gloo CPU backend only then (else every process trains alone, same folder).
        if (self.bf16 or launched_on_several_processes()) and not accelerator_present():
            self.use_cpu = True
        super().__post_init__()
