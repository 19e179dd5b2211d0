"""The question-answering task's flags: run_qa.py's data arguments, with its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import TextuneError
from ..arguments import SequenceArguments


@dataclass
class QuestionAnsweringArguments(SequenceArguments):
    """How extractive question answering reads its columns, splits long contexts and picks answers.

    The flags and defaults are transformers' `examples/pytorch/question-answering/run_qa.py`'s, so its commands work
    unchanged, except `pad_to_max_length` (from `SequenceArguments`), which is off as in the classification task:
    padding each batch to its own longest window gives the same answers and is several times faster on a CPU.
    """

    question_column_name: str = field(
        default="question", metadata={"help": "Column holding the questions."})
    context_column_name: str = field(
        default="context", metadata={"help": "Column holding the passages the answers are taken from."})
    answer_column_name: str | None = field(
        default=None,
        metadata={"help": "Column holding the answers: SQuAD's {\"text\": [...], \"answer_start\": [...]} (a JSON "
                          "string in a CSV), or the answer's text, whose start is then found in the context. "
                          "Default: answers, else answer. Not needed to predict."})
    max_seq_length: int = field(
        default=384, metadata={"help": "Tokens per window (question + context); longer contexts are split into "
                                       "overlapping windows."})
    doc_stride: int = field(
        default=128, metadata={"help": "Tokens two consecutive windows of one context share."})
    n_best_size: int = field(
        default=20, metadata={"help": "Start and end candidates looked at per window when picking the answer."})
    max_answer_length: int = field(
        default=30, metadata={"help": "Longest answer, in tokens."})
    version_2_with_negative: bool = field(
        default=False, metadata={"help": "Some questions have no answer in their context (SQuAD v2.0). Turned on by "
                                         "itself when a training row has no answer."})
    null_score_diff_threshold: float = field(
        default=0.0, metadata={"help": "With --version_2_with_negative: answer nothing when the no-answer score "
                                       "beats the best answer's by more than this."})

    def __post_init__(self):
        super().__post_init__()
        for flag in ("question_column_name", "context_column_name", "answer_column_name"):
            value = getattr(self, flag)
            if value is not None and not str(value).strip():
                raise TextuneError(f"--{flag} is empty; name a column of the data file")
        if self.question_column_name == self.context_column_name:
            raise TextuneError(f"--question_column_name and --context_column_name both name "
                               f"{self.question_column_name!r}; questions and contexts need their own columns")
        if self.max_seq_length < 8:
            raise TextuneError(f"--max_seq_length must be at least 8 tokens, got {self.max_seq_length}")
        if not 0 <= self.doc_stride < self.max_seq_length:
            raise TextuneError(f"--doc_stride must be at least 0 and below --max_seq_length ({self.max_seq_length}), "
                               f"got {self.doc_stride}: windows must move forward")
        if self.n_best_size < 1:
            raise TextuneError(f"--n_best_size must be at least 1, got {self.n_best_size}")
        if self.max_answer_length < 1:
            raise TextuneError(f"--max_answer_length must be at least 1, got {self.max_answer_length}")
