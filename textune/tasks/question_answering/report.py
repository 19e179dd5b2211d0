"""Question answering's report sections: answer lengths, exact match and F1 by answerability, the worst answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...report.plots import DPI, new_figure
from ..protocol import Section
from .metrics import question_scores, squad_metrics

WORST = 10


def report_sections(questions: list[str], golds: list[list[str]], records: pd.DataFrame, version_2: bool,
                    plots_dir: Path) -> list[Section]:
    """The sections for the validation questions, their gold answers and `decode`'s records."""
    predictions = records["answer"].tolist()
    scores = [question_scores(gold, prediction) for gold, prediction in zip(golds, predictions)]
    return [
        answer_lengths(golds, predictions, plots_dir),
        scores_by_answerability(golds, predictions, version_2),
        worst_answers(questions, golds, records, scores),
    ]


def answer_lengths(golds: list[list[str]], predictions: list[str], plots_dir: Path) -> Section:
    """Histogram of answer lengths in words: the first gold answer against the prediction (0 = no answer)."""
    gold_lengths = np.array([len(gold[0].split()) if gold else 0 for gold in golds])
    predicted_lengths = np.array([len(prediction.split()) for prediction in predictions])
    figure, axes = new_figure()
    top = int(max(gold_lengths.max(initial=0), predicted_lengths.max(initial=0)))
    bins = np.arange(0, top + 2) - 0.5
    axes.hist([gold_lengths, predicted_lengths], bins=bins, label=["gold answer", "prediction"])
    axes.set_xlabel("answer length (words; 0 = no answer)")
    axes.set_ylabel("questions")
    axes.legend()
    plots_dir.mkdir(parents=True, exist_ok=True)
    path = plots_dir / "answer_lengths.png"
    figure.savefig(path, dpi=DPI)
    markdown = (f"Mean answer length: {gold_lengths.mean():.1f} words in the gold answers, "
                f"{predicted_lengths.mean():.1f} in the predictions. Predictions much longer or shorter than the gold "
                "answers point at `--max_answer_length` or too little training.")
    return Section("Answer lengths", markdown, [path])


def scores_by_answerability(golds: list[list[str]], predictions: list[str], version_2: bool) -> Section:
    """Exact match and F1 for all questions, and with SQuAD v2 for answerable and unanswerable ones apart."""
    metrics = squad_metrics(golds, predictions, version_2=True)
    lines = ["| questions | count | exact match | F1 |", "| --- | ---: | ---: | ---: |",
             f"| all | {len(golds)} | {metrics['exact_match']:.2f} | {metrics['f1']:.2f} |"]
    if version_2:
        for prefix, name in (("HasAns_", "with an answer"), ("NoAns_", "without an answer")):
            if metrics[f"{prefix}total"]:
                lines.append(f"| {name} | {metrics[f'{prefix}total']} | {metrics[f'{prefix}exact']:.2f} | "
                             f"{metrics[f'{prefix}f1']:.2f} |")
    note = ("Exact match and F1 use SQuAD's normalisation (lower case, no punctuation or articles); each prediction "
            "counts its best match among the gold answers.")
    return Section("Exact match and F1", "\n".join(lines) + "\n\n" + note)


def worst_answers(questions: list[str], golds: list[list[str]], records: pd.DataFrame,
                  scores: list[tuple[int, float]]) -> Section:
    """The lowest-F1 answers, the most confident first: where the model is wrong and sure of it."""
    order = sorted(range(len(scores)), key=lambda i: (scores[i][1], -float(records["score"].iloc[i])))[:WORST]
    order = [i for i in order if scores[i][1] < 1.0]
    if not order:
        return Section("Worst answers", "Every validation answer has an F1 of 1.")
    lines = ["| id | question | gold answers | prediction | F1 | score |", "| --- | --- | --- | --- | ---: | ---: |"]
    for i in order:
        gold = " / ".join(_cell(text) for text in golds[i]) or "*(none)*"
        predicted = _cell(records["answer"].iloc[i]) or "*(none)*"
        lines.append(f"| {_cell(records['id'].iloc[i])} | {_cell(questions[i])} | {gold} | {predicted} | "
                     f"{scores[i][1]:.2f} | {float(records['score'].iloc[i]):.2f} |")
    return Section("Worst answers", "\n".join(lines))


def _cell(text, limit: int = 80) -> str:
    """Text safe in a Markdown table cell: one line, pipes escaped, long text cut."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 1] + "…"
