"""The report's shell speaks only the task protocol: a stub task's sections, metrics and loss name are rendered."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from textune.report.build import ReportData
from textune.report.plots import draw_plots
from textune.report.render import markdown_table, render_html, render_markdown, report_sections
from textune.tasks import Section


class AnswerTask:
    """Stands for extractive QA: its own headline metric, loss name and sections, no labels."""

    headline_metrics = ("exact_match", "f1")
    metric_scale = 1.0

    def card(self):
        return {"kind": "answer finder", "outputs": "an answer span per question", "loss": "span cross-entropy"}

    def report_sections(self, rows, records, plots_dir, splits=None, tokenizer=None):
        lengths = plots_dir / "answer_length.png"
        lengths.write_bytes(b"\x89PNG\r\n\x1a\nstub")
        table = markdown_table(["question", "answer"], [[q, a] for q, a in zip(rows["question"], records["answer"])])
        return [Section("Answer lengths", f"Answers the model found:\n\n{table}\n\n![Answer lengths](plots/{lengths.name})",
                        [lengths]),
                Section("Data", f"Questions per split: {', '.join(f'{k} {len(v)}' for k, v in splits.items())}."),
                Section("Configuration", markdown_table(["setting", "value"], [["doc_stride", 128]]))]


def stub_report(tmp_path: Path):
    rows = pd.DataFrame({"question": ["Where?", "Who | when?"], "context": ["In Paris", "Ann, today"]})
    records = pd.DataFrame({"answer": ["Paris", "Ann"]})
    data = ReportData(tmp_path, {"base_model": "tiny", "data_source": "qa.json", "task": {"name": "answers"},
                                 "training_args": {"seed": 1}},
                      AnswerTask(), {"eval_exact_match": 0.5, "eval_f1": 0.75, "eval_loss": 1.5},
                      [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}, {"step": 2, "eval_loss": 1.5,
                                                                             "eval_exact_match": 0.5}],
                      rows=rows, records=records)
    (tmp_path / "plots").mkdir()
    data.task_sections = data.task.report_sections(rows, records, tmp_path / "plots",
                                                   splits={"train": rows, "validation": rows})
    return data


def test_the_report_shell_renders_a_stub_tasks_sections_metrics_and_loss_name(tmp_path):
    data = stub_report(tmp_path)
    plots = draw_plots(data, tmp_path / "plots")
    assert set(plots) == {"loss", "metrics"}
    sections = report_sections(data, plots)
    titles = [section.title for section in sections]
    assert titles == ["Summary", "Metrics", "Training curves", "Answer lengths", "Data", "Configuration"]
    md = render_markdown(sections, tmp_path)
    assert "fine-tuned as an answer finder (an answer span per question)" in md
    assert "| exact_match | 0.5000 | validation |" in md and "| f1 | 0.7500 | validation |" in md
    assert "| Who \\| when? | Ann |" in md  # a cell's "|" survives the Markdown round trip
    assert "![Answer lengths](plots/answer_length.png)" in md
    assert "Questions per split: train 2, validation 2." in md  # the task's Data section joins the report's
    configuration = md.split("## Configuration")[1]
    assert configuration.index("| base model | tiny |") < configuration.index("| doc_stride | 128 |") \
        < configuration.index("| seed | 1 |")
    html = render_html(sections, data, tmp_path)
    assert 'id="answer-lengths"' in html and 'id="answer-lengths-table"' in html
    assert "<td>Who | when?</td>" in html and html.count("data:image/png;base64,") == 3


def test_squad_counts_are_neither_curves_nor_model_index_metrics_and_its_scores_keep_their_0_to_100_axis(tmp_path):
    import json

    from textune.report.model_card import validation_metrics
    from textune.report.plots import plot_metrics

    class SquadTask(AnswerTask):
        metric_scale = 100.0  # SQuAD's percentages

    scores = {"eval_exact_match": 62.5, "eval_f1": 70.0, "eval_HasAns_f1": 80.0, "eval_HasAns_total": 40,
              "eval_NoAns_total": 8}
    data = ReportData(tmp_path, {}, SquadTask(), scores, [{"step": 1, "eval_loss": 1.5, **scores},
                                                          {"step": 2, "eval_loss": 1.2, **scores}])
    axes = plot_metrics(data).axes[0]
    assert sorted(line.get_label() for line in axes.get_lines()) == ["HasAns_f1", "exact_match", "f1"]
    assert axes.get_ylim() == (-2.0, 102.0) and axes.get_ylabel() == "Score (0 to 100, higher is better)"
    (tmp_path / "eval_results.json").write_text(json.dumps(scores | {"eval_samples": 48}))
    assert validation_metrics(tmp_path) == {"exact_match": 62.5, "f1": 70.0, "HasAns_f1": 80.0}
