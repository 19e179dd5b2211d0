"""Text to text's report sections: lengths of inputs, references and outputs, and the worst outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...report.plots import DPI, new_figure
from ..protocol import Section
from .metrics import example_rouge_l

WORST = 10


def report_sections(inputs: list[str], references: list[str], predictions: list[str],
                    plots_dir: Path) -> list[Section]:
    """The sections for the validation inputs, their references and the generated outputs."""
    return [lengths(inputs, references, predictions, plots_dir), worst_outputs(inputs, references, predictions)]


def lengths(inputs: list[str], references: list[str], predictions: list[str], plots_dir: Path) -> Section:
    """Histogram of lengths in words of the inputs, the references and the outputs."""
    groups = {name: np.array([len(text.split()) for text in texts])
              for name, texts in (("input", inputs), ("reference", references), ("output", predictions))}
    figure, axes = new_figure()
    axes.hist(list(groups.values()), bins=20, label=list(groups))
    axes.set_xlabel("length (words)")
    axes.set_ylabel("examples")
    axes.legend()
    plots_dir.mkdir(parents=True, exist_ok=True)
    path = plots_dir / "text_lengths.png"
    figure.savefig(path, dpi=DPI)
    means = ", ".join(f"{name}s {values.mean():.1f}" for name, values in groups.items() if len(values))
    markdown = (f"Mean length in words: {means}. Outputs much shorter than the references point at "
                "`--generation_max_length`; much longer ones at too little training.")
    return Section("Output lengths", markdown, [path])


def worst_outputs(inputs: list[str], references: list[str], predictions: list[str]) -> Section:
    """The outputs with the lowest ROUGE-L against their references, beside them."""
    scores = example_rouge_l(predictions, references)
    order = [i for i in sorted(range(len(scores)), key=lambda i: scores[i])[:WORST] if scores[i] < 1.0]
    if not order:
        return Section("Worst outputs", "Every validation output equals its reference (ROUGE-L 1).")
    lines = ["| input | reference | output | ROUGE-L |", "| --- | --- | --- | ---: |"]
    lines += [f"| {_cell(inputs[i])} | {_cell(references[i])} | {_cell(predictions[i]) or '*(empty)*'} | "
              f"{scores[i]:.2f} |" for i in order]
    return Section("Worst outputs", "\n".join(lines))


def _cell(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 1] + "…"
