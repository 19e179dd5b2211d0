"""Reading question-answering data: SQuAD's nested JSON, its flattened rows, and plain tables with answer text.

Every form ends as one table row per question, with the answers in SQuAD's flattened shape
`{"text": [...], "answer_start": [...]}` (character offsets into the context); no answers means unanswerable (v2).
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ...data.tables import ID_COLUMNS, check_data_file
from ...errors import TextuneError

logger = logging.getLogger(__name__)

QUESTION, CONTEXT, ANSWERS, ID = "question", "context", "answers", "id"


def read_squad(path: str | Path, encoding: str | None = None, flag: str = "--train_file") -> pd.DataFrame | None:
    """Rows of a SQuAD JSON file (`{"data": [...]}`), or None when the file is another kind of table.

    Two shapes sit under `data`: SQuAD v1.1/v2.0's articles (`{"title", "paragraphs": [{"context", "qas"}]}`), and
    rows already flattened (`{"id", "question", "context", "answers"}`, as transformers' run_qa.py reads them).

    Raises:
        TextuneError: The file is SQuAD JSON but a question lacks a field (naming the article and question).
    """
    path, suffix = check_data_file(path, flag)
    if suffix != ".json":
        return None
    from pandas.io.common import get_handle

    with get_handle(path, "r", encoding=encoding or "utf-8", compression="infer") as handle:
        head = handle.handle.read(1024)
        if not head.lstrip().startswith("{"):  # a JSON array of rows: no need to read the rest here
            return None
        text = head + handle.handle.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:  # JSON Lines: one object per line; the plain table reader takes it
        return None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return None
    items = data["data"]
    if not items:
        raise TextuneError(f"{flag} {path}: its \"data\" list is empty; it holds no questions")
    if all(isinstance(item, dict) and "paragraphs" in item for item in items):
        return _flatten_articles(items, f"{flag} {path}")
    return pd.DataFrame(items)


def _flatten_articles(articles: list[dict], where: str) -> pd.DataFrame:
    rows = []
    for number, article in enumerate(articles, start=1):
        title = article.get("title", "")
        for paragraph in article["paragraphs"]:
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise TextuneError(f"{where}: a paragraph of article {number} ({title!r}) has no \"context\" text")
            for qa in paragraph.get("qas", []):
                if "question" not in qa:
                    raise TextuneError(f"{where}: question {qa.get('id', '?')!r} of article {number} has no "
                                       "\"question\" field")
                # v2.0's impossible questions keep `plausible_answers` for analysis; they are not gold answers
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                rows.append({
                    ID: str(qa.get("id", len(rows))), "title": title, QUESTION: qa["question"], CONTEXT: context,
                    ANSWERS: {"text": [a["text"] for a in answers],
                              "answer_start": [int(a["answer_start"]) for a in answers]},
                })
    if not rows:
        raise TextuneError(f"{where} holds no questions (every paragraph's \"qas\" list is empty)")
    return pd.DataFrame(rows)


def id_column(rows: pd.DataFrame) -> str | None:
    """The column that identifies questions (SQuAD's `id`, or another usual id name), if the rows have one."""
    return next((name for name in ID_COLUMNS if name in rows.columns), None)


def parse_answers(value, context: str, where: str) -> dict:
    """One row's answers in SQuAD's flattened shape, with every start checked against the context.

    Takes SQuAD's dict (from JSON, JSONL, or Parquet's arrays), the same as a JSON string (CSV), SQuAD's nested list
    of `{"text", "answer_start"}`, or the answer's text alone, whose start is then found in the context. Nothing
    (None, NaN, "", empty lists) means the question has no answer.

    Args:
        value: The answer column's value.
        context: The row's context.
        where: The file and row, for errors ("--train_file data.csv row 3").

    Raises:
        TextuneError: An answer that is not in its context, or a value of another shape.
    """
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith(("{", "[")):
            value = _parse_literal(stripped, where)
        elif not stripped:
            return {"text": [], "answer_start": []}
        else:
            start = _find(value, context, where)
            return {"text": [context[start:start + len(value)]], "answer_start": [start]}
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return {"text": [], "answer_start": []}
    if isinstance(value, (list, tuple, np.ndarray)):  # SQuAD's nested [{"text", "answer_start"}, ...]
        if not all(isinstance(item, dict) for item in value):
            raise TextuneError(f"{where}: the answers are a list of {type(value[0]).__name__}, not of "
                               "{\"text\": ..., \"answer_start\": ...}")
        value = {"text": [item.get("text") for item in value],
                 "answer_start": [item.get("answer_start") for item in value]}
    if not isinstance(value, dict) or "text" not in value:
        raise TextuneError(f"{where}: answers must be {{\"text\": [...], \"answer_start\": [...]}} or the answer's "
                           f"text, not {str(value)[:60]!r}")
    texts = _as_list(value["text"])
    starts = _as_list(value.get("answer_start"))
    if not starts and texts:  # texts alone: find each in the context
        starts = [None] * len(texts)
    if len(texts) != len(starts):
        raise TextuneError(f"{where}: {len(texts)} answer texts but {len(starts)} answer_start values; give one start "
                           "per text")
    checked_texts, checked_starts = [], []
    for text, start in zip(texts, starts):
        text = str(text)
        if start is None or (isinstance(start, float) and np.isnan(start)):
            start = _find(text, context, where)
        else:
            start = _check_start(text, int(start), context, where)
        checked_texts.append(context[start:start + len(text)])
        checked_starts.append(start)
    return {"text": checked_texts, "answer_start": checked_starts}


def _parse_literal(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:  # pandas writes a dict column to CSV as Python's repr, with single quotes
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise TextuneError(f"{where}: the answers {text[:60]!r} are neither JSON nor a Python literal; write them as "
                           "{\"text\": [\"...\"], \"answer_start\": [0]}") from None


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _find(text: str, context: str, where: str) -> int:
    start = context.find(text)
    if start < 0:  # answers typed by hand often differ in case only ("Wildfire" in "wildfire near ...")
        start = context.lower().find(text.lower())
    if start < 0 or not text:
        raise TextuneError(f"{where}: the answer {text[:60]!r} is not in its context; fix the answer or the context "
                           "(an empty answer means none)")
    return start


def _check_start(text: str, start: int, context: str, where: str) -> int:
    if context[start:start + len(text)] == text:
        return start
    # some exported data sets are off by a few characters; the occurrence nearest the given start is the one meant
    found = list(_occurrences(text, context))
    if not found:
        raise TextuneError(f"{where}: the answer {text[:60]!r} is not in its context (answer_start {start}); fix the "
                           "answer or the context")
    return min(found, key=lambda i: abs(i - start))


def _occurrences(text: str, context: str):
    i = context.find(text)
    while i >= 0 and text:
        yield i
        i = context.find(text, i + 1)


def row_label(where: str, rows: pd.DataFrame, position: int) -> str:
    """How errors name a row: its number in the file (1 = first data row) and its id when there is one."""
    column = id_column(rows)
    label = f"{where} row {position + 1}"
    return f"{label} (id {rows[column].iloc[position]!r})" if column else label


def normalise_answers(rows: pd.DataFrame, column: str, context_column: str, where: str) -> list[dict]:
    """`parse_answers` of every row, naming the row of a bad value."""
    answers = []
    for position, (value, context) in enumerate(zip(rows[column].tolist(), rows[context_column].tolist())):
        answers.append(parse_answers(value, context, row_label(where, rows, position)))
    return answers
