"""Questions and contexts as model inputs: long contexts split into overlapping windows, answers mapped to tokens.

The same steps as transformers' run_qa.py (`prepare_train_features`, `prepare_validation_features`), plus two
guards it lacks: a question too long to leave room for the stride is cut (the tokenizer would abort the process),
and every window is padded on the right so that output positions line up with the window's tokens.
"""

from __future__ import annotations

import logging

from ...errors import TextuneError

logger = logging.getLogger(__name__)

# Bookkeeping that `decode` reads; never given to the model. Offsets are two flat int columns (-1 outside the
# context) rather than run_qa.py's list of pairs with None: decoding reads them straight from Arrow into numpy, about
# a hundred times faster than building Python lists of pairs.
EXAMPLE_INDEX, OFFSET_START, OFFSET_END, CLS_INDEX = "example_index", "offset_start", "offset_end", "cls_index"
BOOKKEEPING = (EXAMPLE_INDEX, OFFSET_START, OFFSET_END, CLS_INDEX)
TARGETS = ("start_positions", "end_positions")


def window_length(tokenizer, max_seq_length: int) -> int:
    """Tokens per window: --max_seq_length, or the tokenizer's own limit when that is lower."""
    limit = tokenizer.model_max_length
    return min(max_seq_length, limit) if isinstance(limit, int) and limit > 0 else max_seq_length


def encode_windows(tokenizer, questions: list[str], contexts: list[str], answers: list[dict] | None, *,
                   max_seq_length: int, doc_stride: int, pad_to_max_length: bool, where: str = "data") -> dict:
    """Windows of each (question, context), with what `postprocess` needs (the example each window came from, each
    token's characters in the context, -1 outside it, and the CLS position), and start/end token targets when
    `answers` is given.

    The context goes on the side the tokenizer pads (after the question, or before it for left-padding models such as
    XLNet), as run_qa.py places it; a window whose context does not hold the answer, and an unanswerable question,
    point at the CLS token.

    Raises:
        TextuneError: The tokenizer is not a fast one (only those give character offsets), or --doc_stride leaves no
            room for a question in a --max_seq_length window.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TextuneError(f"question answering maps answers to characters through a fast (Rust) tokenizer's offsets, "
                           f"and {type(tokenizer).__name__} is not one; drop --use_fast_tokenizer false, or pick a "
                           "model that ships a tokenizer.json")
    pad_on_right = tokenizer.padding_side == "right"
    max_length = window_length(tokenizer, max_seq_length)
    questions = fit_questions(tokenizer, [q.lstrip() for q in questions], max_length, doc_stride, where)
    first, second = (questions, contexts) if pad_on_right else (contexts, questions)
    encoded = tokenizer(
        first, second,
        truncation="only_second" if pad_on_right else "only_first",
        max_length=max_length, stride=doc_stride,
        return_overflowing_tokens=True, return_offsets_mapping=True,
        padding="max_length" if pad_to_max_length else False, padding_side="right",
    )
    context_id = 1 if pad_on_right else 0
    windows = {name: encoded[name] for name in encoded if name not in ("overflow_to_sample_mapping", "offset_mapping")}
    example_of = encoded["overflow_to_sample_mapping"]
    cls_index = [_cls_position(tokenizer, ids) for ids in encoded["input_ids"]]
    # per window: the character span of each context token, None for the question, special and pad tokens
    offsets = [
        [span if sequence == context_id else None for span, sequence in zip(spans, encoded.sequence_ids(i))]
        for i, spans in enumerate(encoded["offset_mapping"])
    ]
    # the bookkeeping with targets too: the validation split is encoded for its loss and decoded for its metrics
    windows.update({
        EXAMPLE_INDEX: list(example_of), CLS_INDEX: cls_index,
        OFFSET_START: [[span[0] if span else -1 for span in spans] for spans in offsets],
        OFFSET_END: [[span[1] if span else -1 for span in spans] for spans in offsets],
    })
    if answers is not None:
        targets = [_answer_tokens(answers[example], spans, cls)
                   for example, spans, cls in zip(example_of, offsets, cls_index)]
        windows["start_positions"] = [start for start, _ in targets]
        windows["end_positions"] = [end for _, end in targets]
    if len(example_of) > len(questions):
        logger.info("%s: %d questions make %d windows of up to %d tokens (contexts longer than one window are split "
                    "with --doc_stride %d)", where, len(questions), len(example_of), max_length, doc_stride)
    return windows


def fit_questions(tokenizer, questions: list[str], max_length: int, doc_stride: int, where: str) -> list[str]:
    """The questions, each cut to the tokens a window can hold while its context part stays longer than the stride.

    The fast tokenizers abort the whole process (a Rust panic, not an exception) when the stride is not shorter
    than what is left of the window for the context, so a question that long is cut here, with a warning.
    """
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - doc_stride - 1
    if room < 1:
        raise TextuneError(f"--doc_stride {doc_stride} leaves no room for the question in windows of {max_length} "
                           "tokens; lower --doc_stride or raise --max_seq_length")
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    cut = 0
    fitted = list(questions)
    for i, spans in enumerate(encoded["offset_mapping"]):
        if len(spans) > room:
            fitted[i] = questions[i][:spans[room - 1][1]]
            cut += 1
    if cut:
        logger.warning("%s: %d questions are longer than the %d tokens a window leaves them (--max_seq_length minus "
                       "--doc_stride) and were cut to it", where, cut, room)
    return fitted


def _cls_position(tokenizer, input_ids: list[int]) -> int:
    for token in (tokenizer.cls_token_id, tokenizer.bos_token_id):
        if token is not None and token in input_ids:
            return input_ids.index(token)
    return 0


def _answer_tokens(answers: dict, offsets: list, cls_index: int) -> tuple[int, int]:
    """First and last token of the (first) answer in this window, or the CLS token when it is not inside."""
    if not answers["answer_start"]:
        return cls_index, cls_index
    start_char = answers["answer_start"][0]
    end_char = start_char + len(answers["text"][0])
    context_tokens = [i for i, span in enumerate(offsets) if span is not None]
    if not context_tokens:
        return cls_index, cls_index
    first, last = context_tokens[0], context_tokens[-1]
    if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
        return cls_index, cls_index
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1
