"""The learner examples in examples/ run on a tiny model and do what they say."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from conftest import toy_frame

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.usefixtures("restore_registries")


@pytest.fixture
def clean_imports():
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name in ("data", "model"):
            del sys.modules[name]


def test_tutorial_three_file_example_trains_and_predicts(tiny_model_dir, tmp_path, monkeypatch, capsys, clean_imports):
    toy_frame(60, seed=1).to_csv(tmp_path / "tweets.csv", index=False)
    monkeypatch.syspath_prepend(str(EXAMPLES / "tutorial"))
    monkeypatch.setattr(sys, "argv", ["main.py", "--train_file", str(tmp_path / "tweets.csv"), "--backbone",
                                      str(tiny_model_dir), "--max_steps", "2", "--output_dir", str(tmp_path / "run")])
    runpy.run_path(str(EXAMPLES / "tutorial" / "main.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "validation:" in out and "prob_1" in out
    assert (tmp_path / "run" / "textune_run.json").exists()


def test_custom_head_and_metric_example_uses_both(tiny_model_dir, tmp_path, capsys):
    toy_frame(60, seed=1).to_csv(tmp_path / "tweets.csv", index=False)
    namespace = runpy.run_path(str(EXAMPLES / "custom_head_and_metric.py"))
    predictor = namespace["main"](["--train_file", str(tmp_path / "tweets.csv"), "--label_column_name", "target",
                                   "--model", str(tiny_model_dir), "--max_steps", "2",
                                   "--output_dir", str(tmp_path / "run")])
    assert "validation error rate:" in capsys.readouterr().out
    assert type(predictor.model.head).__name__ == "GatedHead" and predictor.model.head.calls > 0
