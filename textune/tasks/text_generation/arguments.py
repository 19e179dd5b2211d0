"""The text-generation task's flags: trl's SFTConfig names where it has them, plus the generation length."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import TextuneError


@dataclass
class TextGenerationArguments:
    """How supervised fine-tuning (SFT) reads its data, cuts and packs it, and what the loss covers.

    Names follow trl's `SFTConfig`: `--max_seq_length` (`--max_length` as trl 0.2x calls it), `--packing`,
    `--completion_only_loss`, `--dataset_text_field`.
    """

    max_seq_length: int = field(
        default=1024, metadata={"help": "Cap on tokens per example (prompt and completion together); longer "
                                        "examples are cut at the end. With --packing, the block length.",
                                "aliases": ["--max_length"]})
    packing: bool = field(
        default=False, metadata={"help": "Concatenate training examples into blocks of --max_seq_length tokens "
                                         "(no padding; each example keeps its own positions and attention)."})
    completion_only_loss: bool = field(
        default=True, metadata={"help": "Train only on the completion (prompt/completion data) or the assistant "
                                        "turns (messages); the prompt's tokens are masked out of the loss."})
    dataset_text_field: str = field(
        default="text", metadata={"help": "Column of plain text to train on (every token is a target); used with "
                                          "--task text-generation when the data has no prompt/completion or "
                                          "messages columns."})
    prompt_column: str = field(default="prompt", metadata={"help": "Column holding the prompts."})
    completion_column: str = field(
        default="completion", metadata={"help": "Column holding the completions (references; not needed to "
                                                "predict)."})
    messages_column: str = field(
        default="messages", metadata={"help": "Column holding chat conversations: lists of {\"role\", \"content\"} "
                                              "(JSONL), rendered with the tokenizer's chat template."})
    system_prompt: str | None = field(
        default=None, metadata={"help": "System message put before every conversation that has none (training, "
                                        "prediction, chat and the server)."})
    max_new_tokens: int = field(
        default=128, metadata={"help": "Longest generated output, in new tokens (predictions, the report's samples, "
                                       "the server's default)."})

    def __post_init__(self):
        for flag in ("max_seq_length", "max_new_tokens"):
            value = getattr(self, flag)
            if value < 1:
                raise TextuneError(f"--{flag} must be at least 1, got {value}")
        for flag in ("dataset_text_field", "prompt_column", "completion_column", "messages_column"):
            if not str(getattr(self, flag)).strip():
                raise TextuneError(f"--{flag} is empty; name a column of the data file")
        if self.prompt_column == self.completion_column:
            raise TextuneError(f"--prompt_column and --completion_column both name {self.prompt_column!r}; prompts "
                               "and completions need their own columns")
