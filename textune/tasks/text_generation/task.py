"""Text generation with causal language models (Llama, Qwen, SmolLM2, ...): supervised fine-tuning on
prompt/completion pairs, chat conversations or plain text; perplexity; generation and streaming.

Prediction runs the optional `generate` hook (`protocol.py`) per batch: one forward pass scores the references'
tokens (their summed negative log-likelihood and count: perplexity), then the model generates from each prompt.
The generated ids are stored plus one (float32 holds ids exactly below 2**24), so the engine's zero padding between
batches reads as "no token"; training's evaluation, which does not generate, gives -1 there ("not generated").
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Sequence

import numpy as np
import pandas as pd

from ...errors import TextuneError
from ...hub import LOCAL_TASK_KEY
from ...inference.generation import GenerationSettings, stream_text
from ..protocol import Section
from .arguments import TextGenerationArguments
from .generating import engine_generate, engine_stream, generate_after, reference_nll, stop_token_ids, target_nll
from .formatting import (IGNORE, Example, as_messages, chat_example, given, has_reply, pack, prediction_features,
                         prompt_completion_example, render_ids, shown, split_reply, text_example, truncate, with_system)

logger = logging.getLogger(__name__)

GENERATED, NLL, TARGET_TOKENS = "generated_ids", "nll", "target_tokens"
PROMPT_COMPLETION, MESSAGES, TEXT = "prompt_completion", "messages", "text"
TRAIN_FLAG = "--train_file"  # `encode`'s `where` for the training split, the only one --packing packs
SAMPLES = 3  # validation prompts the report shows generations of, before and after fine-tuning


@dataclass
class TextGenerationTask:
    """Supervised fine-tuning of a causal LM; its settings are trl SFTConfig-like flags.

    Attributes:
        settings: The flags.
        data_format: What the training rows hold: "prompt_completion", "messages" or "text".
        overrides: Generation settings put over the run's own (`with_generation`).
        samples_before: The base model's generations for a few validation prompts, recorded when the model is built
            for training, so the report can show them beside the fine-tuned model's.
        engine: The causal engine generating tokens (`with_engine`); None: the PyTorch model passed in.
    """

    settings: TextGenerationArguments = field(default_factory=TextGenerationArguments)
    data_format: str = PROMPT_COMPLETION
    overrides: GenerationSettings = field(default_factory=GenerationSettings)
    samples_before: list[dict] = field(default_factory=list)
    engine: Any = field(default=None, repr=False, compare=False)

    name: ClassVar[str] = "text-generation"
    arguments: ClassVar[type] = TextGenerationArguments
    output_names: ClassVar[tuple[str, ...]] = (GENERATED, NLL, TARGET_TOKENS)
    headline_metrics: ClassVar[tuple[str, ...]] = ("perplexity", "chrf")
    metric_scale: ClassVar[float] = 100.0  # chrF in percent; perplexity is unbounded and lower is better
    trains_on_disk: ClassVar[bool] = False
    chat: ClassVar[bool] = True
    pipeline_tag: ClassVar[str] = "text-generation"
    kind: ClassVar[str] = "text generation model"

    def __post_init__(self):
        self._tokenizer = None  # the one `encode` used: `decode` turns ids back into text with it
        self._sample_inputs: list = []  # validation prompts as API inputs, for `samples_before`

    # -- choosing and rebuilding the task ----------------------------------------------------------------------

    @classmethod
    def detect(cls, columns: Sequence[str]) -> str | None:
        # a lone `text` column is a classifier's too: plain text needs --task text-generation
        defaults = cls.arguments()
        if defaults.messages_column in columns:
            return f"the data has a {defaults.messages_column!r} column of chat conversations"
        if defaults.prompt_column in columns and defaults.completion_column in columns:
            return f"the data has {defaults.prompt_column!r} and {defaults.completion_column!r} columns"
        return None

    @classmethod
    def from_arguments(cls, task_args: TextGenerationArguments | None, train_rows: pd.DataFrame,
                       where: str) -> "TextGenerationTask":
        """The task for a new run, its data format read from the training rows' columns.

        Raises:
            TextuneError: The rows have none of the columns the flags name.
        """
        settings = task_args or cls.arguments()
        columns = [str(c) for c in train_rows.columns]
        if settings.messages_column in columns:
            data_format = MESSAGES
        elif settings.prompt_column in columns and settings.completion_column in columns:
            data_format = PROMPT_COMPLETION
        elif settings.dataset_text_field in columns:
            data_format = TEXT
        else:
            raise TextuneError(
                f"{where} has none of the columns text generation trains on (found: {', '.join(columns)}); give it "
                f"{settings.prompt_column!r} and {settings.completion_column!r} columns, a {settings.messages_column!r} "
                f"column of chat messages, or a {settings.dataset_text_field!r} column of plain text, or name yours "
                "with --prompt_column/--completion_column, --messages_column or --dataset_text_field")
        task = cls(settings, data_format)
        task.check_rows(train_rows, where, with_targets=True)
        logger.info("%s: %s", where, {MESSAGES: f"chat conversations from column {settings.messages_column!r}",
                                      PROMPT_COMPLETION: f"prompts from {settings.prompt_column!r}, completions "
                                                         f"from {settings.completion_column!r}",
                                      TEXT: f"plain text from {settings.dataset_text_field!r}"}[data_format])
        return task

    def to_dict(self) -> dict:
        # the samples are the user's validation prompts: kept in the run folder, never shared (`textune.hub`)
        return {"name": self.name, "data_format": self.data_format, **asdict(self.settings),
                LOCAL_TASK_KEY: {"samples_before": self.samples_before}}

    @classmethod
    def from_dict(cls, data: dict) -> "TextGenerationTask":
        """Rebuild a saved run's task from `to_dict`'s output (plain values; nothing is imported or run)."""
        known = {item.name for item in fields(cls.arguments)}
        settings = cls.arguments(**{key: value for key, value in data.items() if key in known})
        local = data.get(LOCAL_TASK_KEY) if isinstance(data.get(LOCAL_TASK_KEY), dict) else {}
        samples = [sample for sample in local.get("samples_before") or [] if isinstance(sample, dict)]
        return cls(settings, data.get("data_format", PROMPT_COMPLETION), samples_before=samples)

    # -- generation settings -----------------------------------------------------------------------------------

    @property
    def generation(self) -> GenerationSettings:
        """The run's settings (greedy, --max_new_tokens), with `overrides` over them."""
        return self.overrides.over(GenerationSettings(max_new_tokens=self.settings.max_new_tokens, do_sample=False))

    def with_generation(self, overrides: GenerationSettings) -> "TextGenerationTask":
        """A copy generating with `overrides` over the run's settings.

        Raises:
            TextuneError: Beam search asked of a causal engine, which decodes one hypothesis (checked here, where
                a server validates a request, rather than mid-batch).
        """
        copy = replace(self, overrides=overrides.over(self.overrides))
        if self.engine is not None and (copy.generation.num_beams or 1) > 1:
            raise TextuneError(f"num_beams {copy.generation.num_beams}: this model generates through a causal engine, "
                               "which decodes one hypothesis; ask for num_beams 1 (or use --backend torch)")
        copy._tokenizer = self._tokenizer
        return copy

    def with_engine(self, backend: str, model, tokenizer, folder: str | Path | None) -> "TextGenerationTask":
        """A copy generating with `--backend backend` (`textune.inference.causal_engines.choose_engine`, which checks
        it against `model` on a few prompts, through the chat template where the tokenizer has one); `folder` holds `model`'s
        files (a run folder, a model folder), None when it has none."""
        from ...inference.causal_engines import PARITY_PROMPTS, choose_engine

        chat = bool(getattr(tokenizer, "chat_template", None))  # as a chat model is mostly asked
        prompts = [self.context_ids({"messages": [{"role": "user", "content": text}]} if chat else text, tokenizer)
                   for text in PARITY_PROMPTS]
        copy = replace(self, engine=choose_engine(backend, model, tokenizer, folder, prompts,
                                                  stop_token_ids(model, tokenizer)))
        copy._tokenizer = self._tokenizer
        return copy

    # -- data --------------------------------------------------------------------------------------------------

    @classmethod
    def read(cls, path: Path, encoding: str | None, flag: str) -> pd.DataFrame | None:
        return None  # JSONL's message lists come through the plain table reader as lists

    def check_rows(self, rows: pd.DataFrame, where: str, with_targets: bool) -> pd.DataFrame:
        """The rows with conversations parsed and texts as text; rows without a reply (or text) are dropped.

        Raises:
            TextuneError: The run's columns are missing (with targets), none of the input columns is there
                (without), or a conversation is not a list of messages (naming the row).
        """
        s = self.settings
        needed = {MESSAGES: [s.messages_column], PROMPT_COMPLETION: [s.prompt_column, s.completion_column],
                  TEXT: [s.dataset_text_field]}[self.data_format]
        present = [c for c in (s.messages_column, s.prompt_column, s.dataset_text_field) if c in rows.columns]
        if with_targets and not all(c in rows.columns for c in needed) or not present:
            flags = {s.messages_column: "--messages_column", s.prompt_column: "--prompt_column",
                     s.completion_column: "--completion_column", s.dataset_text_field: "--dataset_text_field"}
            missing = next(c for c in (needed if with_targets else [needed[0]]) if c not in rows.columns)
            raise TextuneError(f"{where} has no column {missing!r} (found: {', '.join(map(str, rows.columns))}); "
                               f"set {flags[missing]}")
        rows = rows.copy()
        for column in (s.prompt_column, s.completion_column, s.dataset_text_field):
            if column in rows.columns and column != s.messages_column:
                rows[column] = rows[column].fillna("").astype(str)
        if s.messages_column in rows.columns:
            rows[s.messages_column] = pd.Series(
                [as_messages(value, where, s.messages_column, number) if given(value) else None
                 for number, value in enumerate(rows[s.messages_column], start=1)], index=rows.index, dtype=object)
        if with_targets:
            unusable = pd.Series(False, index=rows.index)
            for mask in self.unusable_rows(rows).values():
                unusable |= mask
            if unusable.any():
                logger.warning("%s: %d of %d rows have nothing to train on (an empty completion or text, or a "
                               "conversation without an assistant reply) and are left out", where,
                               int(unusable.sum()), len(rows))
                rows = rows[~unusable]
            if rows.empty:
                raise TextuneError(f"{where} has no row with something to train on ({', '.join(needed)})")
        return rows.reset_index(drop=True)

    def unusable_rows(self, rows: pd.DataFrame) -> dict[str, pd.Series]:
        s = self.settings

        def empty(column: str) -> pd.Series:
            return rows[column].fillna("").astype(str).str.strip() == ""

        if self.data_format == MESSAGES:
            return {"no_reply": rows[s.messages_column].map(lambda value: not has_reply(value)).astype(bool)}
        if self.data_format == PROMPT_COMPLETION:
            return {"empty_completion": empty(s.completion_column)}
        return {"empty_text": empty(s.dataset_text_field)}

    def target_columns(self) -> list[str]:
        s = self.settings
        return [{MESSAGES: s.messages_column, PROMPT_COMPLETION: s.completion_column,
                 TEXT: s.dataset_text_field}[self.data_format]]

    def stratify_by(self, rows: pd.DataFrame) -> pd.Series | None:
        return None

    def encode(self, rows: pd.DataFrame, tokenizer, for_training: bool, where: str = "data"):
        """For training: input ids and labels (targets as the data format says, -100 elsewhere), cut at
        --max_seq_length; the training split packed into blocks with --packing. For prediction: each row's prompt
        followed by its reference when it has one, with where the prompt ends (`prompt_length`, generation starts
        there) and where the scored tokens start (`target_start`)."""
        self._tokenizer = tokenizer
        if tokenizer.pad_token is None:  # Llama's tokenizers have none; padded positions are masked anyway
            tokenizer.pad_token = tokenizer.eos_token
        limit = self.settings.max_seq_length
        if not for_training:
            return prediction_features(self.settings, rows, tokenizer)
        examples = [self.example(row, tokenizer) for row in rows.to_dict("records")]
        cut = sum(len(example.ids) > limit for example in examples)
        if cut:
            logger.warning("%s: %d of %d examples are longer than --max_seq_length %d tokens and are cut at the end",
                           where, cut, len(examples), limit)
        examples = [truncate(example, limit) for example in examples]
        if not any(label != IGNORE for example in examples for label in example.labels):
            raise TextuneError(f"{where}: no example keeps a target token within --max_seq_length {limit}; raise it")
        if where == "--validation_file":
            self._sample_inputs = [self.api_input(row) for row in rows.head(SAMPLES).to_dict("records")]
        from datasets import Dataset

        if self.settings.packing and where == TRAIN_FLAG:
            packed = pack(examples, limit)
            logger.info("%s: %d examples packed into %d blocks of up to %d tokens", where, len(examples),
                        len(packed["input_ids"]), limit)
            return Dataset.from_dict(packed)
        return Dataset.from_dict({"input_ids": [e.ids for e in examples],
                                  "attention_mask": [[1] * len(e.ids) for e in examples],
                                  "labels": [e.labels for e in examples]})

    def example(self, row: dict, tokenizer) -> Example:
        """One training row's tokens and targets, as the run's data format reads it."""
        s = self.settings
        if self.data_format == MESSAGES:
            return chat_example(tokenizer, with_system(row[s.messages_column], s.system_prompt),
                                s.completion_only_loss)
        if self.data_format == PROMPT_COMPLETION:
            return prompt_completion_example(tokenizer, row[s.prompt_column], row[s.completion_column],
                                             s.completion_only_loss)
        return text_example(tokenizer, row[s.dataset_text_field])

    def api_input(self, row: dict) -> str | dict:
        """A row as the API takes it: {"messages": [...]} (without its last reply) or the prompt (or text)."""
        s = self.settings
        messages = row.get(s.messages_column)
        if given(messages):
            return {"messages": split_reply(as_messages(messages, "input", s.messages_column, 0))[0]}
        column = s.prompt_column if s.prompt_column in row else s.dataset_text_field
        return str(row.get(column, ""))

    def context_ids(self, input: str | dict, tokenizer) -> list[int]:
        """What the model generates from for one API input: a raw prompt's ids, or the conversation rendered with
        the chat template and its generation prompt (--system_prompt put first when it has no system message)."""
        if isinstance(input, dict):
            messages = as_messages(input.get("messages"), "input", "messages", 1)
            return render_ids(tokenizer, with_system(messages, self.settings.system_prompt),
                              add_generation_prompt=True)
        return tokenizer(str(input))["input_ids"]

    def collator(self, tokenizer) -> Callable:
        from .collator import CausalCollator

        return CausalCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else
                              tokenizer.eos_token_id)

    def model_inputs(self, features) -> list[str]:
        names = features.column_names if hasattr(features, "column_names") else list(features)
        return [name for name in ("input_ids", "attention_mask", "labels", "position_ids", "prompt_length",
                                  "target_start") if name in names]

    # -- model -------------------------------------------------------------------------------------------------

    def build_model(self, name_or_path: str, model_args, local_files_only: bool = False):
        """The pretrained causal LM (AutoModelForCausalLM), safetensors only unless --allow_pickle; when built for
        a run with validation rows, its generations for a few of them are kept for the report."""
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
            trust_remote_code=model_args.trust_remote_code, local_files_only=local_files_only,
            use_safetensors=None if model_args.allow_pickle else True)
        if self._sample_inputs and self._tokenizer is not None:
            self.samples_before = [{"prompt": shown(given), "generated": self.complete(model, self._tokenizer, given)}
                                   for given in self._sample_inputs]
        return model

    def load_model(self, run_dir: str | Path, allow_pickle: bool = False):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(run_dir, use_safetensors=None if allow_pickle else True)

    def training_options(self, training_args, train_features) -> dict[str, Any]:
        """The model's own loss (cross-entropy of the target tokens); evaluation keeps each row's summed negative
        log-likelihood of its targets and their count (perplexity), not the vocabulary's logits."""
        return {"preprocess_logits_for_metrics": target_nll}

    # -- generation ----------------------------------------------------------------------------------------------

    def generate(self, model, tokenizer, batch: dict) -> tuple[np.ndarray, ...]:
        """The outputs of one batch (see the module docstring): generated ids plus one, then the summed negative
        log-likelihood of each row's reference tokens and their count."""
        import torch

        ids = torch.as_tensor(np.asarray(batch["input_ids"]), dtype=torch.long, device=model.device)
        mask = torch.as_tensor(np.asarray(batch["attention_mask"]), dtype=torch.long, device=model.device)
        prompt_length = np.asarray(batch["prompt_length"]).astype(int)
        nll, count = reference_nll(model, ids, mask, np.asarray(batch["target_start"]).astype(int))
        contexts = [ids[i, :prompt_length[i]].tolist() for i in range(len(ids))]
        generated = self.generate_ids(model, tokenizer, contexts)
        width = max((len(row) for row in generated), default=0) or 1
        out = np.zeros((len(ids), width), dtype=np.float32)
        for i, row in enumerate(generated):
            out[i, :len(row)] = np.asarray(row, dtype=np.float32) + 1
        return out, nll, count

    def generate_ids(self, model, tokenizer, contexts: list[list[int]]) -> list[list[int]]:
        """The new tokens generated after each context, up to (not including) the end-of-turn token; the contexts
        are padded on the LEFT together, so each continues from its own last token."""
        if self.engine is not None:
            return engine_generate(self.engine, model, tokenizer, contexts, self.generation)
        return generate_after(model, tokenizer, contexts, self.generation)

    def stream(self, model, tokenizer, input) -> Iterator[str]:
        """One input's generated text, piece by piece: a string is a raw prompt, {"messages": [...]} a conversation
        rendered with the chat template (see `context_ids`)."""
        import torch

        context = self.context_ids(input, tokenizer)
        if self.engine is not None:
            yield from engine_stream(self.engine, model, tokenizer, context, self.generation)
            return
        inputs = {"input_ids": torch.tensor([context], device=model.device),
                  "attention_mask": torch.ones((1, len(context)), dtype=torch.long, device=model.device),
                  # generate's own arguments ride with the tensors: stop at the end of the turn
                  "eos_token_id": stop_token_ids(model, tokenizer),
                  "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else
                  tokenizer.eos_token_id}
        yield from stream_text(model, tokenizer, inputs, self.generation, skip_prompt=True)

    def complete(self, model, tokenizer, input) -> str:
        """One input's whole generated text (`generate_ids` on it alone)."""
        ids = self.generate_ids(model, tokenizer, [self.context_ids(input, tokenizer)])[0]
        return tokenizer.decode(ids, skip_special_tokens=True).strip()

    # -- outputs -----------------------------------------------------------------------------------------------

    def decode(self, rows: pd.DataFrame | None, features, outputs: tuple[np.ndarray, ...]) -> pd.DataFrame:
        """One record per input: the generated text (None where training's evaluation did not generate), its
        length in tokens, and the reference tokens' summed negative log-likelihood and count."""
        if self._tokenizer is None:
            raise TextuneError("text-generation outputs are decoded with the tokenizer that encoded them; call encode "
                               "first")
        generated, nll, count = (np.asarray(array) for array in outputs)
        texts, lengths = [], []
        for row in generated.reshape(len(generated), -1):
            if row.size and row[0] < 0:
                texts.append(None)
                lengths.append(0)
                continue
            ids = [int(token) - 1 for token in row if token > 0]
            texts.append(self._tokenizer.decode(ids, skip_special_tokens=True).strip())
            lengths.append(len(ids))
        return pd.DataFrame({"generated": texts, "generated_tokens": lengths, NLL: nll.reshape(-1).astype(float),
                             TARGET_TOKENS: count.reshape(-1).astype(int)})

    def references(self, rows: pd.DataFrame) -> list[str] | None:
        """The reference replies of `rows` (completions, or the conversations' last assistant turns), or None."""
        s = self.settings
        if s.messages_column in rows.columns and self.data_format == MESSAGES:
            return [split_reply(m)[1] or "" if given(m) else "" for m in rows[s.messages_column]]
        if s.completion_column in rows.columns and self.data_format == PROMPT_COMPLETION:
            return rows[s.completion_column].fillna("").astype(str).tolist()
        return None

    def score(self, rows: pd.DataFrame, records: pd.DataFrame) -> dict[str, float]:
        """Perplexity: exp of the mean negative log-likelihood per target token (every reference token counts once,
        whichever row it is in); with generations, chrF against the references and the mean generated length."""
        total = float(records[TARGET_TOKENS].sum())
        metrics: dict[str, float] = {}
        if total:
            mean_nll = float(records[NLL].sum()) / total
            metrics["perplexity"] = round(math.exp(min(mean_nll, 700.0)), 4)
            metrics["token_nll"] = round(mean_nll, 6)
        generated = records["generated"]
        references = self.references(rows)
        if generated.notna().any():
            keep = generated.notna().to_numpy()
            if references is not None:
                from ..text_metrics import bleu_and_chrf

                metrics["chrf"] = bleu_and_chrf([str(g) for g in generated[keep]],
                                                [r for r, k in zip(references, keep) if k])["chrf"]
            metrics["gen_len"] = round(float(records["generated_tokens"][keep].mean()), 4)
        return metrics

    def agreement(self, expected: pd.DataFrame, got: pd.DataFrame) -> float:
        """Share of inputs with the same generated text."""
        if len(expected) == 0:
            return 1.0
        return float(np.mean([a == b for a, b in zip(expected["generated"], got["generated"])]))

    def write_predictions(self, output_dir: Path, rows: pd.DataFrame, records: pd.DataFrame,
                          predictions_file: Path | None = None) -> dict[str, Path]:
        """predictions.csv and predictions.jsonl (id, prompt, completion when the rows have references, generated),
        each written atomically; the JSON lines keep conversations as lists."""
        from .report import write_prediction_files

        return write_prediction_files(self.prediction_table(rows, records), Path(output_dir), predictions_file)

    def prediction_table(self, rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
        """predictions.csv's columns: id (the rows' own, else their position), prompt (a conversation as JSON),
        completion (the reference, when the rows have them), generated."""
        ids = rows["id"].astype(str).tolist() if "id" in rows.columns else [str(i) for i in rows.index]
        table = pd.DataFrame({"id": ids, "prompt": [shown(self.api_input(row), as_json=True)
                                                     for row in rows.to_dict("records")]})
        references = self.references(rows)
        if references is not None:
            table["completion"] = references
        table["generated"] = [text if text is not None else "" for text in records["generated"]]
        return table

    def saved_rows(self, run_dir: Path, limit: int) -> pd.DataFrame | None:
        return None  # the run keeps no validation rows of its own; the export reads the run's data files

    def example_rows(self, limit: int) -> pd.DataFrame | None:
        from .serving import EXAMPLES

        return pd.DataFrame({self.settings.prompt_column: EXAMPLES[:limit]})

    # -- serving -----------------------------------------------------------------------------------------------

    def api(self):
        from .serving import TextGenerationApi

        return TextGenerationApi(self)

    def demo(self):
        from .serving import TextGenerationDemo

        return TextGenerationDemo(self)

    def describe(self) -> dict:
        """What `GET /v1/labels` answers: the inputs (a prompt, or chat messages), the output and the settings."""
        return {
            "task": self.name,
            "inputs": {"prompt": "a raw prompt, continued as is",
                       "messages": "a chat conversation, [{\"role\", \"content\"}, ...], rendered with the model's "
                                   "chat template"},
            "outputs": {"generated_text": "the model's reply"},
            "chat": True,
            "system_prompt": self.settings.system_prompt or "",
            "max_new_tokens": self.generation.max_new_tokens,
        }

    # -- report and card ---------------------------------------------------------------------------------------

    def report_sections(self, rows: pd.DataFrame | None, records: pd.DataFrame | None, plots_dir: Path,
                        splits: dict[str, pd.DataFrame] | None = None, tokenizer=None) -> list[Section]:
        from .report import report_sections

        if rows is None or records is None:
            return report_sections(None, None, None, self.samples_before)
        return report_sections([shown(self.api_input(row)) for row in rows.to_dict("records")],
                               self.references(rows), records, self.samples_before)

    def card(self) -> dict:
        from .serving import EXAMPLES

        return {
            "kind": self.kind,
            "pipeline_tag": self.pipeline_tag,
            "tags": [self.pipeline_tag, "sft", "conversational"] if self.data_format == MESSAGES else
                    [self.pipeline_tag, "sft"],
            "outputs": "generated text",
            "example": EXAMPLES[0],
            "loss": "cross-entropy of the completion tokens" if self.settings.completion_only_loss else
                    "cross-entropy of every token",
            "minimal_app_problem": "the minimal template is a text classifier's; use the default template",
        }


from .. import register_task  # noqa: E402

register_task(TextGenerationTask.name, TextGenerationTask)
