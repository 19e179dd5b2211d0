"""The learner examples in examples/ run on a tiny model and do what they say."""

from __future__ import annotations

import json
import os
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


def test_quickstart_notebook_trains_shows_plots_predicts_and_serves(tiny_model_dir, tweets_dir, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    at = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    notebook.cells.insert(at + 1, nbformat.v4.new_code_cell(
        f"MODEL = {str(tiny_model_dir)!r}\nTRAIN_FILE = {str(tweets_dir / 'train.csv')!r}\n"
        "LABEL_COLUMN = 'target'\nMAX_STEPS = 2"))
    # a kernel on this interpreter and this checkout of textune, whatever kernels are installed
    spec = tmp_path / "kernels" / "textune-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"], "language": "python",
                                                  "display_name": "textune test"}))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(EXAMPLES.parent), os.environ.get("PYTHONPATH")])))
    kernels = KernelManager(kernel_name="textune-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))
    NotebookClient(notebook, km=kernels, timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    text = "".join(output.get("text", "") + output.get("data", {}).get("text/plain", "")
                   + output.get("data", {}).get("text/html", "") for output in outputs)
    assert sum("image/png" in output.get("data", {}) for output in outputs) >= 2  # the report's plots
    assert "Validation: {" in text and "'eval_accuracy'" in text
    assert "prob_1" in text and "Forest fire near La Ronge" in text  # the predictions table
    assert "Demo: http://127.0.0.1:" in text and "'predictions'" in text and "server stopped" in text
    assert (tmp_path / "runs" / "notebook" / "textune_run.json").exists()
