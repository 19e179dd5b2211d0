"""Text generation's report sections (perplexity, and sample generations before and after fine-tuning) and its
prediction files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ...atomic import atomic_write
from ..protocol import Section

SHOWN = 5


def report_sections(prompts: list[str] | None, references: list[str] | None, records: pd.DataFrame | None,
                    before: list[dict]) -> list[Section]:
    """The sections for the validation prompts, their references and records, and the base model's generations
    (`before`, recorded when the model was built; empty for a run that has none)."""
    sections = []
    if records is not None and records["target_tokens"].sum():
        sections.append(perplexity(records))
    if prompts is not None or before:
        sections.append(samples(prompts or [], references, records, before))
    return sections


def perplexity(records: pd.DataFrame) -> Section:
    """Validation perplexity, and the spread of it over the examples."""
    scored = records[records["target_tokens"] > 0]
    overall = math.exp(min(scored["nll"].sum() / scored["target_tokens"].sum(), 700.0))
    per_example = (scored["nll"] / scored["target_tokens"]).map(lambda v: math.exp(min(v, 700.0)))
    markdown = (f"Validation perplexity: **{overall:.2f}** (exp of the mean negative log-likelihood per reference "
                f"token, {int(scored['target_tokens'].sum())} tokens in {len(scored)} examples; lower is better, 1 "
                f"is perfect). Per example: median {per_example.median():.2f}, worst {per_example.max():.2f}.")
    return Section("Perplexity", markdown)


def samples(prompts: list[str], references: list[str] | None, records: pd.DataFrame | None,
            before: list[dict]) -> Section:
    """A few validation prompts with the base model's generation and the fine-tuned model's, and the reference."""
    after = {} if records is None else {prompt: text for prompt, text in zip(prompts, records["generated"])
                                        if text is not None}
    reference = dict(zip(prompts, references or []))
    shown = [sample["prompt"] for sample in before] or list(after)[:SHOWN]
    base = {sample["prompt"]: sample.get("generated", "") for sample in before}
    lines = ["| prompt | reference | before fine-tuning | after fine-tuning |", "| --- | --- | --- | --- |"]
    lines += [f"| {_cell(p)} | {_cell(reference.get(p, ''))} | {_cell(base[p]) if p in base else '*(not recorded)*'} "
              f"| {_cell(after[p]) if p in after else '*(not generated)*'} |" for p in shown[:SHOWN]]
    note = ("Generations (greedy, --max_new_tokens) of the base model when training started and of the fine-tuned "
            "model, for the first validation prompts.")
    return Section("Sample generations", note + "\n\n" + "\n".join(lines))


def _cell(text, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    if not text:
        return "*(empty)*"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def write_prediction_files(table: pd.DataFrame, output_dir: Path, predictions_file: Path | None) -> dict[str, Path]:
    """`table` as predictions.csv (or `predictions_file`) and predictions.jsonl in `output_dir`, each written
    atomically; the JSON lines keep conversations as lists."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = {"predictions": Path(predictions_file) if predictions_file else output_dir / "predictions.csv"}
    with atomic_write(written["predictions"], newline="") as handle:
        table.to_csv(handle, index=False)
    written["predictions_jsonl"] = output_dir / "predictions.jsonl"
    with atomic_write(written["predictions_jsonl"]) as handle:
        for record in table.to_dict("records"):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return written
