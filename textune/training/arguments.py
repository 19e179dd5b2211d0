"""Command-line arguments of `textune train` every task shares: model, data and training (a task adds its own).

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
    allow_pickle: bool = field(
        default=False,
        metadata={"help": "Allow pickle weights (pytorch_model.bin); they can run code when loaded. Default: safetensors only."},
    )
    # LoRA (peft), with trl's flag names; textune.models.adapters applies it to any task's model.
    use_peft: bool = field(
        default=False,
        metadata={"help": "Train LoRA adapters (peft) instead of every weight: the pretrained weights stay frozen, "
                          "the task's new head trains fully; the run saves adapter_model.safetensors."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (with --use_peft)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha; the update is scaled by alpha/r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA layers' input."})
    lora_target_modules: str = field(
        default="all-linear",
        metadata={"help": "Layers that get LoRA adapters: all-linear (every linear layer but the task's new head), "
                          "or a comma-separated list of module names, e.g. query,value."},
    )
    lora_modules_to_save: str | None = field(
        default=None,
        metadata={"help": "Comma-separated modules trained fully and saved with the adapter, besides the task's new "
                          "head (which always is), e.g. pooler."},
    )

    def __post_init__(self):
        lora_flags = {name: getattr(self, name) for name in LORA_DEFAULTS if getattr(self, name) != LORA_DEFAULTS[name]}
        if lora_flags and not self.use_peft:
            raise TextuneError(f"--{next(iter(lora_flags))} sets up LoRA; add --use_peft to train with it")
        if self.lora_r < 1:
            raise TextuneError(f"--lora_r must be at least 1, got {self.lora_r}")
        if self.lora_alpha <= 0:
            raise TextuneError(f"--lora_alpha must be positive, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise TextuneError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_targets():
            raise TextuneError("--lora_target_modules is empty; give all-linear or module names, e.g. query,value")

    def lora_targets(self) -> str | list[str]:
        """--lora_target_modules as peft takes it: "all-linear", or the list of module names."""
        names = _names(self.lora_target_modules)
        return "all-linear" if [name.lower() for name in names] == ["all-linear"] else names

    def lora_saved_modules(self) -> list[str]:
        """--lora_modules_to_save as a list of module names."""
        return _names(self.lora_modules_to_save)


# The LoRA flags' defaults, read from the fields above: any other value needs --use_peft.
LORA_DEFAULTS = {item.name: item.default for item in ModelArguments.__dataclass_fields__.values()
                 if item.name.startswith("lora_")}


def _names(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


@dataclass
class DataArguments:
    """What data to train, evaluate and predict on (run_classification.py's generic DataTrainingArguments + textune's)."""

    dataset_name: str | None = field(default=None, metadata={"help": "A dataset on the hub (needs the network)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_file: str | None = field(default=None, metadata={"help": "Training data: csv, tsv, json, jsonl or parquet."})
    validation_file: str | None = field(
        default=None, metadata={"help": "Validation data. Without it, --validation_split_percentage of train is held out."}
    )
    test_file: str | None = field(
        default=None, metadata={"help": "Data to predict on; the task's reference columns are optional."}
    )
    task: str | None = field(
        default=None,
        metadata={"help": "What to train: text-classification or question-answering. Default: picked from the "
                          "columns of the training file (or of --dataset_name's train split): question and "
                          "context columns: question-answering, else text-classification. The task's own flags "
                          "follow in `--task NAME --help`."},
    )
    validation_split_percentage: int = field(
        default=10, metadata={"help": "Percent of train held out (stratified) when there is no validation file."}
    )
    train_split_name: str | None = field(default=None, metadata={"help": "Split of --dataset_name used for training."})
    validation_split_name: str | None = field(default=None, metadata={"help": "Split of --dataset_name for validation."})
    test_split_name: str | None = field(default=None, metadata={"help": "Split of --dataset_name for prediction."})
    remove_splits: str | None = field(default=None, metadata={"help": "Comma-separated splits to drop."})
    remove_columns: str | None = field(default=None, metadata={"help": "Comma-separated columns to drop."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenization."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Accepted for compatibility; nothing is cached."})
    shuffle_train_dataset: bool = field(default=False, metadata={"help": "Shuffle the training rows once before use."})
    shuffle_seed: int = field(default=42, metadata={"help": "Seed for --shuffle_train_dataset."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use at most this many validation rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use at most this many test rows."})
    encoding: str | None = field(default=None, metadata={"help": "Text encoding of the data files. Default: utf-8."})
    large_data: str = field(
        default="auto",
        metadata={"help": "Keep --train_file on disk, raw and tokenized, as memory-mapped Arrow files (in "
                          "HF_DATASETS_CACHE, deleted after the run) instead of in RAM: true, false, or auto (true "
                          "for a train file of 64 MB or more).", "choices": ["auto", "true", "false"]},
    )

    def __post_init__(self):
        if not 0 < self.validation_split_percentage < 100:
            raise TextuneError(
                f"--validation_split_percentage must be between 1 and 99, got {self.validation_split_percentage}"
            )
        # library callers may pass a bool; the run record keeps the flag's spelling
        self.large_data = {True: "true", False: "false"}.get(self.large_data, str(self.large_data).lower())
        if self.large_data not in ("auto", "true", "false"):
            raise TextuneError(f"--large_data must be auto, true or false, got {self.large_data!r}")


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
    # None until given: a run that names none of the three stages runs all of them, on the command line and in code
    do_train: bool | None = field(default=None, metadata={
        "help": "Train. Without any of --do_train, --do_eval and --do_predict, all three run.",
        "nargs": "?", "const": True})
    do_eval: bool | None = field(default=None, metadata={
        "help": "Evaluate on the validation split. Without any of --do_train, --do_eval and --do_predict, all three run.",
        "nargs": "?", "const": True})
    do_predict: bool | None = field(default=None, metadata={
        "help": "Predict on --test_file. Without any of --do_train, --do_eval and --do_predict, all three run.",
        "nargs": "?", "const": True})
    # transformers' own --label_names (the batch keys holding targets) means nothing here, where the key is always
    # `labels`; init=False keeps it out of the parser, so a task's flag may take the name (classification's does).
    label_names: list[str] | None = field(default=None, init=False)
    head_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the parameters the checkpoint did not provide (the task's new head, "
                          "and the pooler under it); the encoder trains at --learning_rate. Default: 50x "
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
                          "divide by it. Off by default: the tasks' losses are a mean per process, which Trainer "
                          "would multiply by the number of processes (reported train and eval loss N times too "
                          "high under torchrun, transformers issue 35078)."},
    )
    inference_backends: str = field(
        default="auto",
        metadata={"help": "Faster prediction backends to measure against fp32 on the validation rows once training "
                          "ends; `--backend auto` (predict, evaluate, serve) then uses the fastest that gives 99%% "
                          "of fp32's answers and keeps its metrics within 0.5 points, recorded in backend.json. auto: "
                          "onnx-int8 (when onnxruntime is installed), torch-int8, and torch-bf16 on CPUs with "
                          "native bf16; none: fp32; or a comma-separated list, e.g. torch-int8."},
    )
    resume: bool = field(
        default=False,
        metadata={"help": "Continue from the last complete checkpoint in --output_dir (optimizer, scheduler, RNG "
                          "and data position restored); incomplete checkpoints are skipped."},
    )

    def __post_init__(self):
        stages = ("do_train", "do_eval", "do_predict")
        named = any(getattr(self, stage) is not None for stage in stages)
        for stage in stages:
            setattr(self, stage, bool(getattr(self, stage)) if named else True)
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
        if self.group_by_length is not None:
            self.train_sampling_strategy = "group_by_length" if self.group_by_length else "random"
        self.bf16 = resolve_bf16(self.bf16, self.fp16, self.use_cpu)
        # Without a GPU, say the run is on the CPU where Trainer needs telling: it refuses bf16 otherwise, and under
        # torchrun accelerate picks the gloo CPU backend only then (else every process trains alone, same folder).
        if (self.bf16 or launched_on_several_processes()) and not accelerator_present():
            self.use_cpu = True
        super().__post_init__()
