"""The `train` flow: data, task, model, transforms, Trainer, save, evaluate, predict. Reads top to bottom.

Example:
    >>> from textune import train
    >>> from textune.training.arguments import ModelArguments, DataArguments, TextuneTrainingArguments
    >>> train(ModelArguments("minilm"), DataArguments(train_file="train.csv"),
    ...       TextuneTrainingArguments(output_dir="runs/first", num_train_epochs=1))
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .arguments import DataArguments, ModelArguments, TextuneTrainingArguments
from .checkpoints import (StopOnSignal, checkpoint_folders, checkpoint_problem, find_resumable_checkpoint,
                          layout_mismatch, save_final_model)
from .distributed import barrier
from ..errors import TextuneError, TrainingInterrupted
from .hardware import describe_precision
from ..hub import check_hub_before_training, push_after_training
from ..report.model_card import write_model_card
from ..models.adapters import adapter_record, name_base_model
from ..models.loading import check_model_folder, resolve_model
from ..inference.prediction import Predictor
from ..run_folder import check_replaceable, remove_run_outputs, write_run_file
from ..data.large_data import encode_split, load_run_splits
from ..data.splits import DataInput

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a training run produced: its folder, metrics by stage, and the files it wrote."""

    output_dir: Path
    metrics: dict[str, dict] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def prepare_output_dir(training_args: TextuneTrainingArguments, input_files: list[str | Path] = (),
                       remove=remove_run_outputs) -> Path:
    """Refuse to mix a new run into a non-empty folder unless --overwrite_output_dir or --resume says so.

    --overwrite_output_dir removes what a previous run wrote there (`remove`: RUN_OUTPUTS and textune's model
    card), not the folder: other files are kept. A folder that is (or holds) the current folder, the home folder, or an
    input file is refused outright.
    """
    output_dir = Path(training_args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise TextuneError(f"--output_dir {output_dir} is a file; choose a folder")
    fresh = starts_afresh(training_args)
    if fresh and training_args.overwrite_output_dir:
        check_replaceable(output_dir, input_files)
    replace = fresh and output_dir.is_dir() and any(output_dir.iterdir())
    if replace and not training_args.overwrite_output_dir:
        hint = "--resume to continue it, " if any(output_dir.glob("checkpoint-*")) else ""
        raise TextuneError(
            f"--output_dir {output_dir} is not empty; pass {hint}--overwrite_output_dir to replace it, "
            "or choose another folder"
        )
    # Several processes (torchrun): all have looked at the folder before one empties it (the one that writes to
    # this disk: rank 0, or one per node with --save_on_each_node), and none writes into it before it is done.
    barrier()
    if replace and training_args.should_save:
        remove(output_dir)
    barrier()
    return output_dir


def starts_afresh(training_args: TextuneTrainingArguments) -> bool:
    """Whether this run trains from the start in --output_dir (neither --resume nor --resume_from_checkpoint)."""
    return training_args.do_train and not (training_args.resume or training_args.resume_from_checkpoint)


def input_files(data_args: DataArguments) -> list[str]:
    """The data files a run reads, which --overwrite_output_dir must never be able to remove."""
    return [name for name in (data_args.train_file, data_args.validation_file, data_args.test_file) if name]


def checkpoint_to_resume(training_args: TextuneTrainingArguments, output_dir: Path) -> str | None:
    """The checkpoint --resume or --resume_from_checkpoint asks for, checked to be complete and loadable.

    Raises:
        TextuneError: The checkpoint asked for, or every checkpoint folder --resume finds, cannot be resumed
            (training from step 0 would silently redo the run and write over the old checkpoint numbers).
    """
    if training_args.resume_from_checkpoint:
        path = Path(training_args.resume_from_checkpoint)
        problem = checkpoint_problem(path) if path.is_dir() else "no such folder"
        if problem:
            raise TextuneError(f"--resume_from_checkpoint {path}: {problem}; pass --resume to use the last complete one")
    elif training_args.resume:
        path = find_resumable_checkpoint(output_dir)
        if path is None:
            folders = checkpoint_folders(output_dir)
            if folders:
                raise TextuneError(f"--resume: no checkpoint in {output_dir} can be resumed ({folders[0].name}: "
                                   f"{checkpoint_problem(folders[0])}); remove the checkpoint-* folders to train "
                                   "from the start")
            logger.warning("--resume: no checkpoint in %s; training from the start", output_dir)
            return None
        logger.info("resuming from %s", path)
    else:
        return None
    mismatch = layout_mismatch(path, bool(training_args.deepspeed), bool(training_args.fsdp))
    if mismatch:
        raise TextuneError(f"--resume: {mismatch}")
    return str(path)


def train(model_args: ModelArguments, data_args: DataArguments, training_args: TextuneTrainingArguments,
          task_args=None, *, train_data: DataInput | None = None, validation_data: DataInput | None = None,
          test_data: DataInput | None = None) -> RunResult:
    """Fine-tune, evaluate and predict as the flags ask, writing everything under `training_args.output_dir`.

    Args:
        model_args, data_args, training_args: What `textune train` parses from its flags.
        task_args: The task's own flags (an instance of its `arguments` dataclass); None: the
            defaults of `--task`, or of the task picked from the training rows' columns.
        train_data, validation_data, test_data: Data given in code instead of files: a pandas DataFrame,
            a `datasets.Dataset`, or a callable returning one (e.g. reading a database table).

    Raises:
        TextuneError: Bad input (files, columns, targets, model); nothing is written in that case.
    """
    from transformers import set_seed

    set_seed(training_args.seed)
    if starts_afresh(training_args) and training_args.overwrite_output_dir:  # refused before minutes of loading
        check_replaceable(Path(training_args.output_dir), input_files(data_args))
    # 1. Data and task: every input check happens here, before anything is written.
    splits = load_run_splits(data_args, training_args.seed, task_args=task_args,  # --large_data: rows on disk
                             given={"train": train_data, "validation": validation_data, "test": test_data})
    task = splits.task
    task_args = task_args if task_args is not None else type(task).arguments()  # its defaults, for the record
    log_splits(task, splits)
    # 2. Model: tokenizer, features, the pretrained model as the task builds it, then its transforms.
    tokenizer, name_or_path, local_only = load_tokenizer(model_args)
    task = splits.task = task_for_model(task, model_args, name_or_path, local_only)
    train_set = encode_split(task, splits, "train", tokenizer, "--train_file", data_args.preprocessing_num_workers)
    eval_set = encode_split(task, splits, "validation", tokenizer, "--validation_file",
                            data_args.preprocessing_num_workers)
    model = task.build_model(name_or_path, model_args, local_only)
    model = apply_model_transforms(model, model_args, training_args)
    # 3. Trainer.
    trainer, run = build_trainer(model, tokenizer, task, task_args, splits, train_set, eval_set, data_args,
                                 training_args)
    result = RunResult(run.output_dir)
    # 4. Train and save: the model folder alone is enough to predict, evaluate and serve.
    if training_args.do_train:
        # rows, not features: a QA question makes several windows (`Predictor.score` counts rows too)
        train_and_save(trainer, run, task, task_args, model_args, data_args, training_args, splits,
                       len(splits.train), result)
    # 5. Evaluate on the validation split.
    if training_args.do_eval:
        evaluate(trainer, len(splits.validation), result)
    if training_args.do_train and run.is_main:  # the card again, now with the training rows and validation metrics
        if card := write_card(run.output_dir):
            result.files["card"] = card
    # 6. Predict on the test file (references optional).
    if training_args.do_predict and splits.test is not None and run.is_main:
        result.files.update(predict_test_rows(trainer, tokenizer, task, splits.test, run.output_dir,
                                              training_args.per_device_eval_batch_size))
    elif training_args.do_predict and splits.test is None:
        logger.warning("--do_predict without --test_file: nothing to predict")
    if training_args.do_train and run.is_main:
        from ..inference.backend_choice import choose_after_training
        from ..report import report_after_training

        # 7. Prediction backend: the fastest that keeps the model's answers on validation, for `--backend auto`.
        result.files.update(choose_after_training(run.output_dir, splits, training_args.inference_backends))
        # 8. Report: data, curves, metrics and mistakes as report.html, report.md and plots/*.png.
        result.files.update(report_after_training(run.output_dir, splits=splits, task=task, model=trainer.model,
                                                  tokenizer=tokenizer,
                                                  batch_size=training_args.per_device_eval_batch_size))
        # 9. Push the finished run folder's model files and card, once.
        if run.push_to_hub:
            logger.info("model on the Hub: %s", push_after_training(training_args, run.output_dir))
    return result


@dataclass
class TrainerRun:
    """What the steps after building the Trainer share: the run folder, the checkpoint to resume, the stop signal."""

    output_dir: Path
    resume_from: str | None
    stop_on_signal: StopOnSignal
    push_to_hub: bool
    is_main: bool


def log_splits(task, splits) -> None:
    logger.info("task: %s; train %d rows, validation %d rows, test %s rows", task.name, len(splits.train),
                len(splits.validation), "no" if splits.test is None else len(splits.test))


def load_tokenizer(model_args: ModelArguments):
    """The tokenizer of the model to fine-tune, with the model's resolved name or folder, and whether it is local."""
    from transformers import AutoTokenizer

    name_or_path, local_only = resolve_model(model_args.model_name_or_path, model_args.cache_dir,
                                             model_args.model_revision)
    if Path(name_or_path).is_dir():
        check_model_folder(name_or_path, model_args.allow_pickle)
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or name_or_path, use_fast=model_args.use_fast_tokenizer,
        cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
        trust_remote_code=model_args.trust_remote_code, local_files_only=local_only,
    )
    return tokenizer, name_or_path, local_only


def task_for_model(task, model_args: ModelArguments, name_or_path: str, local_only: bool):
    """The task as the pretrained model's config adapts it (the optional `for_model`), before any row is encoded."""
    if not hasattr(task, "for_model"):
        return task
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        model_args.config_name or name_or_path, cache_dir=model_args.cache_dir, revision=model_args.model_revision,
        token=model_args.token, trust_remote_code=model_args.trust_remote_code, local_files_only=local_only)
    return task.for_model(config)


def apply_model_transforms(model, model_args: ModelArguments, training_args: TextuneTrainingArguments):
    """The model as it trains: with --use_peft, LoRA adapters on the frozen pretrained weights (the new head trains
    fully); the same Trainer, save and reload follow for every task."""
    if model_args.use_peft:
        from ..models.adapters import apply_lora

        model = apply_lora(model, model_args)
    return model


def build_trainer(model, tokenizer, task, task_args, splits, train_set, eval_set, data_args: DataArguments,
                  training_args: TextuneTrainingArguments):
    """The Trainer, once the run folder is ready: the task's collator, metrics and training options."""
    import torch
    from transformers import EarlyStoppingCallback

    from .trainer import TextuneTrainer

    logger.info("precision: %s; training order: %s", describe_precision(training_args.bf16, training_args.fp16),
                training_args.train_sampling_strategy)
    if not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False  # pinning needs an accelerator; on a CPU it only warns
    # Trainer would push from inside save_model, into output_dir before textune_run.json exists and with the staging
    # folder: textune pushes once instead, the finished run folder, after the final move (push_after_training).
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    if push_to_hub and training_args.should_save:  # offline or no token: fail before a previous run is replaced
        check_hub_before_training(training_args, Path(training_args.output_dir))
    output_dir = prepare_output_dir(training_args, input_files(data_args))
    resume_from = checkpoint_to_resume(training_args, output_dir)
    stop_on_signal = StopOnSignal()
    callbacks = [stop_on_signal]
    if training_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=training_args.early_stopping_patience))
    trainer = TextuneTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        data_collator=task.collator(tokenizer),
        compute_metrics=metrics_from_outputs(task, splits.validation, eval_set),
        callbacks=callbacks,
        **task.training_options(training_args, train_set),
    )
    run = TrainerRun(output_dir, resume_from, stop_on_signal, push_to_hub and training_args.do_train,
                     trainer.is_world_process_zero())
    return trainer, run


def metrics_from_outputs(task, rows, features):
    """Trainer's `compute_metrics`: the validation outputs decoded into records for `rows`, then scored."""
    import numpy as np

    def compute_metrics(eval_prediction) -> dict[str, float]:
        outputs = eval_prediction.predictions
        outputs = tuple(np.asarray(array, dtype=np.float32)
                        for array in (outputs if isinstance(outputs, (tuple, list)) else (outputs,)))
        return task.score(rows, task.decode(rows, features, outputs))

    return compute_metrics


def train_and_save(trainer, run: TrainerRun, task, task_args, model_args, data_args, training_args, splits,
                   train_rows: int, result: RunResult) -> None:
    """Train (or resume), then save the final model with textune's run record and card in one move."""
    train_output = trainer.train(resume_from_checkpoint=run.resume_from)
    if run.stop_on_signal.received is not None:
        checkpoint = run.output_dir / f"checkpoint-{trainer.state.global_step}"
        raise TrainingInterrupted(run.stop_on_signal.received, str(checkpoint) if checkpoint.exists() else None)
    metrics = dict(train_output.metrics, train_samples=train_rows)
    record = run_record(task, model_args, data_args, training_args, splits.source, task_args)
    save_final_model(trainer, run.output_dir, lambda folder: write_run_files(folder, record, run.output_dir))
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    result.metrics["train"] = metrics
    if run.is_main:
        result.files["run"] = run.output_dir / "textune_run.json"
        result.files["model"] = run.output_dir


def evaluate(trainer, eval_rows: int, result: RunResult) -> None:
    metrics = trainer.evaluate()
    metrics["eval_samples"] = eval_rows
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    result.metrics["eval"] = metrics
    result.files["metrics"] = result.output_dir / "all_results.json"


def predict_test_rows(trainer, tokenizer, task, rows, output_dir: Path, batch_size: int) -> dict[str, Path]:
    """The prediction files of the test rows, from the trained model as `textune predict` would load it."""
    # Without the mixed-precision wrapper Accelerate puts on forward: predictions.csv then holds the fp32
    # values `textune predict` gives on the saved run, not bf16-rounded ones (regression values differed ~1e-3).
    inference_model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    predictor = Predictor(inference_model, tokenizer, task, batch_size)
    return task.write_predictions(output_dir, rows, predictor.records(rows, True))


def write_run_files(folder: Path, record: dict, output_dir: Path) -> None:
    """textune's own files of the final model (record and card), written in the staging folder before the move."""
    name_base_model(folder, record)  # adapter_config.json names the base as the record does, not as a local path
    write_run_file(folder, record)
    write_card(folder, name=output_dir.resolve().name, published_in=output_dir)


def write_card(folder: Path, **kwargs) -> Path | None:
    """The model card is documentation: failing to build it is a warning, never a lost run."""
    try:
        return write_model_card(folder, **kwargs)
    except Exception as error:  # e.g. a huggingface_hub whose card API changed
        logger.warning("model card not written (%s: %s); `textune report RUN` tries again", type(error).__name__,
                       error)
        return None


def run_record(task, model_args: ModelArguments, data_args: DataArguments,
               training_args: TextuneTrainingArguments, source: str, task_args=None) -> dict:
    """The resolved configuration saved as textune_run.json."""
    from .. import __version__

    keep = ("seed", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
            "per_device_eval_batch_size", "weight_decay", "warmup_steps", "lr_scheduler_type", "bf16", "fp16",
            "train_sampling_strategy", "head_learning_rate", "dropout")
    return {
        "textune_version": __version__,
        "task": task.to_dict(),
        "base_model": model_args.model_name_or_path,
        "data_source": source,
        "model_args": {k: v for k, v in asdict(model_args).items() if k != "token"},
        "data_args": asdict(data_args),
        "task_args": asdict(task_args) if task_args is not None else {},
        "training_args": {k: getattr(training_args, k) for k in keep},
        **({"adapter": adapter_record(model_args)} if model_args.use_peft else {}),
    }
