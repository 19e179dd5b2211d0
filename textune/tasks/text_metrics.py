"""Scores of generated text against references that more than one task reports (BLEU and chrF, with `sacrebleu`),
in percent (0-100)."""

from __future__ import annotations


def bleu_and_chrf(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu's defaults, one reference per example), as run_translation.py's sacrebleu."""
    import sacrebleu

    if not predictions:
        return {"bleu": 0.0, "chrf": 0.0}
    return {"bleu": round(sacrebleu.corpus_bleu(predictions, [references]).score, 4),
            "chrf": round(sacrebleu.corpus_chrf(predictions, [references]).score, 4)}
