"""Every run writes README.md, a model card the Hub reads: metadata and metrics from the run's own files, offline."""

from __future__ import annotations

import json
import socket

import pytest

from textune.cli import main
from textune.report.model_card import build_model_card, hub_base_model, write_model_card
from textune.run_folder import write_run_file

from conftest import train_tiny_run


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    return train_tiny_run(tiny_model_dir, tmp_path_factory)


def test_training_writes_a_model_card_whose_metadata_and_metrics_are_the_runs(tiny_run):
    from huggingface_hub import ModelCard

    card = ModelCard.load(tiny_run / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-classification"
    assert "textune" in card.data.tags and card.data.base_model is None  # a local folder is no Hub id
    evaluated = json.loads((tiny_run / "eval_results.json").read_text())
    recorded = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert "accuracy" in recorded and not {"loss", "runtime", "samples_per_second", "epoch"} & set(recorded)
    assert all(value == evaluated[f"eval_{name}"] for name, value in recorded.items())
    assert all(result.dataset_split == "validation" for result in card.data.eval_results)
    text = card.text
    assert "- `0`: 0" in text and "- `1`: 1" in text  # the labels, in order
    assert "`train.csv`, 64 rows" in text and "`val.csv`, 16 rows" in text
    assert 'pipeline("text-classification"' in text and "Predictor.from_run" in text
    assert "truncated to their first 512 tokens" in text and "validation set has 16 rows" in text
    assert "learning_rate: 2e-05" in text


def test_the_card_is_built_without_the_network(tiny_run, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the model card tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert build_model_card(tiny_run).data.model_name == tiny_run.name


def test_a_hub_base_model_and_dataset_are_named_in_the_metadata(tiny_run, tmp_path):
    import shutil

    from huggingface_hub import ModelCard

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("checkpoint-*", "plots"))
    record = json.loads((run / "textune_run.json").read_text())
    record["base_model"] = "google-bert/bert-base-uncased"
    record["data_args"]["dataset_name"] = "community/disaster-tweets"
    write_run_file(run, record)
    card = ModelCard.load(write_model_card(run, repo_id="me/tweets"))
    assert card.data.base_model == "google-bert/bert-base-uncased"
    assert card.data.datasets == ["community/disaster-tweets"]
    assert card.data.eval_results[0].dataset_type == "community/disaster-tweets"
    assert 'model="me/tweets"' in card.text
    assert hub_base_model("minilm") is None and hub_base_model(str(tmp_path)) is None


def test_textune_report_rebuilds_the_card(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("checkpoint-*"))
    (run / "README.md").unlink()
    assert main(["report", str(run)]) == 0
    assert (run / "README.md").read_text().startswith("---\n")
