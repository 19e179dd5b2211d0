"""What a server serves: a `Predictor` on a run folder, its results as the task's JSON-ready records, and what the
demo shows.

Everything model-related goes through `textune.inference.prediction.Predictor`; this module turns API inputs into
the task's rows (`TaskApi.rows`), the predictor's records into the API's (`TaskApi.to_records`), and gathers the
run's metadata.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..inference.generation import GenerationSettings
from ..inference.prediction import Predictor
from ..run_folder import read_run_file
from .generation_slots import generates

logger = logging.getLogger(__name__)

EXAMPLES_FILE = "textune_examples.json"  # written by export-space, where the validation file does not travel
METRICS_FILE = "eval_results.json"
NUM_EXAMPLES = 6


@dataclass
class ModelInfo:
    """What the demo page, the Space's README and the API say about the model (the task says the rest).

    Attributes:
        name: Display name (the run folder's name unless a title is given).
        base_model: The model the run was fine-tuned from.
        metrics: Validation metrics of the run, without the `eval_` prefix.
        examples: A few validation examples to try, one value per demo input component.
        headline_names: The task's `headline_metrics`: which metrics are shown first, in order.
    """

    name: str
    base_model: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    examples: list[list] = field(default_factory=list)
    headline_names: tuple[str, ...] = ()

    @property
    def headline_metrics(self) -> dict[str, float]:
        return {name: self.metrics[name] for name in self.headline_names if name in self.metrics}


class ModelService:
    """A predictor plus its metadata, answering one JSON-ready record (the task's `TaskApi.record`) per input.

    Example:
        >>> service = ModelService.from_run("experiments/")
        >>> service.predict(["Forest fire near La Ronge Sask. Canada"])
        [{'label': '1', 'scores': {'0': 0.08, '1': 0.92}}]
    """

    def __init__(self, predictor: Predictor, info: ModelInfo):
        self.predictor = predictor
        self.info = info
        self.api = self.task.api()  # a task may refuse to serve a run here (one-line TextuneError)

    @property
    def task(self):
        return self.predictor.task

    @classmethod
    def from_run(cls, run_dir: str | Path, batch_size: int = 32, allow_pickle: bool = False,
                 name: str | None = None, backend: str = "auto") -> "ModelService":
        """Load a run folder written by `textune train` (or the `model/` folder of an exported Space)."""
        run_dir = Path(run_dir).expanduser()
        predictor = Predictor.from_run(run_dir, batch_size=batch_size, allow_pickle=allow_pickle, backend=backend)
        return cls(predictor, read_model_info(run_dir, predictor, name))

    @classmethod
    def from_model(cls, model: str, batch_size: int = 32, allow_pickle: bool = False, name: str | None = None,
                   backend: str = "auto") -> "ModelService":
        """Serve a causal language model that is not a run (an alias such as smollm2, a folder, a .gguf file or a
        hub id) with the text-generation task's defaults, as `textune generate --model` loads it."""
        from ..inference.causal_lm import load_causal_lm
        from ..models.loading import model_display_name

        task, network_model, tokenizer = load_causal_lm(model, allow_pickle, flag="textune serve")
        # the folder (or hub id) the model came from: --backend's engine loads it, as for a run
        predictor = Predictor(network_model, tokenizer, task, batch_size, backend,
                              model_folder=network_model.name_or_path or model)
        return cls(predictor, ModelInfo(name=name or model_display_name(model), base_model=model_display_name(model),
                                        headline_names=tuple(task.headline_metrics)))

    def predict(self, inputs: list, generation=None) -> list[dict]:
        """One record per input, in order (blocking; the server calls it from its batching thread).

        The inputs go to the predictor as a list, not a table: a task's `encode_inputs` then skips building rows
        (classification's fast path); the others build theirs there (`TaskApi.rows`).

        Args:
            inputs: API inputs.
            generation: GenerationSettings put over the run's, for a task with `with_generation` (None: the run's).
        """
        if not inputs:
            return []
        predictor = self.predictor
        if generation is not None:
            # the same model, tokenizer and backend; only the task's settings differ
            predictor = copy.copy(predictor)
            predictor.task = predictor.task.with_generation(generation)
        return self.api.to_records(predictor.predict(list(inputs)))

    # -- a generating task (`textune.serving.generation_slots.generates`) ---------------------------------------------

    def stream(self, value, settings: GenerationSettings) -> Iterator[str]:
        """One input's output text piece by piece, generated with `settings` over the run's own (blocking; closing
        the iterator stops the model)."""
        return self.task.with_generation(settings).stream(self.predictor.model, self.predictor.tokenizer, value)

    def prompt_tokens(self, value) -> int:
        """How many tokens the model reads for one input, counted as the task renders it (its `context_ids`: a chat
        with --system_prompt and the chat template); a task without it: the tokenized prompt or chat."""
        tokenizer = self.predictor.tokenizer
        context_ids = getattr(self.task, "context_ids", None)  # optional in the Task protocol
        if context_ids is not None:
            return len(context_ids(value, tokenizer))
        if isinstance(value, dict):
            ids = tokenizer.apply_chat_template(value["messages"], add_generation_prompt=True, tokenize=True)
            return len(ids["input_ids"] if isinstance(ids, Mapping) else ids)
        return len(tokenizer(value)["input_ids"])

    def count_tokens(self, text: str) -> int:
        """Tokens in a generated text (special tokens are not in it, and none are added)."""
        return len(self.predictor.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0


def input_problem(service, value, name: str, config) -> str | None:
    """What is wrong with one API input to `service` (a ModelService), or None: the rule every route shares (/v1/predict, the OpenAI routes).

    Each text in it (a prompt, a record's fields, a chat's message contents) is not empty and within
    --max_chars_per_text; for a task that generates text, the prompt as the model reads it is within
    --max_prompt_tokens. `name` prefixes the texts' names in the message ("": a chat's are "messages[0]...").
    """
    problem = text_problem(value, name, config)
    if problem or not generates(service.task):
        return problem
    try:
        count = service.prompt_tokens(value)
    except Exception as error:  # e.g. a tokenizer without a chat template, or roles the template refuses
        return f"{name or 'the conversation'} cannot be rendered for this model ({error})".replace("\n", " ")
    if count > config.max_prompt_tokens:
        return (f"{name or 'the conversation'} is {count} tokens long; this server reads at most {config.max_prompt_tokens} "
                "(--max_prompt_tokens)")
    return None


def text_problem(value, name: str, config) -> str | None:
    """`ServeConfig.text_problem` applied to every text of an input: a text, a record's fields, a list's items."""
    if isinstance(value, str):
        return config.text_problem(value, name=name)
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return next((problem for key, item in items
                 if (problem := text_problem(item, (f"{name}.{key}" if name else key) if isinstance(key, str)
                                             else f"{name}[{key}]", config))), None)


def read_model_info(run_dir: Path, predictor: Predictor, name: str | None = None) -> ModelInfo:
    """The run's name, validation metrics and examples (missing pieces are left empty)."""
    record = read_run_file(run_dir)
    return ModelInfo(
        name=name or run_dir.resolve().name,
        base_model=record.get("base_model"),
        metrics=read_metrics(run_dir),
        examples=read_examples(run_dir, record, predictor),
        headline_names=tuple(predictor.task.headline_metrics),
    )


def read_metrics(run_dir: Path) -> dict[str, float]:
    path = run_dir / METRICS_FILE
    if not path.exists():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        logger.warning("%s is not valid JSON; the demo shows no metrics", path)
        return {}
    return {key.removeprefix("eval_"): value for key, value in values.items()
            if isinstance(value, (int, float)) and key.startswith("eval_")}


def read_examples(run_dir: Path, record: dict, predictor: Predictor, limit: int = NUM_EXAMPLES) -> list[list]:
    """Example inputs, one value per demo input: the Space's examples file, else from the run's validation rows."""
    path = run_dir / EXAMPLES_FILE
    if path.exists():
        try:
            return [example if isinstance(example, list) else [example]
                    for example in json.loads(path.read_text(encoding="utf-8"))][:limit]
        except (json.JSONDecodeError, TypeError):
            logger.warning("%s is not a JSON list of examples; the demo shows no examples", path)
            return []
    try:
        validation = load_validation_frame(record)
    except Exception as error:  # the data may have moved since training; examples are a nicety
        logger.warning("no examples for the demo: the run's validation data could not be read (%s)", error)
        return []
    if validation is None or validation.empty:
        return []
    return predictor.task.demo().examples(validation, limit)


def examples_json(examples: list[list]) -> list:
    """Examples as EXAMPLES_FILE holds them: a demo with one input keeps bare values (a list of texts)."""
    return [example[0] if len(example) == 1 else example for example in examples]


def load_validation_frame(record: dict) -> pd.DataFrame | None:
    """The run's validation rows, rebuilt the way training built them (same files, same seeded hold-out)."""
    from ..training.arguments import DataArguments
    from ..data.splits import load_splits

    data_args = dict(record.get("data_args") or {})
    if not data_args or data_args.get("dataset_name"):
        return None  # a hub dataset would mean a download at server start
    if data_args.get("large_data") == "true":
        return None  # reading a train file too big for memory, at every server start, for a few examples
    known = DataArguments.__dataclass_fields__
    arguments = DataArguments(**{key: value for key, value in data_args.items() if key in known})
    seed = (record.get("training_args") or {}).get("seed", 42)
    from ..tasks import task_from_dict

    return load_splits(arguments, seed, task=task_from_dict(record["task"])).validation
