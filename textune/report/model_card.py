"""The run's model card: `README.md` in the run folder, with the Hub's metadata, built offline from the run's files.

Built with `huggingface_hub`'s `ModelCardData` (metadata, model-index) and a plain template string here:
`ModelCard.from_template` needs jinja2 and a template file, and nothing here may touch the network.

Example:
    >>> from textune.report.model_card import write_model_card
    >>> write_model_card("experiments/")      # (re)writes experiments/README.md
    PosixPath('experiments/README.md')
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

from ..models.loading import model_display_name
from ..models.packaged import MODEL_ALIASES
from ..run_folder import read_run_file
from ..tasks import task_from_dict

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
# Trainer's bookkeeping in eval_results.json and counts of rows (SQuAD's HasAns_total), not measures of the model.
NOT_METRICS = ("loss", "runtime", "samples_per_second", "steps_per_second", "epoch", "samples", "_total")
HYPERPARAMETERS = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "weight_decay",
                   "warmup_steps", "lr_scheduler_type", "seed", "head_learning_rate", "dropout", "bf16", "fp16")

BODY = """
# {name}

A {kind} fine-tuned with [textune](https://pypi.org/project/textune/) from {base}.

## Outputs

{outputs}

## Training data

{data}

## Validation results

{results}

## Training hyperparameters

{hyperparameters}

## How to use

With transformers:

```python
from transformers import pipeline

pipe = pipeline("{pipeline_tag}", model="{repo}")
print(pipe({example!r}{pipeline_kwargs}))
```

With textune (applies the run's own text preprocessing and column layout, and batches):

```python
from huggingface_hub import snapshot_download
from textune import Predictor

predictor = Predictor.from_run(snapshot_download("{repo}"))
print(predictor.predict([{example!r}]))
```

## Limitations

{limitations}
"""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def validation_metrics(run_dir: Path) -> dict[str, float]:
    """The validation metrics of eval_results.json, without the `eval_` prefix and Trainer's bookkeeping."""
    found = _read_json(Path(run_dir) / "eval_results.json")
    return {key.removeprefix("eval_"): value for key, value in found.items()
            if isinstance(value, (int, float)) and not key.removeprefix("eval_").endswith(NOT_METRICS)}


def hub_base_model(base_model: str | None) -> str | None:
    """The base model as a Hub id, or None when it was a local folder or a packaged alias (no Hub id to name)."""
    if not base_model or base_model in MODEL_ALIASES or Path(base_model).expanduser().exists():
        return None
    return base_model if re.fullmatch(r"[\w.-]+(/[\w.-]+)?", base_model) and "/" in base_model else None


def build_model_card(run_dir: str | Path, repo_id: str | None = None, name: str | None = None):
    """The run's `ModelCard`: metadata (base_model, library, pipeline tag, tags, datasets, model-index) and body.

    Args:
        run_dir: A run folder written by `textune train`.
        repo_id: The id the model will have on the Hub, used in the usage examples (default: the model's name).
        name: The model's name (default: the folder's name).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    run_dir = Path(run_dir).expanduser()
    record = read_run_file(run_dir)
    card = task_from_dict(record["task"]).card()
    data_args = record.get("data_args", {})
    train_args = record.get("training_args", {})
    name = name or run_dir.resolve().name
    repo = repo_id or name
    metrics = validation_metrics(run_dir)
    dataset = data_args.get("dataset_name")
    validation_source = dataset or Path(str(data_args.get("validation_file") or "validation data")).name
    base_model = record.get("base_model")
    hub_base = hub_base_model(base_model)
    eval_results = [
        EvalResult(task_type=card["pipeline_tag"], dataset_type=dataset or "custom", dataset_name=validation_source,
                   dataset_split="validation", metric_type=metric, metric_value=value)
        for metric, value in metrics.items()
    ]
    data = ModelCardData(
        base_model=hub_base, library_name="transformers", pipeline_tag=card["pipeline_tag"],
        tags=["textune", *card.get("tags", [])],
        datasets=[dataset] if dataset else None, model_name=name, eval_results=eval_results or None,
    )
    body = BODY.format(
        name=name, kind=card["kind"], repo=repo, example=card["example"], pipeline_tag=card["pipeline_tag"],
        pipeline_kwargs="".join(f", {key}={value!r}" for key, value in (card.get("pipeline_kwargs") or {}).items()),
        base=f"[{hub_base}](https://huggingface.co/{hub_base})" if hub_base else
        f"`{model_display_name(str(base_model))}` (a local model)" if base_model else "a pretrained model",
        outputs=card.get("outputs_list") or card["outputs"], data=_data_text(run_dir, data_args),
        results=_results_text(metrics),
        hyperparameters="\n".join(f"- {key}: {train_args[key]}" for key in HYPERPARAMETERS
                                  if train_args.get(key) not in (None, False, -1)) or "- (not recorded)",
        limitations=_limitations_text(run_dir, card, metrics),
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def write_model_card(run_dir: str | Path, repo_id: str | None = None, name: str | None = None,
                     published_in: str | Path | None = None) -> Path | None:
    """Write (or rewrite) README.md in the run folder atomically, unless a README.md of the user's is there.

    Args:
        published_in: The folder the card ends up in, when it is written elsewhere first (the staging folder of
            the final save); default `run_dir`. A README.md there that is not a textune card is kept, and no card
            is written (returns None).
    """
    from ..atomic import write_text_atomically

    run_dir = Path(run_dir).expanduser()
    if holds_user_readme(Path(published_in or run_dir)):
        logger.warning("%s is not a textune model card: kept as it is, and no card written (rename it to get one)",
                       Path(published_in or run_dir) / CARD_FILE)
        return None
    return write_text_atomically(run_dir / CARD_FILE, str(build_model_card(run_dir, repo_id, name)))


def holds_user_readme(folder: Path) -> bool:
    """Whether `folder` has a README.md that textune did not write: every card textune writes has the textune tag."""
    from huggingface_hub import metadata_load

    path = folder / CARD_FILE
    if not path.is_file():
        return False
    try:
        tags = (metadata_load(path) or {}).get("tags") or []
    except Exception:  # not YAML front matter at all: certainly not ours
        return True
    return "textune" not in tags


def _data_text(run_dir: Path, data_args: dict) -> str:
    rows = {"train": _read_json(run_dir / "train_results.json").get("train_samples"),
            "validation": _read_json(run_dir / "eval_results.json").get("eval_samples")}
    sources = {"train": data_args.get("train_file"), "validation": data_args.get("validation_file"),
               "test": data_args.get("test_file")}
    lines = [f"- Dataset: `{data_args['dataset_name']}`"] if data_args.get("dataset_name") else []
    for split, source in sources.items():
        if source or rows.get(split):
            where = f"`{Path(str(source)).name}`" if source else "given in code or split from train"
            count = f", {rows[split]} rows" if rows.get(split) else ""
            lines.append(f"- {split}: {where}{count}")
    return "\n".join(lines) or "(not recorded)"


def _results_text(metrics: dict[str, float]) -> str:
    if not metrics:
        return "No validation run was recorded (train with --do_eval)."
    return "| metric | value |\n| --- | --- |\n" + "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())


def _limitations_text(run_dir: Path, card: dict, metrics: dict[str, float]) -> str:
    lines = list(card.get("limitations") or [])
    rows = _read_json(run_dir / "eval_results.json").get("eval_samples")
    if rows and "accuracy" in metrics:
        margin = 1.96 * math.sqrt(max(metrics["accuracy"] * (1 - metrics["accuracy"]), 1e-12) / rows)
        lines.append(f"- The validation set has {rows} rows: the accuracy is known to about ±{margin:.3f} "
                     "(95% interval).")
    lines.append("- It knows only what its training data shows: check it on your own data before relying on it.")
    return "\n".join(lines)
