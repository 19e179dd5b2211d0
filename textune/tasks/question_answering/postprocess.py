"""From start/end logits of every window back to one answer per question, as run_qa.py's utils_qa.py does it.

`postprocess_qa_predictions` there: the `n_best_size` best starts and ends of each window make candidate spans
(inside the context, end after start, at most `max_answer_length` tokens); the best-scoring span over all windows
of a question wins; with SQuAD v2 the null answer (start and end on CLS) competes through
`null_score_diff_threshold`. Two deliberate differences: candidates are drawn from context tokens only (run_qa
draws them from every token and then drops those outside the context, so a question whose best tokens all sit in
the question could get no answer), and a question with no candidate gets an empty answer, not the text "empty".
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

import numpy as np


@dataclass
class Answer:
    """One question's answer.

    Attributes:
        text: The answer's text, taken from the context; "" for no answer.
        score: Its probability among the n-best candidates (softmax of their start + end logits).
        start: First character of the answer in the context (None for no answer).
        end: One past its last character (None for no answer).
        null_odds: SQuAD v2: the null answer's score minus the best span's (above the threshold means "no
            answer"); None without v2 or when no span was possible.
    """

    text: str
    score: float
    start: int | None
    end: int | None
    null_odds: float | None = None


def postprocess_qa_predictions(contexts: list[str], example_index, offset_start: list[np.ndarray],
                               offset_end: list[np.ndarray], cls_index, start_logits: np.ndarray,
                               end_logits: np.ndarray, *,
                               n_best_size: int = 20, max_answer_length: int = 30,
                               version_2_with_negative: bool = False,
                               null_score_diff_threshold: float = 0.0) -> list[Answer]:
    """The answer of each context's question from its windows' logits.

    Args:
        contexts: One context per question, in the questions' order.
        example_index: For each window, the question it belongs to.
        offset_start: For each window, each token's first character in the context (-1 outside the context).
        offset_end: For each window, one past each token's last character (-1 outside the context).
        cls_index: For each window, the CLS token's position (the null answer).
        start_logits: Start logits, one row per window; positions past a window's length are padding.
        end_logits: End logits, the same shape.
        n_best_size: Candidate starts and ends per window, and candidates kept per question.
        max_answer_length: Longest answer in tokens.
        version_2_with_negative: Whether "no answer" can win.
        null_score_diff_threshold: Null score minus best span score above which the answer is "".

    Returns:
        One `Answer` per context.
    """
    windows: list[list[int]] = [[] for _ in contexts]
    for window, example in enumerate(example_index):
        windows[example].append(window)
    answers = []
    for example, context in enumerate(contexts):
        spans, null_score = [], None
        for window in windows[example]:
            starts_logits = np.asarray(start_logits[window], dtype=np.float64)
            ends_logits = np.asarray(end_logits[window], dtype=np.float64)
            cls = cls_index[window]
            window_null = starts_logits[cls] + ends_logits[cls]
            if null_score is None or window_null < null_score:  # run_qa keeps the lowest null score of the windows
                null_score = window_null
            spans.extend(_window_spans(offset_start[window], offset_end[window], starts_logits, ends_logits,
                                       n_best_size, max_answer_length))
        answers.append(_choose(context, spans, null_score, n_best_size, version_2_with_negative,
                               null_score_diff_threshold))
    return answers


def _window_spans(offset_start: np.ndarray, offset_end: np.ndarray, starts_logits: np.ndarray,
                  ends_logits: np.ndarray, n_best_size: int, max_answer_length: int) -> list[tuple[float, int, int]]:
    """(score, start char, end char) of the valid spans among the window's best starts and ends."""
    positions = np.flatnonzero(np.asarray(offset_start) >= 0)
    if not len(positions):
        return []
    best_starts = positions[np.argsort(starts_logits[positions], kind="stable")[::-1][:n_best_size]]
    best_ends = positions[np.argsort(ends_logits[positions], kind="stable")[::-1][:n_best_size]]
    length = best_ends[None, :] - best_starts[:, None] + 1
    valid = (length >= 1) & (length <= max_answer_length)
    rows, cols = np.nonzero(valid)
    scores = starts_logits[best_starts[rows]] + ends_logits[best_ends[cols]]
    return list(zip(scores.tolist(), np.asarray(offset_start)[best_starts[rows]].tolist(),
                    np.asarray(offset_end)[best_ends[cols]].tolist()))


def _choose(context: str, spans: list, null_score: float | None, n_best_size: int, version_2: bool,
            threshold: float) -> Answer:
    by_score = itemgetter(0)
    if version_2 and null_score is not None:
        null = (float(null_score), None, None)
        candidates = sorted([*spans, null], key=by_score, reverse=True)[:n_best_size]
        if all(span[1] is not None for span in candidates):  # run_qa adds it back after the cut
            candidates.append(null)
    else:
        candidates = sorted(spans, key=by_score, reverse=True)[:n_best_size]
    if not candidates:
        return Answer("", 0.0, None, None)
    scores = np.array([span[0] for span in candidates])
    probabilities = np.exp(scores - scores.max())
    probabilities /= probabilities.sum()
    best = next((i for i, span in enumerate(candidates) if span[1] is not None), None)
    if not version_2:
        _, start, end = candidates[best]
        return Answer(context[start:end], float(probabilities[best]), int(start), int(end))
    null = next(i for i, span in enumerate(candidates) if span[1] is None)
    if best is None:
        return Answer("", float(probabilities[null]), None, None)
    odds = float(null_score - candidates[best][0])
    if odds > threshold:
        return Answer("", float(probabilities[null]), None, None, odds)
    _, start, end = candidates[best]
    return Answer(context[start:end], float(probabilities[best]), int(start), int(end), odds)
