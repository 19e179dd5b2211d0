"""Classification's part of the report and the model card: per-class scores, confusion matrix, mistakes, labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...atomic import atomic_write
from ...report.plots import DPI, new_figure
from ...report.render import cut, fmt, markdown_table
from ..protocol import Section
from .files import PREDICTIONS_FILE
from .labels import MULTI, REGRESSION, SINGLE

KINDS = {SINGLE: "text classifier", MULTI: "multi-label text classifier", REGRESSION: "text regression model"}
LOSS_NAMES = {SINGLE: "cross-entropy", MULTI: "binary cross-entropy", REGRESSION: "mean squared error"}
EXAMPLE = "Forest fire near La Ronge Sask. Canada"
SHOWN_LABELS = 20  # the one-line summary names at most this many


def card_facts(task) -> dict:
    """`ClassificationTask.card()`: see `textune.tasks.protocol.Task.card` for the keys."""
    from .heads import DEFAULT_HEAD, head_code_outside_textune
    from .serving import MINIMAL_APP_TEMPLATE

    labels = task.labels
    problem = labels.problem_type
    names = list(labels.display_names) if problem != REGRESSION else []
    if problem == REGRESSION:
        outputs, detail = "one number per text", "One number per text (regression)."
    else:
        outputs = (f"{len(names)} labels: " + ", ".join(f"`{name}`" for name in names[:SHOWN_LABELS])
                   + (" ..." if len(names) > SHOWN_LABELS else ""))
        detail = "\n".join(f"- `{index}`: {name}" for index, name in enumerate(names))
    minimal_problem = None
    if task.head != DEFAULT_HEAD:
        minimal_problem = f"transformers' pipeline cannot build textune's --head {task.head}"
    elif problem == REGRESSION:
        minimal_problem = "a regression model has no labels to show probabilities for"
    module = head_code_outside_textune(task.head)
    needs_code = None
    if module is not None:
        where = "not registered in this process" if module == "unknown" else f"defined in {module}"
        needs_code = (f"uses the head {task.head!r} ({where}), whose code is not part of textune (a built-in "
                      "--head avoids that)")
    limitations = [f"- Texts longer than {task.max_seq_length} tokens are truncated to their first "
                   f"{task.max_seq_length} tokens."]
    if len(task.columns.text) > 1 or task.columns.text_pair or task.preprocess:
        limitations.append("- Trained on joined columns or preprocessed text: the transformers pipeline above feeds "
                           "the text as it is; textune's Predictor applies the same preparation as training.")
    return {
        "kind": KINDS[problem], "pipeline_tag": "text-classification", "tags": ["text-classification", problem],
        "outputs": outputs, "outputs_list": detail, "example": EXAMPLE, "pipeline_kwargs": {"top_k": None},
        "loss": LOSS_NAMES[problem], "limitations": limitations,
        "minimal_app": None if minimal_problem else MINIMAL_APP_TEMPLATE, "minimal_app_problem": minimal_problem,
        "needs_code": needs_code,
    }


# -- report sections ---------------------------------------------------------------------------------------------

TOP_WRONG = 10


@dataclass
class ValidationResults:
    """The model's predictions on the validation split and what the report derives from them.

    Attributes:
        table: One row per validation example: text, label, prediction, per-class probabilities, correct.
        per_class: Precision, recall, F1 and support per label (classification), else empty.
        confusion: Counts, rows = true label, columns = predicted label (single-label only), else None.
        wrong: The most confidently wrong examples (classification) or the largest errors (regression).
        references: True targets as the model sees them (class ids, multi-hot rows, or values).
        predictions: Predicted targets in the same form.
    """

    table: pd.DataFrame
    per_class: pd.DataFrame
    confusion: np.ndarray | None
    wrong: pd.DataFrame
    references: np.ndarray
    predictions: np.ndarray


def validation_results(frame: pd.DataFrame, task, records: pd.DataFrame, top: int = TOP_WRONG) -> ValidationResults:
    """Score the validation rows' records (`decode`'s table, one row per frame row) against their labels."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    problem = task.labels.problem_type
    references = np.asarray(task.labels.encode(frame[task.columns.label], where="validation"))
    if problem == MULTI:
        references = references.astype(np.int64)
    records = records.reset_index(drop=True)
    scores = task.records_scores(records)
    predictions = task.hard_predictions(scores)
    true = frame[task.columns.label].to_numpy()
    if task.labels.names:  # --label_names: true labels named as the predictions are
        true = task.label_strings(references, task.labels.names)
    table = pd.DataFrame({"text": _texts(frame, task), "label": true})
    table = pd.concat([table, records], axis=1)

    per_class, confusion = pd.DataFrame(), None
    if problem == REGRESSION:
        table["error"] = predictions - references
        badness = np.abs(table["error"].to_numpy())
        wrong = table.assign(abs_error=badness).sort_values("abs_error", ascending=False, kind="stable")
        wrong = wrong[["text", "label", "prediction", "abs_error"]].head(top)
    else:
        names = task.labels.display_names
        if problem == SINGLE:
            correct = predictions == references
            confidence = scores[np.arange(len(scores)), predictions] if len(scores) else np.zeros(0)
            confusion = confusion_matrix(references, predictions, labels=list(range(len(names))))
            support_of = dict(labels=list(range(len(names))))
        else:  # MULTI: a row is wrong when any label is; its confidence is the surest wrong label's certainty
            mistakes = predictions != references
            correct = ~mistakes.any(axis=1)
            confidence = (np.where(mistakes, np.maximum(scores, 1 - scores), 0).max(axis=1) if len(scores)
                          else np.zeros(0))
            support_of = {}
        table["correct"] = correct
        table["confidence"] = confidence
        precision, recall, f1, support = precision_recall_fscore_support(
            references, predictions, average=None, zero_division=0, **support_of)
        per_class = pd.DataFrame({"label": names, "precision": precision, "recall": recall, "f1": f1,
                                  "support": support.astype(int)})
        wrong = table.loc[~table["correct"]].sort_values("confidence", ascending=False, kind="stable")
        wrong = wrong[["text", "label", "prediction", "confidence"]].head(top)
    return ValidationResults(table, per_class, confusion, wrong.reset_index(drop=True), references, predictions)


def _texts(frame: pd.DataFrame, task) -> list[str]:
    texts = task.columns.texts(frame)
    pairs = task.columns.pairs(frame)
    return texts if pairs is None else [f"{a} [SEP] {b}" for a, b in zip(texts, pairs)]


def report_sections(task, rows: pd.DataFrame | None, records: pd.DataFrame | None, plots_dir: Path,
                    splits: dict[str, pd.DataFrame] | None = None, tokenizer=None) -> list[Section]:
    """`ClassificationTask.report_sections`: the error sections, then the labels and lengths of the Data section."""
    sections = [configuration_section(task)]
    if rows is not None and records is not None and len(rows):
        results = validation_results(rows, task, records)
        predictions = plots_dir.parent / PREDICTIONS_FILE
        with atomic_write(predictions, newline="") as handle:
            results.table.to_csv(handle, index=False)
        errors = error_sections(task, results, plots_dir)
        errors[-1].files["validation_predictions"] = predictions  # the mistakes section is drawn from it
        sections += errors
    if splits:
        sections += data_sections(task, splits, tokenizer, plots_dir)
    return [section for section in sections if section.markdown or section.plots]


def configuration_section(task) -> Section:
    """Rows for the report's Configuration table: what the task was trained to read and predict."""
    labels = task.labels
    items = [
        ("problem type", labels.problem_type),
        ("labels", ", ".join(name if name == raw else f"{name} ({raw})"  # --label_names: the raw label beside
                             for name, raw in zip(labels.display_names[:30], labels.labels))
         + (" …" if len(labels.labels) > 30 else "")),
        ("text column(s)", ", ".join(task.columns.text)),
        ("text pair column", task.columns.text_pair),
        ("label column", task.columns.label),
        ("max_seq_length", task.max_seq_length),
    ]
    return Section("Configuration", markdown_table(["setting", "value"], [[key, fmt(value)] for key, value in items
                                                                         if value not in (None, "")]))


def error_sections(task, results: ValidationResults, plots_dir: Path) -> list[Section]:
    problem = task.labels.problem_type
    sections = []
    if not results.per_class.empty:
        sections.append(Section("Per-class precision, recall and F1 (validation)", markdown_table(
            list(results.per_class.columns), [[fmt(v) for v in row] for row in results.per_class.itertuples(index=False)]),
            id="per-class"))
    if results.confusion is not None:
        names = task.labels.display_names
        table = markdown_table(["true \\ predicted"] + names,
                               [[name] + [int(v) for v in row] for name, row in zip(names, results.confusion)])
        plot = save(plot_confusion(results.confusion, names), plots_dir / "confusion_matrix.png")
        sections.append(Section("Confusion matrix (validation)", "\n\n".join([
            "Rows are the true labels, columns the predicted ones; the diagonal is correct.", table,
            image(plot, "Confusion matrix")]), [plot], id="confusion-matrix"))
    if problem == REGRESSION:
        plot = save(plot_regression(results, task), plots_dir / "predicted_vs_true.png")
        sections.append(Section("Predicted vs true (validation)", image(plot, "Predicted vs true values"), [plot],
                                id="predicted-vs-true"))
    regression = problem == REGRESSION
    title = "Largest validation errors" if regression else "Most confidently wrong validation examples"
    if results.wrong.empty:
        text = "The model got every validation example right."
    else:
        rows = [[cut(str(row.text))] + [fmt(v) for v in row[1:]] for row in results.wrong.itertuples(index=False)]
        confidence = {REGRESSION: "", SINGLE: "probability of the predicted label",
                      MULTI: "certainty of its surest wrong label"}[problem]
        note = ("Sorted by how far off the prediction is." if regression else
                f"Sorted by the model's confidence in its wrong answer ({confidence}). "
                "Confident mistakes are often label noise or a pattern the model has not learned.")
        text = note + "\n\n" + markdown_table(list(results.wrong.columns), rows)
    sections.append(Section(title, text, id="wrong"))
    return sections


def data_sections(task, splits: dict[str, pd.DataFrame], tokenizer, plots_dir: Path) -> list[Section]:
    """Labels per split and text lengths in tokens, added to the report's Data section."""
    counts, stats = label_distribution(splits, task)
    parts = []
    if not counts.empty:
        totals = counts.sum(axis=0)
        label_rows = [[label] + [f"{count} ({count / max(totals[role], 1):.1%})" for role, count in row.items()]
                      for label, row in counts.iterrows()]
        parts += ["Label distribution (rows per label; multi-label rows count once per label):",
                  markdown_table(["label"] + list(counts.columns), label_rows)]
    if not stats.empty:
        parts += ["Target value distribution:",
                  markdown_table(["statistic"] + list(stats.columns),
                                 [[name] + [fmt(float(v)) for v in row] for name, row in stats.iterrows()])]
    sections = [Section("Data", "\n\n".join(parts), id="labels")]
    if tokenizer is not None:
        lengths = {role: token_lengths(frame, task, tokenizer) for role, frame in splits.items()}
        table = length_table(lengths, task.max_seq_length)
        parts = []
        if table:
            parts += ["Text length in tokens (the model's tokenizer, before truncation):",
                      markdown_table(list(table[0]), [list(row.values()) for row in table])]
        figure = plot_text_length(lengths, task.max_seq_length)
        plots = [save(figure, plots_dir / "text_length.png")] if figure is not None else []
        parts += [image(path, "Text length histogram") for path in plots]
        sections.append(Section("Data", "\n\n".join(parts), plots, id="lengths"))
    return sections


def label_distribution(frames: dict[str, pd.DataFrame], task) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts per label and split (classification), or summary statistics per split (regression)."""
    label = task.columns.label
    with_labels = {role: frame for role, frame in frames.items() if label in frame.columns}
    if task.labels.problem_type == REGRESSION:
        stats = pd.DataFrame({role: pd.to_numeric(frame[label], errors="coerce").describe()
                              for role, frame in with_labels.items()})
        return pd.DataFrame(), stats
    counts = {}
    names = task.labels.display_names
    for role, frame in with_labels.items():
        try:
            encoded = np.asarray(task.labels.encode(frame[label], where=role))
        except Exception:  # a test file's labels may hold classes training never saw; count them as given
            counts[role] = frame[label].astype(str).value_counts()
            continue
        if task.labels.problem_type == MULTI:
            counts[role] = pd.Series(encoded.sum(axis=0).astype(int), index=names)
        else:
            counts[role] = pd.Series(np.bincount(encoded, minlength=len(names)), index=names)
    table = pd.DataFrame(counts).fillna(0).astype(int)
    table.index.name = "label"
    return table, pd.DataFrame()


def token_lengths(frame: pd.DataFrame, task, tokenizer) -> np.ndarray:
    """Tokens per text (special tokens included) before truncation, so the histogram shows what was cut."""
    if len(frame) == 0:
        return np.zeros(0, dtype=int)
    encoded = tokenizer(task.columns.texts(frame), task.columns.pairs(frame), truncation=False, verbose=False)
    return np.asarray([len(ids) for ids in encoded["input_ids"]])


def length_table(token_lengths: dict[str, np.ndarray], max_seq_length: int) -> list[dict]:
    """One row per split: token-length percentiles and how many texts --max_seq_length truncates."""
    rows = []
    for role, lengths in token_lengths.items():
        if len(lengths) == 0:
            continue
        truncated = int((lengths > max_seq_length).sum())
        rows.append({
            "split": role, "texts": len(lengths), "min": int(lengths.min()),
            "median": int(np.median(lengths)), "p95": int(np.percentile(lengths, 95)), "max": int(lengths.max()),
            f"> {max_seq_length} (truncated)": f"{truncated} ({truncated / len(lengths):.1%})",
        })
    return rows


# -- plots -------------------------------------------------------------------------------------------------------


def save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def image(path: Path, alt: str) -> str:
    return f"![{alt}]({path.parent.name}/{path.name})"


def plot_confusion(counts: np.ndarray, names: list[str]):
    """Counts of true vs predicted labels on validation; colour is the share of each true class."""
    n = len(names)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(4.5 + 0.35 * n, 14)
    figure, axes = new_figure(size + 1.2, size)
    shown = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(shown, ax=axes, label="Share of the true class's rows")
    if n <= 25:
        for i in range(n):
            for j in range(n):
                axes.text(j, i, f"{counts[i, j]}\n{shares[i, j]:.0%}", ha="center", va="center",
                          fontsize=9 if n < 8 else 7, color="white" if shares[i, j] > 0.5 else "black")
    short = [name if len(name) <= 18 else name[:17] + "…" for name in names]
    axes.set_xticks(range(n), short, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    axes.set_yticks(range(n), short)
    axes.set_xlabel("Predicted label")
    axes.set_ylabel("True label")
    axes.set_title(f"Confusion matrix (validation, {int(counts.sum())} rows)")
    return figure


def plot_regression(results: ValidationResults, task):
    """Predicted against true value on validation, with the line a perfect model would lie on."""
    from sklearn.metrics import r2_score

    truth, predicted = results.references, results.predictions
    figure, axes = new_figure(5.5, 5.2)
    axes.scatter(truth, predicted, s=12, alpha=0.6, label="validation rows")
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="0.4", label="perfect prediction (y = x)")
    r2 = r2_score(truth, predicted) if len(truth) > 1 else None
    title = f"Predicted vs true (validation, {len(truth)} rows"
    axes.set_title(title + (f", R² = {r2:.3f})" if r2 is not None else ")"))
    axes.set_xlabel(f"True value ({task.columns.label})")
    axes.set_ylabel("Predicted value")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    return figure


def plot_text_length(token_lengths: dict[str, np.ndarray], cap: int):
    """Tokens per text in each split, and where --max_seq_length cuts them."""
    lengths = {role: values for role, values in token_lengths.items() if len(values)}
    if not lengths:
        return None
    figure, axes = new_figure()
    longest = max(int(values.max()) for values in lengths.values())
    shortest = min(int(values.min()) for values in lengths.values())
    top = max(longest, cap) if cap <= 1.5 * longest else longest
    # whole-token bin widths (fractional ones alias into a comb pattern), at most ~50 bins
    width = max(1, int(np.ceil((top - shortest + 1) / 50)))
    bins = np.arange(shortest, top + width + 1, width) - 0.5
    for role, values in lengths.items():
        axes.hist(values, bins=bins, histtype="step", linewidth=1.6, label=f"{role} ({len(values)} texts)")
    if cap <= top:
        cut_count = sum(int((values > cap).sum()) for values in lengths.values())
        axes.axvline(cap, color="crimson", linestyle="--", label=f"--max_seq_length {cap} ({cut_count} texts truncated)")
    else:
        axes.plot([], [], " ", label=f"all texts are shorter than --max_seq_length {cap}")
    axes.set_title("Text length distribution (before truncation)")
    axes.set_xlabel("Text length (tokens, special tokens included)")
    axes.set_ylabel("Texts (rows)")
    axes.set_ylim(0, axes.get_ylim()[1] * 1.3)  # headroom so the legend does not cover the peak
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", framealpha=0.95)
    return figure
