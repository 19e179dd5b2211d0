"""Rendering a report: one list of sections (paragraphs, tables, images) written as Markdown and as self-contained HTML."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import re

from .build import ReportData, headline

TIMING = {"runtime": "runtime (s)", "samples_per_second": "samples per second", "steps_per_second": "steps per second"}
TEXT_CHARS = 240  # longer cells are cut in the report's tables; a task's own files keep them whole


@dataclass
class Table:
    headers: list[str]
    rows: list[list]
    id: str | None = None


@dataclass
class Image:
    path: Path
    alt: str


@dataclass
class Section:
    title: str
    id: str
    blocks: list = field(default_factory=list)  # str (a paragraph), Table or Image


def markdown_table(headers: list, rows: list[list]) -> str:
    """A GitHub-flavoured Markdown table (what a task's report section holds); `from_markdown` reads it back."""
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows])


IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<path>[^)]+)\)")
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def from_markdown(section, run_dir: Path) -> Section:
    """A task's report section (`textune.tasks.Section`) as blocks: paragraphs, pipe tables and image lines.

    Tables are numbered for their HTML ids: the section's id, then `<id>-2`, ... Plots the Markdown does not show
    are added at the end.
    """
    section_id = section.id or re.sub(r"[^a-z0-9]+", "-", section.title.lower()).strip("-")
    blocks, tables, shown = [], 0, set()
    for chunk in (part.strip() for part in section.markdown.split("\n\n")):
        if not chunk:
            continue
        image = IMAGE.fullmatch(chunk)
        if image:
            path = run_dir / image["path"]
            blocks.append(Image(path, image["alt"]))
            shown.add(path.name)
        elif chunk.startswith("|"):
            lines = chunk.splitlines()
            cells = [[cell.strip().replace("\\|", "|") for cell in CELL_SEPARATOR.split(line.strip()[1:-1])]
                     for line in lines if not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip())]
            tables += 1
            blocks.append(Table(cells[0], cells[1:], section_id if tables == 1 else f"{section_id}-{tables}"))
        else:
            blocks.append(chunk)
    blocks += [Image(path, path.stem.replace("_", " ")) for path in section.plots if path.name not in shown]
    return Section(section.title, section_id, blocks)


def fmt(value) -> str:
    """A table cell: floats to 4 significant decimals, everything else as text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:
            return "n/a"
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"
    if value is None:
        return ""
    return str(value)


def report_sections(data: ReportData, plots: dict[str, Path]) -> list[Section]:
    """The report's content, in reading order, independent of the output format.

    The task's sections (`Task.report_sections`) come after the training curves; one titled like a section of
    the report's own (Data, Configuration) adds to it instead.
    """
    sections = [summary_section(data), metrics_section(data)]
    sections.append(Section("Training curves", "curves",
                            [Image(plots[name], alt) for name, alt in (("loss", "Training and validation loss"),
                                                                      ("metrics", "Validation metrics")) if name in plots]))
    task_sections = [from_markdown(section, data.run_dir) for section in data.task_sections]
    own = {"Data": data_section(data), "Configuration": configuration_section(data)}
    for section in task_sections:
        if section.title not in own:
            sections.append(section)
    for title, section in own.items():
        for extra in (s for s in task_sections if s.title == title):
            section.blocks += extra.blocks
    configuration = own["Configuration"]
    if len(configuration.blocks) > 1:  # the task's settings follow the base model, then the data and training
        shell, *extra = configuration.blocks
        shell.rows[1:1] = [row for table in extra if isinstance(table, Table) for row in table.rows]
        configuration.blocks = [shell]
    sections += own.values()
    return [section for section in sections if section.blocks]


def summary_section(data: ReportData) -> Section:
    record = data.record
    card = data.task.card()
    shown = ", ".join(f"{name} {value:.4f}" for name, value in list(headline(data).items())[:4])
    rows = data.metrics.get("eval_samples") or (len(data.rows) if data.rows is not None else None)
    outputs = card.get("outputs", "").replace("`", "")
    article = "an" if card["kind"][:1].lower() in "aeiou" else "a"
    text = (f"{record.get('base_model')} fine-tuned as {article} {card['kind']}{f' ({outputs})' if outputs else ''} on "
            f"{record.get('data_source')}. Validation ({rows} rows): {shown or 'not evaluated'}.")
    return Section("Summary", "summary", [text] + backend_line(data.run_dir) + data.notes)


def backend_line(run_dir: Path) -> list[str]:
    """The backend `textune predict` uses by default and why (from backend.json), as a one-paragraph list."""
    from ..inference.backend_choice import BACKEND_FILE, read_backend_choice

    choice = read_backend_choice(run_dir)
    if choice is None:
        return []
    return [f"Prediction backend: {choice['chosen']} ({choice.get('reason', '')}); `textune predict`, evaluate "
            f"and serve use it by default (`--backend auto`), and {BACKEND_FILE} has every candidate's numbers."]


def metrics_section(data: ReportData) -> Section:
    rows = [[name, fmt(value), "validation"] for name, value in headline(data).items()]
    seen = {f"eval_{name}" for name in headline(data)}
    for key, value in data.metrics.items():
        if key in seen or not isinstance(value, (int, float)):
            continue
        stage, _, name = key.partition("_")
        if stage not in ("eval", "train"):
            continue
        stage = "validation" if stage == "eval" else "training"
        if name == "loss" and stage == "training":
            name = "loss (mean over the run)"
        rows.append([TIMING.get(name, name), fmt(value), stage])
    return Section("Metrics", "metrics", [Table(["metric", "value", "split"], rows, "metrics")] if rows else [])


def data_section(data: ReportData) -> Section:
    summary = data.data
    if summary is None:
        return Section("Data", "data")
    reasons = list(dict.fromkeys(reason for r in summary.rows for reason in r.dropped))
    headers = ["split", "source", "rows read", *(f"dropped: {reason.replace('_', ' ')}" for reason in reasons),
               "held out", "over --max_*_samples", "rows used"]
    rows = [[r.split, r.source, fmt(r.read), *(r.dropped.get(reason, 0) for reason in reasons), r.held_out, r.capped,
             r.used] for r in summary.rows]
    blocks = ["Rows per split, and why rows were not used" + (f" (dropped: {', '.join(r.replace('_', ' ') for r in reasons)})"
              if reasons else "") + "; \"held out\" rows of the training file became the validation (or demo test) split.",
              Table(headers, rows, "data-rows")]
    return Section("Data", "data", blocks)


def configuration_section(data: ReportData) -> Section:
    record = data.record
    data_args = record.get("data_args", {})
    items = [
        ("base model", record.get("base_model")),
        ("train_file", data_args.get("train_file") or record.get("data_source")),
        ("validation_file", data_args.get("validation_file") or
         f"{data_args.get('validation_split_percentage')}% held out from train"),
        ("test_file", data_args.get("test_file")),
        ("max_train_samples", data_args.get("max_train_samples")),
    ]
    items += list(record.get("training_args", {}).items())
    items.append(("textune version", record.get("textune_version")))
    rows = [[key, f"{value:g}" if isinstance(value, float) else fmt(value)]  # 2e-05, not 0.0000
            for key, value in items if value not in (None, "")]
    return Section("Configuration", "configuration", [Table(["setting", "value"], rows, "configuration")])


def cut(text: str) -> str:
    """One line of at most TEXT_CHARS characters (tables cut long examples; the CSV has them whole)."""
    text = " ".join(text.split())
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS - 1] + "…"


# -- Markdown ----------------------------------------------------------------------------------------------------


def _md_cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(sections: list[Section], run_dir: Path) -> str:
    """report.md: GitHub-flavoured Markdown; images are linked as files under plots/."""
    lines = [f"# Run report: {run_dir.resolve().name}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
                lines.append("|" + "|".join(" --- " for _ in block.headers) + "|")
                lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in block.rows]
            elif isinstance(block, Image):
                lines.append(f"![{block.alt}]({block.path.relative_to(run_dir).as_posix()})")
            else:
                lines.append(str(block))
            lines.append("")
    return "\n".join(lines)


# -- HTML --------------------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
nav a { margin-right: 1em; } .meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f6f8; } tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 0.8em 0; border: 1px solid #eee; }
"""


def _html_cell(value, tag: str = "td") -> str:
    text = str(value)
    numeric = tag == "td" and text.replace(".", "", 1).replace("-", "", 1).replace(",", "").isdigit()
    attributes = ' class="num"' if numeric else ""
    return f"<{tag}{attributes}>{html.escape(text)}</{tag}>"


def render_html(sections: list[Section], data: ReportData, run_dir: Path) -> str:
    """report.html: one file with the CSS and every plot inlined (base64 PNG), so it opens offline anywhere."""
    title = f"Run report: {run_dir.resolve().name}"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f'<p class="meta">{html.escape(str(run_dir))} · generated {generated} by textune '
             f'{html.escape(str(data.record.get("textune_version", "")))}</p>',
             "<nav>" + "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections) + "</nav>"]
    for section in sections:
        parts.append(f'<section id="{section.id}"><h2>{html.escape(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Table):
                table_id = f' id="{block.id}-table"' if block.id else ""
                parts.append(f"<table{table_id}><thead><tr>" + "".join(_html_cell(h, "th") for h in block.headers)
                             + "</tr></thead><tbody>")
                parts += ["<tr>" + "".join(_html_cell(v) for v in row) + "</tr>" for row in block.rows]
                parts.append("</tbody></table>")
            elif isinstance(block, Image):
                encoded = base64.b64encode(block.path.read_bytes()).decode("ascii")
                parts.append(f'<img alt="{html.escape(block.alt)}" src="data:image/png;base64,{encoded}">')
            else:
                parts.append(f"<p>{html.escape(str(block))}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
