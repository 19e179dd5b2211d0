"""Text-to-text metrics computed locally: ROUGE with `rouge-score`, BLEU and chrF with `sacrebleu`, output length.

Scores are percentages (0-100), as run_summarization.py and run_translation.py print them.
"""

from __future__ import annotations

import re

import numpy as np

from ..text_metrics import bleu_and_chrf

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
TEXT_METRICS = (*ROUGE_TYPES, "bleu", "chrf", "gen_len")  # `text_metrics`' names: scores of generated text
# A sentence ends at . ! ? (or a line break) followed by space: what ROUGE-Lsum needs, without NLTK's punkt model,
# which run_summarization.py downloads at start and an offline laptop does not have.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def split_sentences(text: str) -> str:
    """The text with one sentence per line, the form rougeLsum reads."""
    return "\n".join(part.strip() for part in SENTENCE_END.split(text.strip()) if part.strip())


def rouge(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean F-measure of ROUGE-1/2/L/Lsum over the pairs (Porter stemming, as run_summarization.py), in percent."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(split_sentences(reference), split_sentences(prediction))
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    count = max(len(predictions), 1)
    return {name: round(100 * total / count, 4) for name, total in totals.items()}


def example_rouge_l(predictions: list[str], references: list[str]) -> list[float]:
    """ROUGE-L F-measure of each pair (0-1), to find the worst examples."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [scorer.score(reference, prediction)["rougeL"].fmeasure
            for prediction, reference in zip(predictions, references)]


def text_metrics(predictions: list[str], references: list[str], generated_tokens: list[int]) -> dict[str, float]:
    """Every metric of the task: ROUGE, BLEU, chrF and `gen_len`, the mean generated length in tokens."""
    predictions = [prediction.strip() for prediction in predictions]
    references = [reference.strip() for reference in references]
    metrics = rouge(predictions, references) | bleu_and_chrf(predictions, references)
    metrics["gen_len"] = round(float(np.mean(generated_tokens)), 4) if len(generated_tokens) else 0.0
    return metrics
