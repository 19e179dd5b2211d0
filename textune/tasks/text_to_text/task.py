"""Text to text with sequence-to-sequence models (T5, BART, Marian, ...): summarization, translation, text2text.

The three names are one task class with a subclass each: they differ only in their name, the columns that pick
them, their headline metric and how the card speaks of them (the registry and the CLI key a task on its class's
`name` and `arguments`, so each needs a class of its own).

Generation does not fit the encoder tasks' one forward pass, so the task has the optional `generate` hook
(`protocol.py`): the Predictor calls it per batch instead of the backend. Its output is the generated token ids plus
one (float32 holds ids exactly below 2**24), so the engine's zero padding between batches reads as "no token".
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Sequence

import numpy as np
import pandas as pd

from ...atomic import atomic_write, write_text_atomically
from ...data.tables import require_columns
from ...errors import TextuneError
from ...inference.generation import GenerationSettings, seed_sampling, stream_text
from ..protocol import Section
from .arguments import SummarizationArguments, TextToTextArguments, TranslationArguments
from .metrics import TEXT_METRICS, text_metrics
from .modeling import T5_FAMILY, default_prefix, is_encoder_decoder, warm_started_model
from .reading import TRANSLATION, pick_columns, read_translation_json

logger = logging.getLogger(__name__)

GENERATED = "generated_ids"
INPUTS = ("input_ids", "attention_mask")


@dataclass
class TextToTextTask:
    """A sequence-to-sequence task on AutoModelForSeq2SeqLM; its settings are run_summarization.py's flags.

    Attributes:
        settings: The flags, with `text_column` and `summary_column` resolved from the training rows.
        overrides: Generation settings put over the run's (`textune predict --num_beams`, an API request's
            `parameters`); not saved with the run.
    """

    settings: TextToTextArguments
    overrides: GenerationSettings = field(default_factory=GenerationSettings)

    name: ClassVar[str] = "text2text"
    arguments: ClassVar[type] = TextToTextArguments
    output_names: ClassVar[tuple[str, ...]] = (GENERATED,)
    headline_metrics: ClassVar[tuple[str, ...]] = ("rougeL", "bleu", "chrf", "rouge1", "rouge2", "rougeLsum")
    metric_scale: ClassVar[float] = 100.0  # ROUGE, BLEU and chrF in percent, as the example scripts print them
    trains_on_disk: ClassVar[bool] = False
    pipeline_tag: ClassVar[str] = "text2text-generation"
    kind: ClassVar[str] = "text-to-text model"

    def __post_init__(self):
        self._tokenizer = None  # the one `encode` used: `decode` turns ids back into text with it

    @property
    def text_column(self) -> str:
        return self.settings.text_column

    @property
    def summary_column(self) -> str | None:
        return self.settings.summary_column

    # -- choosing and rebuilding the task ----------------------------------------------------------------------

    @classmethod
    def detect(cls, columns: Sequence[str]) -> str | None:
        return None  # any two text columns: only --task text2text picks it

    @classmethod
    def from_arguments(cls, task_args: TextToTextArguments | None, train_rows: pd.DataFrame,
                       where: str) -> "TextToTextTask":
        """The task for a new run, its input and reference columns resolved from the training rows' columns.

        Raises:
            TextuneError: A named column is missing, or the rows have no reference column.
        """
        settings = task_args or cls.arguments()
        text, target = pick_columns([str(c) for c in train_rows.columns], settings.text_column or
                                    getattr(settings, "source_lang", None), settings.summary_column or
                                    getattr(settings, "target_lang", None))
        if target is None:
            raise TextuneError(f"{where} has no column of references besides {text!r}; name it with --summary_column")
        task = cls(replace(settings, text_column=text, summary_column=target))
        task.check_rows(train_rows, where, with_targets=True)
        logger.info("%s: inputs from column %r, references from %r", where, text, target)
        return task

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self.settings)}

    @classmethod
    def from_dict(cls, data: dict) -> "TextToTextTask":
        """Rebuild a saved run's task from `to_dict`'s output (plain values; nothing is imported or run)."""
        known = {item.name for item in fields(cls.arguments)}
        try:
            return cls(cls.arguments(**{key: value for key, value in data.items() if key in known}))
        except TypeError as error:
            raise TextuneError(f"the run's task description is incomplete ({error}); retrain the run") from None

    # -- data --------------------------------------------------------------------------------------------------

    @classmethod
    def read(cls, path: Path, encoding: str | None, flag: str) -> pd.DataFrame | None:
        """run_translation.py's JSON rows (`{"translation": {"en": .., "es": ..}}`) as one column per language."""
        return read_translation_json(path, encoding, flag)

    def check_rows(self, rows: pd.DataFrame, where: str, with_targets: bool) -> pd.DataFrame:
        """The rows with inputs (and references) as text; rows with an empty input or reference are dropped.

        Raises:
            TextuneError: The input column (or, with targets, the reference column) is missing, naming the flag.
        """
        require_columns(rows, [self.text_column], "--text_column", where)
        if with_targets:
            require_columns(rows, [self.summary_column], "--summary_column", where)
        rows = rows.copy()
        for column in (self.text_column, self.summary_column):
            if column in rows.columns:
                rows[column] = rows[column].fillna("").astype(str)
        if with_targets:
            unusable = pd.Series(False, index=rows.index)
            for mask in self.unusable_rows(rows).values():
                unusable |= mask
            if unusable.any():
                logger.warning("%s: %d of %d rows have an empty input or reference and are left out", where,
                               int(unusable.sum()), len(rows))
                rows = rows[~unusable]
            if rows.empty:
                raise TextuneError(f"{where} has no row with both an input ({self.text_column!r}) and a reference "
                                   f"({self.summary_column!r})")
        return rows.reset_index(drop=True)

    def unusable_rows(self, rows: pd.DataFrame) -> dict[str, pd.Series]:
        def empty(column: str) -> pd.Series:
            return rows[column].fillna("").astype(str).str.strip() == ""

        return {"empty_text": empty(self.text_column), "empty_reference": empty(self.summary_column)}

    def target_columns(self) -> list[str]:
        return [self.summary_column]

    def stratify_by(self, rows: pd.DataFrame) -> pd.Series | None:
        return None

    def encode(self, rows: pd.DataFrame, tokenizer, for_training: bool, where: str = "data"):
        """Input ids of `prefix + input` cut at --max_source_length; for training also `labels`, the reference's ids
        cut at --max_target_length (--val_max_target_length for validation rows, as run_summarization.py does),
        padding there (with --pad_to_max_length) as -100 so the loss skips it."""
        self._tokenizer = tokenizer
        prefix = self.settings.source_prefix or ""
        padding = "max_length" if self.settings.pad_to_max_length else False
        encoded = tokenizer([prefix + text for text in rows[self.text_column].tolist()],
                            max_length=self.settings.max_source_length, padding=padding, truncation=True)
        features = {name: encoded[name] for name in INPUTS}
        if not for_training:
            return features
        target_length = self.settings.max_target_length
        if "validation" in where and self.settings.val_max_target_length:  # `where` names the split's flag
            target_length = self.settings.val_max_target_length
        labels = tokenizer(text_target=rows[self.summary_column].tolist(), max_length=target_length,
                           padding=padding, truncation=True)["input_ids"]
        if padding and self.settings.ignore_pad_token_for_loss:
            labels = [[-100 if token == tokenizer.pad_token_id else token for token in label] for label in labels]
        from datasets import Dataset

        return Dataset.from_dict(features | {"labels": labels})

    def collator(self, tokenizer) -> Callable:
        """DataCollatorForSeq2Seq: pads inputs with the pad token and labels with -100 (or the pad token without
        --ignore_pad_token_for_loss); the model makes its decoder inputs from the labels."""
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(
            tokenizer, label_pad_token_id=-100 if self.settings.ignore_pad_token_for_loss else tokenizer.pad_token_id,
            pad_to_multiple_of=None)

    def model_inputs(self, features) -> list[str]:
        names = features.column_names if hasattr(features, "column_names") else list(features)
        return [name for name in names if name in (*INPUTS, "labels")]

    # -- model -------------------------------------------------------------------------------------------------

    def for_model(self, config) -> "TextToTextTask":
        """With a T5-family model and no --source_prefix: the task's T5 prefix ("summarize: ", "translate English
        to Spanish: "), logged, and saved with the run so predict and serve put it before their inputs too."""
        if self.settings.source_prefix is not None or getattr(config, "model_type", "") not in T5_FAMILY:
            return self
        prefix = default_prefix(self.name, getattr(self.settings, "source_lang", None) or self.text_column,
                                getattr(self.settings, "target_lang", None) or self.summary_column)
        if prefix is None:
            logger.warning("T5 reads the task from a prefix of its input; pass --source_prefix (e.g. \"summarize: \" "
                           "or \"translate English to Spanish: \")")
            return self
        logger.info("%s model without --source_prefix: every input starts with T5's %r (saved with the run)",
                    config.model_type, prefix)
        return type(self)(replace(self.settings, source_prefix=prefix))

    def build_model(self, name_or_path: str, model_args, local_files_only: bool = False):
        """The pretrained encoder-decoder (AutoModelForSeq2SeqLM), or one warm-started from an encoder such as BERT
        (`modeling.warm_started_model`); safetensors only unless --allow_pickle."""
        from transformers import AutoConfig, AutoModelForSeq2SeqLM

        common = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
                      trust_remote_code=model_args.trust_remote_code, local_files_only=local_files_only)
        use_safetensors = None if model_args.allow_pickle else True
        config = AutoConfig.from_pretrained(model_args.config_name or name_or_path, **common)
        if not is_encoder_decoder(config):
            tokenizer = self._tokenizer
            if tokenizer is None:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or name_or_path, **common)
            return warm_started_model(name_or_path, tokenizer, common, use_safetensors)
        return AutoModelForSeq2SeqLM.from_pretrained(name_or_path, config=config, use_safetensors=use_safetensors,
                                                     **common)

    def load_model(self, run_dir: str | Path, allow_pickle: bool = False):
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM.from_pretrained(run_dir, use_safetensors=None if allow_pickle else True)

    def training_options(self, training_args, train_features) -> dict[str, Any]:
        """The model's own loss (cross-entropy of the reference tokens, -100 positions skipped). Evaluation with
        --predict_with_generate generates (`generate`, the run's generation settings) and scores the text, as
        Seq2SeqTrainer does; without it, the loss alone: scores of tokens predicted with the reference fed in
        would look like ROUGE and BLEU while flattering a model that has to write on its own."""
        best = (training_args.metric_for_best_model or "").removeprefix("eval_")
        generate = self.settings.predict_with_generate
        if best in TEXT_METRICS and not generate:
            logger.warning("--metric_for_best_model %s is a score of generated text: evaluation generates, as with "
                           "--predict_with_generate", best)
            generate = True
        if not generate:
            training_args.prediction_loss_only = True
            return {}
        return {"evaluation_outputs": self.evaluation_outputs}

    def evaluation_outputs(self, model, inputs: dict) -> tuple:
        """Training's evaluation outputs of one batch: `generate`'s, as tensors for Trainer to gather."""
        import torch

        batch = {name: inputs[name].detach().cpu().numpy() for name in INPUTS if name in inputs}
        return tuple(torch.from_numpy(array) for array in self.generate(model, self._tokenizer, batch))

    # -- outputs -----------------------------------------------------------------------------------------------

    @property
    def generation(self) -> GenerationSettings:
        """How it generates: the run's --generation_max_length (as new tokens) and --num_beams, overrides over them."""
        own = GenerationSettings(max_new_tokens=self.settings.generation_length, num_beams=self.settings.beams)
        return self.overrides.over(own)

    def with_generation(self, overrides: GenerationSettings) -> "TextToTextTask":
        """A copy generating with `overrides` put over this task's settings."""
        return replace(self, overrides=overrides.over(self.overrides))

    def generate_options(self, tokenizer) -> dict[str, Any]:
        """`model.generate`'s keyword arguments: the generation settings and --forced_bos_token."""
        options = self.generation.generate_kwargs()
        if self.settings.forced_bos_token:
            options["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(self.settings.forced_bos_token)
        return options

    def generate(self, model, tokenizer, batch: dict) -> tuple[np.ndarray, ...]:
        """The generated ids plus one for a batch of model inputs (see the module docstring), with the task's
        `generation` settings and --forced_bos_token; sampling is seeded when a seed is given."""
        import torch

        inputs = {name: torch.as_tensor(np.asarray(batch[name]), dtype=torch.long, device=model.device)
                  for name in INPUTS if name in batch}
        seed_sampling(self.generation)
        with torch.inference_mode():
            generated = model.generate(**inputs, **self.generate_options(tokenizer)).cpu().numpy()
        ids = generated + 1
        # the pad after each output's end, and the decoder's start token, are not text: 0 like the engine's padding
        ids[generated == tokenizer.pad_token_id] = 0
        return (ids.astype(np.float32),)

    def stream(self, model, tokenizer, input: str) -> Iterator[str]:
        """One input's output text piece by piece as it is generated (one piece with beam search)."""
        self._tokenizer = tokenizer
        encoded = tokenizer((self.settings.source_prefix or "") + str(input), return_tensors="pt", truncation=True,
                            max_length=self.settings.max_source_length)
        inputs = {name: encoded[name].to(model.device) for name in INPUTS if name in encoded}
        extra = {key: value for key, value in self.generate_options(tokenizer).items() if key == "forced_bos_token_id"}
        # encoder-decoder: what is streamed is the output alone (the decoder's start token is special, skipped)
        yield from stream_text(model, tokenizer, inputs, self.generation, skip_prompt=False, extra=extra)

    def decode(self, rows: pd.DataFrame | None, features, outputs: tuple[np.ndarray, ...]) -> pd.DataFrame:
        """One record per input: the generated text and its length in tokens."""
        if self._tokenizer is None:
            raise TextuneError("text-to-text outputs are decoded with the tokenizer that encoded them; call encode "
                               "first")
        ids = [_until_end([int(token) - 1 for token in row if token > 0], self._tokenizer.eos_token_id)
               for row in np.asarray(outputs[0])]
        texts = self._tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
        special = set(self._tokenizer.all_special_ids)
        return pd.DataFrame({"prediction": [text.strip() for text in texts],
                             "generated_tokens": [sum(token not in special for token in row) for row in ids]})

    def score(self, rows: pd.DataFrame, records: pd.DataFrame) -> dict[str, float]:
        """ROUGE-1/2/L/Lsum, BLEU, chrF (percent) and gen_len of the records against the rows' references."""
        return text_metrics(records["prediction"].tolist(), rows[self.summary_column].tolist(),
                            records["generated_tokens"].tolist())

    def agreement(self, expected: pd.DataFrame, got: pd.DataFrame) -> float:
        """Share of inputs with the same generated text."""
        if len(expected) == 0:
            return 1.0
        return float(np.mean([a == b for a, b in zip(expected["prediction"], got["prediction"])]))

    def write_predictions(self, output_dir: Path, rows: pd.DataFrame, records: pd.DataFrame,
                          predictions_file: Path | None = None) -> dict[str, Path]:
        """predictions.csv (id, input, reference when present, prediction) and generated_predictions.txt (one
        output a line, as the example scripts write it), each written atomically."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        written = {"predictions": Path(predictions_file) if predictions_file else output_dir / "predictions.csv"}
        with atomic_write(written["predictions"], newline="") as handle:
            self.prediction_table(rows, records).to_csv(handle, index=False)
        lines = [" ".join(text.splitlines()) for text in records["prediction"]]
        written["generated_predictions"] = write_text_atomically(output_dir / "generated_predictions.txt",
                                                                 "\n".join(lines) + ("\n" if lines else ""))
        return written

    def prediction_table(self, rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
        """predictions.csv's columns: id (the rows' own, else their position), input, reference, prediction."""
        ids = rows["id"].astype(str).tolist() if "id" in rows.columns else [str(i) for i in rows.index]
        table = pd.DataFrame({"id": ids, "input": rows[self.text_column].tolist()})
        if self.summary_column in rows.columns:
            table["reference"] = rows[self.summary_column].tolist()
        table["prediction"] = records["prediction"].tolist()
        return table

    def saved_rows(self, run_dir: Path, limit: int) -> pd.DataFrame | None:
        return None  # the run keeps no validation rows of its own; the export reads the run's data files

    def example_rows(self, limit: int) -> pd.DataFrame | None:
        from .serving import EXAMPLES

        return pd.DataFrame({self.text_column: EXAMPLES[:limit]})

    # -- serving -----------------------------------------------------------------------------------------------

    def api(self):
        from .serving import TextToTextApi

        return TextToTextApi(self)

    def demo(self):
        from .serving import TextToTextDemo

        return TextToTextDemo(self)

    def describe(self) -> dict:
        """What `GET /v1/labels` answers: the input, the output and the generation settings."""
        return {
            "task": self.name,
            "inputs": {"text": "the text to " + {"summarization": "summarize", "translation": "translate"}.get(
                self.name, "transform")},
            "outputs": {"generated_text": "the model's output text"},
            "source_prefix": self.settings.source_prefix or "",
            "max_source_length": self.settings.max_source_length,
            "max_new_tokens": self.generation.max_new_tokens,
            "num_beams": self.generation.num_beams or 1,
        }

    # -- report and card ---------------------------------------------------------------------------------------

    def report_sections(self, rows: pd.DataFrame | None, records: pd.DataFrame | None, plots_dir: Path,
                        splits: dict[str, pd.DataFrame] | None = None, tokenizer=None) -> list[Section]:
        if rows is None or records is None:
            return []
        from .report import report_sections

        return report_sections(rows[self.text_column].tolist(), rows[self.summary_column].tolist(),
                               records["prediction"].tolist(), Path(plots_dir))

    def card(self) -> dict:
        from .serving import EXAMPLES

        return {
            "kind": self.kind,
            "pipeline_tag": self.pipeline_tag,
            "tags": [self.pipeline_tag, "seq2seq"],
            "outputs": "generated text",
            "example": EXAMPLES[0],
            "loss": "cross-entropy of the reference tokens (teacher forcing)",
            "minimal_app_problem": "the minimal template is a text classifier's; use the default template",
        }


def _until_end(ids: list[int], eos: int | None) -> list[int]:
    """The ids up to the first end-of-sequence token (what follows is padding or, teacher-forced, noise)."""
    start = 1 if ids[:1] == [eos] else 0  # BART's decoder starts from its end token
    return ids[:ids.index(eos, start)] if eos in ids[start:] else ids


@dataclass
class SummarizationTask(TextToTextTask):
    """Summarization: a document in, its summary out; ROUGE-L first."""

    settings: SummarizationArguments
    name: ClassVar[str] = "summarization"
    arguments: ClassVar[type] = SummarizationArguments
    headline_metrics: ClassVar[tuple[str, ...]] = ("rougeL", "rouge1", "rouge2", "rougeLsum", "bleu", "chrf")
    pipeline_tag: ClassVar[str] = "summarization"
    kind: ClassVar[str] = "summarization model"

    @classmethod
    def detect(cls, columns: Sequence[str]) -> str | None:
        if "summary" in columns and any(name in columns for name in ("document", "article", "text", "dialogue")):
            return "the data has a 'summary' column beside its texts"
        return None


@dataclass
class TranslationTask(TextToTextTask):
    """Translation: a sentence in the source language in, the target language out; BLEU first."""

    settings: TranslationArguments
    name: ClassVar[str] = "translation"
    arguments: ClassVar[type] = TranslationArguments
    headline_metrics: ClassVar[tuple[str, ...]] = ("bleu", "chrf", "rougeL", "rouge1", "rouge2", "rougeLsum")
    pipeline_tag: ClassVar[str] = "translation"
    kind: ClassVar[str] = "translation model"

    @classmethod
    def detect(cls, columns: Sequence[str]) -> str | None:
        if TRANSLATION in columns:
            return "the data has a 'translation' column"
        return None

    def card(self) -> dict:
        card = super().card()
        languages = [lang for lang in (self.settings.source_lang, self.settings.target_lang) if lang]
        card["tags"] = card["tags"] + languages
        return card


from .. import register_task  # noqa: E402

for _task in (SummarizationTask, TranslationTask, TextToTextTask):
    register_task(_task.name, _task)
