"""SQuAD's exact match and F1, computed locally with the official evaluation script's normalisation.

The same arithmetic as `evaluate-v2.0.py` (and v1.1's): lower-case, drop punctuation, the articles a/an/the and
extra spaces; each prediction scores its best match over the gold answers; a question without gold answers counts
as answered correctly only by an empty prediction. Results are percentages, as the script prints them.
"""

from __future__ import annotations

import collections
import re
import string

ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (the official script's order)."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact_match(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_score(gold: str, prediction: str) -> float:
    """Token-overlap F1 of the normalised answers (1 when both are empty, 0 when only one is)."""
    gold_tokens, predicted_tokens = answer_tokens(gold), answer_tokens(prediction)
    if not gold_tokens or not predicted_tokens:
        return float(gold_tokens == predicted_tokens)
    same = sum((collections.Counter(gold_tokens) & collections.Counter(predicted_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def question_scores(golds: list[str], prediction: str) -> tuple[int, float]:
    """Exact match and F1 of one prediction: the best over the gold answers that normalise to something."""
    golds = [gold for gold in golds if normalize_answer(gold)] or [""]
    return max(exact_match(gold, prediction) for gold in golds), max(f1_score(gold, prediction) for gold in golds)


def squad_metrics(golds: list[list[str]], predictions: list[str], version_2: bool) -> dict[str, float]:
    """exact_match and f1 over all questions; with `version_2` also HasAns_/NoAns_ exact, f1 and total.

    Args:
        golds: Each question's gold answer texts (an empty list: no answer).
        predictions: Each question's predicted answer ("" for no answer).
        version_2: Whether to split the scores by answerable (HasAns) and unanswerable (NoAns) questions.
    """
    scores = [question_scores(gold, prediction) for gold, prediction in zip(golds, predictions)]
    metrics = _percentages(scores, "")
    if version_2:
        answerable = [any(normalize_answer(g) for g in gold) for gold in golds]
        for prefix, keep in (("HasAns_", True), ("NoAns_", False)):
            part = [score for score, has in zip(scores, answerable) if has == keep]
            metrics.update(_percentages(part, prefix) if part else {f"{prefix}total": 0})
    return metrics


def _percentages(scores: list[tuple[int, float]], prefix: str) -> dict[str, float]:
    count = len(scores)
    exact = 100.0 * sum(e for e, _ in scores) / count if count else 0.0
    f1 = 100.0 * sum(f for _, f in scores) / count if count else 0.0
    if prefix:  # the official script's key names for the parts
        return {f"{prefix}exact": exact, f"{prefix}f1": f1, f"{prefix}total": count}
    return {"exact_match": exact, "f1": f1}
