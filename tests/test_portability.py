"""Windows spellings and locales: paths with backslashes or drive letters, upper-case suffixes, UTF-8."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from textune.cli import parse_train_args
from textune.training.compare import slug
from textune.data.tables import check_data_file
from textune.errors import TextuneError
from textune.models import loading as models
from textune.models.loading import resolve_model
from textune.serving.space import export_space

from conftest import toy_frame, train_tiny_run

PACKAGE = Path(__file__).resolve().parents[1] / "textune"


@pytest.mark.parametrize("name, expected", [
    ("C:\\models\\bert", "bert"),
    ("C:\\models\\bert\\", "bert"),
    ("C:/models/bert/", "bert"),
    ("..\\models\\bert", "bert"),
    ("./my-model", "my-model"),
    ("google/electra-small-discriminator", "electra-small-discriminator"),
    ("minilm", "minilm"),
])
def test_compare_names_a_candidate_folder_after_the_models_last_component_on_any_os(name, expected):
    assert slug(name) == expected


@pytest.mark.parametrize("name, expected", [
    ("C:\\Users\\alice\\models\\bert", "bert"),
    ("D:/models/bert/", "bert"),
    ("/home/alice/models/bert", "bert"),
    ("./my-model/", "my-model"),
    ("minilm", "minilm"),
    ("google/electra-small-discriminator", "google/electra-small-discriminator"),
])
def test_a_base_model_is_shown_as_a_hub_id_or_the_folder_name_never_a_path(name, expected):
    assert models.model_display_name(name) == expected


@pytest.mark.parametrize("name", ["C:/models/bert", "C:\\models\\bert", "D:bert"])
def test_a_missing_windows_model_path_is_reported_as_a_path_not_looked_up_on_the_hub(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(TextuneError, match="no such folder"):
        resolve_model(name)


@pytest.mark.parametrize("file_name, kind", [("TRAIN.CSV", ".csv"), ("train.Tsv", ".tsv"), ("tweets.JSONL", ".jsonl")])
def test_data_files_with_upper_case_suffixes_are_recognised(tmp_path, file_name, kind):
    path = tmp_path / file_name
    separator = "\t" if kind == ".tsv" else ","
    if kind == ".jsonl":
        toy_frame(4).to_json(path, orient="records", lines=True)
    else:
        toy_frame(4).to_csv(path, sep=separator, index=False)

    assert check_data_file(str(path), "--train_file") == (path, kind)


def test_an_upper_case_json_arguments_file_is_read_as_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("ARGS.JSON").write_text(json.dumps({"train_file": "data\\train.csv", "output_dir": "runs\\first",
                                             "do_train": True}), encoding="utf-8")

    model_args, data_args, _, training_args = parse_train_args(["ARGS.JSON"])

    assert data_args.train_file == "data\\train.csv" and training_args.do_train


def test_export_space_keeps_no_windows_path_of_the_base_model(tiny_model_dir, tmp_path_factory, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(train_tiny_run(tiny_model_dir, tmp_path_factory), run)
    record = json.loads((run / "textune_run.json").read_text(encoding="utf-8"))
    record["base_model"] = "C:\\Users\\alice\\models\\bert"  # trained on Windows, exported on Linux
    (run / "textune_run.json").write_text(json.dumps(record), encoding="utf-8")

    space = export_space(run, tmp_path / "space")

    exported = (space / "model" / "textune_run.json").read_text(encoding="utf-8")
    readme = (space / "README.md").read_text(encoding="utf-8")
    assert json.loads(exported)["base_model"] == "bert" and "`bert`" in readme
    assert "alice" not in exported + readme


def _text_io_calls_without_encoding(tree: ast.AST):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name not in ("read_text", "write_text", "open") or any(k.arg == "encoding" for k in node.keywords):
            continue
        if name == "open" and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and (func.value.id[:1].isupper() or func.value.id == "os"):
            continue  # a class's own constructor (TableReader.open) or os.open's file descriptor: no text I/O
        mode = node.args[1] if name == "open" and len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg == "mode"), None)
        if isinstance(mode, ast.Constant) and "b" in str(mode.value):
            continue
        yield node.lineno


def test_every_text_file_textune_reads_or_writes_is_utf8_whatever_the_locale():
    # Without encoding=, Python uses the locale's encoding: cp1252 or GBK on Windows, where a tweet's emoji
    # cannot be written and a UTF-8 config or Space file reads as mojibake.
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}" for path in sorted(PACKAGE.rglob("*.py"))
             for line in _text_io_calls_without_encoding(ast.parse(path.read_text(encoding="utf-8")))]

    assert found == []
