"""The Hub: `textune push` uploads only the model files textune wrote, `--push_to_hub` pushes once after the final
save, tokens never come from the command line, and `--private` never publishes into an existing public repo."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from textune import hub
from textune.cli import main
from textune.errors import TextuneError

from conftest import train_tiny_run, tutorial_argv


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    return train_tiny_run(tiny_model_dir, tmp_path_factory)


def copy_run(run: Path, to: Path) -> Path:
    import shutil

    return shutil.copytree(run, to)  # the shared tiny run stays as trained


def test_push_uploads_only_the_model_files_card_and_metrics_textune_wrote(tiny_run, fake_hub, capsys, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    (run / "checkpoint-9").mkdir(exist_ok=True)  # things that must stay home
    (run / "checkpoint-9" / "optimizer.pt").write_bytes(b"x")
    (run / ".env").write_text("HF_TOKEN=hf_secret\n")
    assert main(["push", str(run), "--repo", "me/tiny"]) == 0
    assert "Model: https://huggingface.co/me/tiny" in capsys.readouterr().out
    (commit,) = fake_hub.commits
    names = set(commit["files"])
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "textune_run.json",
            "eval_results.json", "train_results.json"} <= names
    assert not names & {".env", "training_args.bin", "predictions.csv", "report.html", "report.md",
                        "validation_predictions.csv", "submission.csv"}
    assert not any("checkpoint" in name or "/" in name for name in names)
    record = json.loads(commit["contents"]["textune_run.json"])
    assert "data_args" not in record and str(tiny_run.parent) not in json.dumps(record)  # no data paths
    assert commit["repo_type"] == "model" and fake_hub.tokens == ["hf_from_env"]
    assert b'model="me/tiny"' in commit["contents"]["README.md"]  # the pushed card's examples name the repo


def test_push_keeps_a_card_you_edited(tiny_run, fake_hub, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    (run / "README.md").write_text((run / "README.md").read_text() + "\n## My notes\n")
    hub.push_run(run, "me/tiny")
    assert fake_hub.commits[0]["contents"]["README.md"].endswith(b"## My notes\n")


def test_push_offline_stops_within_seconds_and_says_so(tiny_run, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    assert main(["push", str(tiny_run), "--repo", "me/tiny"]) == 2
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err and f"textune push {tiny_run}" in err
    assert time.monotonic() - start < 10


def test_a_literal_token_on_the_command_line_is_refused_with_the_safe_ways(tiny_run, fake_hub, capsys):
    assert main(["push", str(tiny_run), "--repo", "me/tiny", "--token", "hf_visible_in_ps"]) == 2
    err = capsys.readouterr().err
    assert "HF_TOKEN" in err and "--token -" in err and "hf auth login" in err and "hf_visible_in_ps" not in err
    assert fake_hub.commits == []


def test_token_dash_reads_one_line_from_stdin(tiny_run, fake_hub, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("hf_from_stdin\nnext line\n"))
    assert main(["push", str(tiny_run), "--repo", "me/tiny", "--token", "-"]) == 0
    assert fake_hub.tokens == ["hf_from_stdin"]
    with pytest.raises(TextuneError, match="stdin gave no token"):
        hub.read_token("-", io.StringIO(""))


def test_private_is_refused_for_an_existing_public_repo_and_nothing_is_uploaded(tiny_run, fake_hub, capsys):
    fake_hub.existing["me/public"] = False
    assert main(["push", str(tiny_run), "--repo", "me/public", "--private"]) == 2
    assert "already exists and is public" in capsys.readouterr().err
    assert fake_hub.commits == []
    fake_hub.existing["me/secret"] = True  # an existing private repo stays private without --private
    assert main(["push", str(tiny_run), "--repo", "me/secret"]) == 0
    assert fake_hub.existing["me/secret"] is True and len(fake_hub.commits) == 1


def test_push_to_hub_pushes_once_after_the_final_save_without_staging_files(tiny_model_dir, tweets_dir, tmp_path,
                                                                            fake_hub):
    out = tmp_path / "run"
    fake_hub.on_commit = lambda: {"run_file_existed": (out / "textune_run.json").exists(),
                                  "staging_existed": (out / ".textune-staging").exists()}
    assert main(tutorial_argv(tiny_model_dir, tweets_dir, out, "--push_to_hub", "true",
                              "--hub_model_id", "me/tiny-tweets", "--save_strategy", "no")) == 0
    (commit,) = fake_hub.commits
    assert commit["repo_id"] == "me/tiny-tweets" and commit["run_file_existed"] and not commit["staging_existed"]
    assert not any(".textune-staging" in name or "checkpoint" in name for name in commit["files"])
    assert all(path.parent == out for name, path in commit["files"].items()
               if name not in ("textune_run.json", "README.md"))  # those two go up as copies made for the Hub
    assert {"model.safetensors", "README.md", "eval_results.json"} <= set(commit["files"])
    assert b"eval_accuracy" in commit["contents"]["eval_results.json"]  # pushed after the evaluation, not before
    assert [created["repo_id"] for created in fake_hub.created] == ["me/tiny-tweets"]


def test_push_to_hub_offline_fails_before_training(tiny_model_dir, tweets_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    out.mkdir()
    (out / "previous_run.txt").write_text("kept")
    assert main(tutorial_argv(tiny_model_dir, tweets_dir, out, "--push_to_hub", "true", "--overwrite_output_dir")) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    assert (out / "previous_run.txt").exists() and not (out / "model.safetensors").exists()
