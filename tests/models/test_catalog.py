"""`textune models`: the catalog of recommended backbones is data, and availability is found offline."""

from __future__ import annotations

import pytest

from textune.models.catalog import (CACHED, DOWNLOAD, NOT_INSTALLED, PACKAGED, CatalogEntry, availability, catalog_table,
                             load_catalog)
from textune.cli import main
from textune.errors import TextuneError
from textune.models.packaged import MODEL_ALIASES


def test_the_shipped_catalog_covers_the_tutorial_families():
    entries = load_catalog()
    ids = [entry.id for entry in entries]
    assert len(ids) == len(set(ids))
    english = [e for e in entries if "en" in e.languages and "classification" in e.tasks and e.family != "llama"]
    chinese = [e for e in entries if "zh" in e.languages and "classification" in e.tasks]
    assert len({e.params_m for e in english}) >= 3 and len({e.params_m for e in chinese}) >= 3  # several sizes
    assert any("summarization" in e.tasks for e in entries)  # a seq2seq family
    assert any(e.family == "llama" and "chat" in e.tasks for e in entries)
    for entry in entries:
        assert entry.params_m > 0 and entry.max_length >= 128 and entry.use
        if entry.alias:
            assert entry.alias in MODEL_ALIASES, f"{entry.id}: alias {entry.alias} is not registered"


def test_catalog_is_included_as_package_data():
    import importlib.resources

    assert (importlib.resources.files("textune.models") / "model_catalog.yaml").is_file()


def test_packaged_alias_is_available_and_an_uncached_hub_id_needs_download(tmp_path):
    entries = {entry.id: entry for entry in load_catalog()}
    minilm = entries["sentence-transformers/all-MiniLM-L6-v2"]
    import importlib.util

    expected = PACKAGED if importlib.util.find_spec(MODEL_ALIASES["minilm"].module) else NOT_INSTALLED
    assert availability(minilm, cache_dir=tmp_path).status == expected
    assert availability(entries["FacebookAI/roberta-base"], cache_dir=tmp_path).status == DOWNLOAD


def test_a_model_in_the_hub_cache_is_reported_as_cached(tmp_path, monkeypatch):
    # the layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/config.json}
    repo = tmp_path / "hub" / "models--FacebookAI--roberta-base"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    entry = next(entry for entry in load_catalog() if entry.id == "FacebookAI/roberta-base")
    assert availability(entry).status == CACHED


def test_models_command_filters_by_task_and_language(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert main(["models", "--task", "classification", "--language", "zh"]) == 0
    out = capsys.readouterr().out
    assert "google-bert/bert-base-chinese" in out and "hfl/rbt3" in out
    assert "xlm-roberta-base" in out  # multilingual models suit every language
    assert "flan-t5" not in out and "roberta-large" not in out
    assert main(["models", "--task", "summarization", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| model |") and "flan-t5-base" in out and "params" in out and "available" in out


def test_models_command_names_the_known_tasks_when_none_match(capsys):
    assert main(["models", "--task", "speech"]) == 2
    assert "classification" in capsys.readouterr().err


def test_another_catalog_file_extends_the_table_without_code(tmp_path, capsys):
    extra = tmp_path / "mine.yaml"
    extra.write_text("models:\n  - id: me/tiny-tweets\n    family: bert\n    languages: [en]\n"
                     "    tasks: [classification]\n    params_m: 4.4\n    max_length: 128\n    use: our own model\n")
    assert main(["models", "--catalog", str(extra)]) == 0
    assert "me/tiny-tweets" in capsys.readouterr().out


def test_a_catalog_entry_missing_a_field_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - id: me/model\n    family: bert\n")
    with pytest.raises(TextuneError, match="me/model.*languages"):
        load_catalog(bad)


def test_catalog_entries_print_their_size_readably():
    entry = CatalogEntry("x/y", "llama", ("en",), ("chat",), 1235.8, 2048, "chat")
    assert entry.params == "1.24B" and CatalogEntry("x/z", "bert", ("en",), ("classification",), 22.7, 512, "").params == "22.7M"
    assert "x/y" in catalog_table([entry])


def test_text_generation_models_are_listed_with_the_packaged_smollm2(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert main(["models", "--task", "text-generation"]) == 0
    out = capsys.readouterr().out
    assert "Qwen/Qwen2.5-1.5B-Instruct" in out and "meta-llama/Llama-3.2-1B-Instruct" in out
    assert "flan-t5" not in out and "roberta" not in out
    import importlib.util

    assert any(line.startswith("smollm2 ") for line in out.splitlines())
    entry = next(entry for entry in load_catalog() if entry.alias == "smollm2")
    expected = PACKAGED if importlib.util.find_spec(MODEL_ALIASES["smollm2"].module) else NOT_INSTALLED
    assert availability(entry).status == expected  # a GGUF file in the package counts, without converting it
