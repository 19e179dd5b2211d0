"""Flags every sequence task shares: the token window (`--max_seq_length`) and padding; each task extends it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import TextuneError


@dataclass
class SequenceArguments:
    """The token window of a task reading token sequences; a task's own class sets its default length."""

    max_seq_length: int = field(
        default=128, metadata={"help": "Cap on tokens per example; longer texts are truncated."}
    )
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every example to --max_seq_length (slow). Default: pad per batch."}
    )

    def __post_init__(self):
        if self.max_seq_length < 1:
            raise TextuneError(f"--max_seq_length must be positive, got {self.max_seq_length}")
