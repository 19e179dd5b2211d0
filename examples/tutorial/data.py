"""Data module: where the training rows come from and how they are cleaned. Replace it to use your own data.

Returns plain pandas DataFrames with a `text` and a `target` column; textune takes them as they are.
"""

from __future__ import annotations

import re

import pandas as pd

from textune import read_table
from textune.models.packaged import demo_data_path

URL = re.compile(r"https?://\S+")


def clean(text: str) -> str:
    """Lower-case, replace links by a placeholder, squeeze spaces: what many tweet tutorials do first."""
    return " ".join(URL.sub("http", text.lower()).split())


def load_tweets(path: str | None = None) -> pd.DataFrame:
    """The labelled tweets: `path` (csv, tsv, json, jsonl or parquet), or the packaged Kaggle training file."""
    frame = read_table(path or demo_data_path())
    frame["text"] = frame["text"].astype(str).map(clean)
    return frame[["id", "text", "target"]]


def split(frame: pd.DataFrame, validation_fraction: float = 0.1, seed: int = 42):
    """A seeded random train/validation split (textune can also do this itself: leave validation out)."""
    validation = frame.sample(frac=validation_fraction, random_state=seed)
    return frame.drop(validation.index), validation
