"""Classification's prediction files (predict_results.txt, predictions.csv, submission.csv) and the rows it keeps
or brings for checking an exported model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...atomic import atomic_write, write_text_atomically
from .columns import ColumnSpec

PREDICTIONS_FILE = "validation_predictions.csv"  # beside the report: the table its error sections are drawn from

# What an export is checked on when the run's validation rows cannot be found (the data moved, no report).
EXAMPLE_TEXTS = [
    "Forest fire near La Ronge Sask. Canada",
    "Just happened a terrible car crash",
    "I love fruits",
    "What a goooooooaaaaaal!!!!!!",
    "The flood water is rising fast, residents were told to evacuate tonight",
    "this is ridiculous....",
    "Summer is lovely",
    "Heard about the earthquake? Different cities, stay safe everyone",
    "My car is so fast",
    "There's an emergency evacuation happening now in the building across the street",
    "Was in NYC last week!",
    "No way...I can't eat that shit",
    "Thunderstorm warning for the county until 9 pm. Stay indoors and away from windows.",
    "You must be the coolest person in the whole wide world, I mean it, and also the kindest one I know of",
    "ok",
    "Police say the explosion at the plant injured three workers; the cause is under investigation",
] * 4


def prediction_table(columns: ColumnSpec, rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """predictions.csv: the input's id column (if any), the text, the prediction and its probabilities."""
    table = pd.DataFrame()
    if columns.id and columns.id in rows.columns:
        table[columns.id] = rows[columns.id].to_numpy()
    table["text"] = columns.texts(rows)
    if columns.text_pair:
        table["text_pair"] = columns.pairs(rows)
    for name in records.columns:
        table[name] = records[name].to_numpy()
    return table


def write_predictions(task, output_dir: Path, rows: pd.DataFrame, records: pd.DataFrame,
                      predictions_file: str | Path | None = None) -> dict[str, Path]:
    """Write predict_results.txt (run_classification.py's format), predictions.csv and, with ids, submission.csv.

    predict_results.txt and predictions.csv name classes by `--label_names`; submission.csv keeps the raw labels.
    """
    columns = task.columns
    scores = task.records_scores(records)
    written = {}
    results = output_dir / "predict_results.txt"
    write_text_atomically(results, "index\tprediction\n" + "".join(line + "\n" for line in task.result_lines(scores)))
    written["predict_results"] = results
    table = prediction_table(columns, rows, records)
    predictions = Path(predictions_file) if predictions_file else output_dir / "predictions.csv"
    with atomic_write(predictions, newline="") as handle:  # newline="": pandas writes its own line endings
        table.to_csv(handle, index=False)
    written["predictions"] = predictions
    if columns.id and columns.id in rows.columns:
        submission = output_dir / "submission.csv"
        # Kaggle scores the raw labels (0/1), not the --label_names the other files show
        with atomic_write(submission, newline="") as handle:
            pd.DataFrame({columns.id: table[columns.id], columns.label: task.raw_predictions(scores)}).to_csv(
                handle, index=False)
        written["submission"] = submission
    return written


def saved_validation_rows(columns: ColumnSpec, run_dir: Path, limit: int) -> pd.DataFrame | None:
    """The run's validation rows from the report's validation_predictions.csv, in the run's columns, or None."""
    report_file = run_dir / PREDICTIONS_FILE
    if not report_file.exists():
        return None
    table = pd.read_csv(report_file, keep_default_na=False, dtype=str)
    if "text" not in table.columns or not len(table):
        return None
    if columns.text_pair and "text_pair" not in table.columns:
        return None
    # The report stores each row's joined text; the check needs the model's input, not the columns.
    frame = columns.rows_of(table["text"], table["text_pair"] if columns.text_pair else None)
    if "label" in table.columns:
        frame[columns.label] = table["label"]
    return frame.head(limit)
