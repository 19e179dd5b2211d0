"""The text-to-text tasks' flags: run_summarization.py's and run_translation.py's data and generation arguments."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import TextuneError


@dataclass
class TextToTextArguments:
    """How a sequence-to-sequence task reads its two columns, cuts them and generates.

    The flags and defaults are transformers' `examples/pytorch/summarization/run_summarization.py`'s, so its
    commands work unchanged; `--predict_with_generate`, `--generation_max_length` and `--generation_num_beams` are
    Seq2SeqTrainingArguments' there and live here, beside the other generation settings.
    """

    text_column: str | None = field(
        default=None, metadata={"help": "Column holding the inputs. Default: the first column."})
    summary_column: str | None = field(
        default=None, metadata={"help": "Column holding the references (summaries, translations). Default: the "
                                        "second column. Not needed to predict."})
    source_prefix: str | None = field(
        default=None, metadata={"help": "Text put before every input, as T5 expects (\"summarize: \")."})
    max_source_length: int = field(
        default=1024, metadata={"help": "Cap on input tokens; longer inputs are truncated."})
    max_target_length: int = field(
        default=128, metadata={"help": "Cap on reference tokens in training; longer references are truncated."})
    val_max_target_length: int | None = field(
        default=None, metadata={"help": "Cap on reference tokens for evaluation, and the generation length. "
                                        "Default: --max_target_length."})
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad inputs and references to their caps (slow). Default: pad per batch."})
    ignore_pad_token_for_loss: bool = field(
        default=True, metadata={"help": "Leave padded reference positions out of the loss."})
    num_beams: int | None = field(
        default=None, metadata={"help": "Beams of beam search when generating. Default: the model's own (often 1)."})
    predict_with_generate: bool = field(
        default=False, metadata={"help": "Evaluate on generated text (ROUGE, BLEU) instead of the loss alone."})
    generation_max_length: int | None = field(
        default=None, metadata={"help": "Longest generated output, in tokens. Default: --val_max_target_length."})
    generation_num_beams: int | None = field(
        default=None, metadata={"help": "Beams for generation during evaluation. Default: --num_beams."})
    forced_bos_token: str | None = field(
        default=None, metadata={"help": "Token forced first in every output (mBART's target language, e.g. "
                                        "es_XX)."})

    def __post_init__(self):
        for flag in ("text_column", "summary_column"):
            value = getattr(self, flag)
            if value is not None and not str(value).strip():
                raise TextuneError(f"--{flag} is empty; name a column of the data file")
        if self.text_column is not None and self.text_column == self.summary_column:
            raise TextuneError(f"--text_column and --summary_column both name {self.text_column!r}; inputs and "
                               "references need their own columns")
        for flag in ("max_source_length", "max_target_length", "val_max_target_length", "num_beams",
                     "generation_max_length", "generation_num_beams"):
            value = getattr(self, flag)
            if value is not None and value < 1:
                raise TextuneError(f"--{flag} must be at least 1, got {value}")

    @property
    def generation_length(self) -> int:
        """Longest generated output: --generation_max_length, else --val_max_target_length, else the training cap."""
        return self.generation_max_length or self.val_max_target_length or self.max_target_length

    @property
    def beams(self) -> int | None:
        return self.generation_num_beams or self.num_beams


@dataclass
class SummarizationArguments(TextToTextArguments):
    """run_summarization.py's flags (a class of its own: the CLI tells tasks apart by their arguments' class)."""


@dataclass
class TranslationArguments(TextToTextArguments):
    """run_translation.py's flags: the summarization ones plus the two languages of its JSON form."""

    source_lang: str | None = field(
        default=None, metadata={"help": "Source language code: the key of the input in {\"translation\": {...}} "
                                        "rows (en)."})
    target_lang: str | None = field(
        default=None, metadata={"help": "Target language code: the key of the reference in {\"translation\": "
                                        "{...}} rows (es)."})
    def __post_init__(self):
        super().__post_init__()
        if self.source_lang is not None and self.source_lang == self.target_lang:
            raise TextuneError(f"--source_lang and --target_lang are both {self.source_lang!r}; name two languages")
