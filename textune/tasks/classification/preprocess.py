"""Named preprocessing steps (`--preprocess lowercase,normalize_tweets`), applied to every split and at prediction.

A step is `fn(frame, columns) -> frame`; the run records the names so predict and serve repeat them.
"""

from __future__ import annotations

import html
import re
from typing import Callable

import pandas as pd

from .columns import ColumnSpec
from ...errors import TextuneError

PREPROCESSORS: dict[str, Callable[[pd.DataFrame, ColumnSpec], pd.DataFrame]] = {}


def register_preprocessor(name: str, fn: Callable[[pd.DataFrame, ColumnSpec], pd.DataFrame]) -> None:
    """Register `fn(frame, columns) -> frame` for `--preprocess name`. It must not drop or reorder rows."""
    PREPROCESSORS[name] = fn


def _map_text(frame: pd.DataFrame, columns: ColumnSpec, fn: Callable[[str], str]) -> pd.DataFrame:
    frame = frame.copy()
    for name in columns.text + ([columns.text_pair] if columns.text_pair else []):
        frame[name] = frame[name].fillna("").astype(str).map(fn)
    return frame


URL = re.compile(r"https?://\S+|www\.\S+")
MENTION = re.compile(r"@\w+")


def _normalize_tweet(text: str) -> str:
    text = html.unescape(text)
    text = URL.sub("http", text)
    return MENTION.sub("@user", text)


def _join_keyword_location(frame: pd.DataFrame, columns: ColumnSpec) -> pd.DataFrame:
    """Prefix the text with the tweet's keyword and location when present: 'fire | Paris | text'."""
    frame = frame.copy()
    target = columns.text[0]
    parts = [frame[c].fillna("").astype(str).str.replace("%20", " ") for c in ("keyword", "location") if c in frame]
    parts.append(frame[target].fillna("").astype(str))
    frame[target] = pd.concat(parts, axis=1).apply(lambda row: " | ".join(p for p in row if p.strip()), axis=1)
    return frame


register_preprocessor("lowercase", lambda frame, columns: _map_text(frame, columns, str.lower))
register_preprocessor("normalize_tweets", lambda frame, columns: _map_text(frame, columns, _normalize_tweet))
register_preprocessor("join_keyword_location", _join_keyword_location)


def parse_steps(spec: str | None) -> list[str]:
    """`--preprocess a,b` as a checked list of registered names."""
    steps = [s.strip() for s in (spec or "").split(",") if s.strip()]
    for step in steps:
        if step not in PREPROCESSORS:
            raise TextuneError(f"--preprocess {step!r} is not known; use one of {', '.join(PREPROCESSORS)}")
    return steps


def apply_steps(frame: pd.DataFrame, columns: ColumnSpec, steps: list[str]) -> pd.DataFrame:
    for step in steps:
        if step not in PREPROCESSORS:
            raise TextuneError(f"preprocessing step {step!r} is not registered in this process; "
                               "import the module that calls register_preprocessor first")
        frame = PREPROCESSORS[step](frame, columns)
    return frame
