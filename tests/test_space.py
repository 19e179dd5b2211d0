"""export-space writes a complete Gradio Space that runs on its own; push-space uploads it or fails fast offline."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from textune.cli import main
from textune.serving import space

from test_serving_api import train_tiny_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    return train_tiny_run(tiny_model_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def space_dir(tiny_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "space"
    assert main(["export-space", str(tiny_run), "--to", str(folder), "--title", "Tiny tweets"]) == 0
    return folder


def front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_export_writes_app_requirements_readme_and_only_the_model_files(space_dir, tiny_run):
    assert {p.name for p in space_dir.iterdir()} == {"app.py", "requirements.txt", "README.md", "model", "textune"}
    model_files = {p.name for p in (space_dir / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "textune_run.json", "eval_results.json",
            "textune_examples.json"} <= model_files
    assert not any(name.startswith("checkpoint") or name.endswith(".bin") for name in model_files)
    record = json.loads((space_dir / "model" / "textune_run.json").read_text())
    assert "data_args" not in record and str(tiny_run.parent) not in json.dumps(record)  # no training-machine paths
    examples = json.loads((space_dir / "model" / "textune_examples.json").read_text())
    assert 1 <= len(examples) <= 6 and all(isinstance(text, str) for text in examples)
    assert (space_dir / "textune" / "serving" / "api.py").exists()
    compile((space_dir / "app.py").read_text(), "app.py", "exec")


def test_readme_front_matter_is_valid_spaces_yaml(space_dir):
    from huggingface_hub import SpaceCard

    meta = front_matter(space_dir / "README.md")
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == importlib.metadata.version("gradio")
    assert meta["app_file"] == "app.py" and (space_dir / meta["app_file"]).exists()
    assert meta["title"] == "Tiny tweets" and meta["license"] == "apache-2.0"
    assert len(meta["short_description"]) <= 60
    assert meta["colorFrom"] in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    card = SpaceCard.load(space_dir / "README.md")
    assert card.data.sdk == "gradio" and card.data.title == "Tiny tweets"
    assert "gradio_client" in card.text and "/v1/predict" in card.text


def test_requirements_pin_every_package_to_the_installed_version(space_dir):
    lines = [line for line in (space_dir / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    pins = dict(line.split("==") for line in lines)
    assert list(pins) == list(space.SPACE_PACKAGES)
    for package, version in pins.items():
        assert version == importlib.metadata.version(package).split("+")[0]


def test_every_declared_dependency_is_either_pinned_for_the_space_or_training_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["serve"]
    names = {re.split(r"[<>=!~\[ ;]", requirement)[0].lower().replace("_", "-") for requirement in declared}
    covered = {name.lower().replace("_", "-") for name in space.SPACE_PACKAGES + space.TRAINING_ONLY_PACKAGES}
    assert names <= covered, f"decide whether a Space needs {sorted(names - covered)}: add to a list in space.py"


def test_export_refuses_a_non_empty_folder_unless_overwrite_and_then_keeps_other_files(tiny_run, tmp_path, capsys):
    folder = tmp_path / "space"
    folder.mkdir()
    (folder / "notes.md").write_text("mine")
    assert main(["export-space", str(tiny_run), "--to", str(folder)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export-space", str(tiny_run), "--to", str(folder), "--overwrite"]) == 0
    assert (folder / "notes.md").read_text() == "mine" and (folder / "app.py").exists()


def read_line_with(process: subprocess.Popen, pattern: str, timeout: float) -> re.Match:
    """Read the process's output until a line matches `pattern` (fail with what it printed otherwise)."""
    seen, deadline = [], time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                if process.poll() is not None:
                    break
                continue
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if match := re.search(pattern, line):
                return match
    pytest.fail(f"no line matching {pattern!r} within {timeout} s; output:\n{''.join(seen)[-3000:]}")


def test_the_exported_app_py_serves_the_demo_and_the_api_on_its_own(space_dir, tmp_path):
    from gradio_client import Client

    # Only the Space folder on the path: the app must run from its own copy of textune.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(GRADIO_SERVER_PORT="0", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=space_dir, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = read_line_with(process, r"Serving Tiny tweets on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        answer = httpx.post(url + "/v1/predict", json={"texts": ["fire near the town"]}, timeout=30)
        assert answer.status_code == 200
        label = answer.json()["predictions"][0]["label"]
        assert answer.json()["model"] == "Tiny tweets" and label in ("0", "1")
        assert Client(url + "/", verbose=False).predict("fire near the town", api_name="/predict")["label"] == label
        assert "Tiny tweets" in httpx.get(url + "/", timeout=30).text
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    # uvicorn drains, runs the app's shutdown, then re-raises SIGTERM so the exit status tells why it stopped
    assert process.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in rest


def test_push_space_fails_fast_offline_with_a_clear_message(space_dir, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    assert main(["push-space", str(space_dir), "--repo", "me/tiny"]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err

    monkeypatch.delenv("HF_HUB_OFFLINE")
    import socket

    with socket.socket() as unused:  # a port nothing listens on: the Hub "is down"
        unused.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{unused.getsockname()[1]}")
    assert main(["push-space", str(space_dir), "--repo", "me/tiny"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Hugging Face Hub" in err and str(space_dir) in err
    assert time.monotonic() - start < 10


def test_push_space_uploads_the_folder_as_a_gradio_space(space_dir, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # scripts/test.sh sets it; this test fakes the Hub
    calls = {}

    class FakeApi:
        def __init__(self, endpoint, token):
            calls["init"] = (endpoint, token)

        def create_repo(self, repo_id, **kwargs):
            calls["create"] = (repo_id, kwargs)

        def upload_folder(self, **kwargs):
            calls["upload"] = kwargs

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(space, "check_reachable", lambda *args: None)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example")
    url = space.push_space(space_dir, "me/tiny", token="hf_x")
    assert url == "https://hub.example/spaces/me/tiny"
    assert calls["create"] == ("me/tiny", {"repo_type": "space", "space_sdk": "gradio", "private": False,
                                           "exist_ok": True})
    assert calls["upload"]["folder_path"] == space_dir and calls["upload"]["repo_type"] == "space"


def test_push_space_without_a_token_says_how_to_log_in(space_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # scripts/test.sh sets it; this test fakes the Hub
    monkeypatch.setattr(space, "check_reachable", lambda *args: None)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(Exception, match="hf auth login"):
        space.push_space(space_dir, "me/tiny")
