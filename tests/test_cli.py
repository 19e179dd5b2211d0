"""End to end through the real entry point: the tutorial's command, predict, evaluate, and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from textune.cli import main

from conftest import toy_frame, tutorial_argv




def test_tutorial_command_trains_evaluates_and_predicts_on_a_test_file_without_labels(tiny_model_dir, tweets_dir, tmp_path):
    out = tmp_path / "experiments"
    assert main(tutorial_argv(tiny_model_dir, tweets_dir, out)) == 0

    # the model folder loads with plain transformers and carries the label list
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "0", 1: "1"}
    assert (out / "model.safetensors").exists() and not (out / "pytorch_model.bin").exists()
    assert (out / "tokenizer.json").exists()

    results = json.loads((out / "all_results.json").read_text())
    for key in ("eval_accuracy", "eval_f1", "eval_precision", "eval_recall", "eval_loss", "train_loss"):
        assert key in results
    assert results["eval_samples"] == 16 and results["train_samples"] == 64
    assert json.loads((out / "eval_results.json").read_text())["eval_accuracy"] == results["eval_accuracy"]
    assert "train_runtime" in json.loads((out / "train_results.json").read_text())

    lines = (out / "predict_results.txt").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 13
    assert all(line.split("\t")[1] in {"0", "1"} for line in lines[1:])

    test = pd.read_csv(tweets_dir / "test.csv")
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions.columns) == ["id", "text", "prediction", "prob_0", "prob_1"]
    assert predictions["id"].tolist() == test["id"].tolist()
    assert predictions["text"].tolist() == test["text"].tolist()
    assert ((predictions["prob_0"] + predictions["prob_1"]) - 1).abs().max() < 1e-5

    submission = pd.read_csv(out / "submission.csv")
    assert list(submission.columns) == ["id", "target"]
    assert submission["target"].tolist() == predictions["prediction"].tolist()

    record = json.loads((out / "textune_run.json").read_text())
    assert record["task"]["labels"]["labels"] == ["0", "1"]
    assert record["task"]["columns"]["delimiter"] == "\n"


def test_predict_and_evaluate_work_from_the_run_folder_alone(tiny_model_dir, tweets_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tutorial_argv(tiny_model_dir, tweets_dir, out)) == 0
    new = tmp_path / "new.jsonl"  # another format than training: fine
    toy_frame(5, seed=9, with_label=False).to_json(new, orient="records", lines=True)
    assert main(["predict", "--model", str(out), "--input", str(new), "--output", str(tmp_path / "preds.csv")]) == 0
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert len(preds) == 5 and {"id", "text", "prediction", "prob_0", "prob_1"} <= set(preds.columns)

    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--input", str(tweets_dir / "val.csv"),
                 "--output", str(tmp_path / "metrics.json")]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["eval_samples"] == 16
    # the same model on the same rows gives the same accuracy as the training run's evaluation
    assert metrics["eval_accuracy"] == pytest.approx(json.loads((out / "eval_results.json").read_text())["eval_accuracy"])


def test_a_single_json_file_of_arguments_is_accepted(tiny_model_dir, tweets_dir, tmp_path):
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({
        "model_name_or_path": str(tiny_model_dir), "train_file": str(tweets_dir / "train.csv"),
        "validation_file": str(tweets_dir / "val.csv"), "text_column_names": "keyword,text",
        "label_column_name": "target", "do_train": True, "do_eval": True, "num_train_epochs": 1,
        "output_dir": str(tmp_path / "out"),
    }))
    assert main(["train", str(args_file)]) == 0
    record = json.loads((tmp_path / "out" / "textune_run.json").read_text())
    assert record["task"]["columns"]["text"] == ["keyword", "text"]


def test_missing_train_file_is_one_line_exit_2_and_writes_nothing(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(tmp_path / "nope.csv"),
                 "--output_dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("textune: error: --train_file") and "nope.csv" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not out.exists()


def test_wrong_label_column_names_the_columns_found_and_writes_nothing(tiny_model_dir, tweets_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(tutorial_argv(tiny_model_dir, tweets_dir, out)[:-2] + ["--output_dir", str(out),
                                                                      "--label_column_name", "targt"])
    err = capsys.readouterr().err
    assert code == 2
    assert "'targt'" in err and "target" in err and "--label_column_name" in err
    assert not out.exists()


def test_a_non_empty_output_dir_is_refused_without_overwrite_flag(tiny_model_dir, tweets_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(tutorial_argv(tiny_model_dir, tweets_dir, out)) == 2
    assert "--overwrite_output_dir" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


def test_overwrite_output_dir_replaces_only_what_a_run_wrote(tiny_model_dir, tweets_dir, tmp_path):
    out = tmp_path / "out"
    (out / "checkpoint-99").mkdir(parents=True)  # a previous run's files ...
    (out / "checkpoint-99" / "trainer_state.json").write_text("{}")
    (out / "predictions.csv").write_text("old\n")
    (out / "notes.txt").write_text("mine")  # ... and the user's own, which must survive
    (out / "README.md").write_text("# My experiment\n")  # not a textune model card: no card replaces it
    (out / "data").mkdir()
    (out / "data" / "extra.csv").write_text("text,target\n")
    assert main(tutorial_argv(tiny_model_dir, tweets_dir, out) + ["--overwrite_output_dir"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "data" / "extra.csv").exists()
    assert (out / "README.md").read_text() == "# My experiment\n"
    assert not (out / "checkpoint-99").exists()
    assert (out / "textune_run.json").exists() and (out / "predictions.csv").read_text() != "old\n"


def test_every_file_a_run_writes_is_among_those_overwrite_replaces(tmp_path):
    from textune.run_folder import remove_run_outputs

    leftovers = ["backend.json", "model_int8.onnx", "model_int8.parity.json", ".textune-export-1a2b/model.onnx",
                 ".textune-staging/config.json", "README.md"]
    for name in leftovers:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("---\ntags:\n- textune\n---\n" if name == "README.md" else "{}")
    (tmp_path / "notes.txt").write_text("mine")
    remove_run_outputs(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_a_hub_token_typed_as_an_argument_is_refused_in_one_line(tiny_model_dir, tweets_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(tutorial_argv(tiny_model_dir, tweets_dir, out, "--hub_token", "hf_secret")) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("textune:")]
    assert len(errors) == 1 and "--hub_token" in errors[0] and "HF_TOKEN" in errors[0] and "hf_secret" not in errors[0]
    assert not out.exists()


@pytest.mark.parametrize("where", ["current folder", "parent of the current folder", "home folder",
                                   "folder of the training data"])
def test_overwrite_output_dir_refuses_a_folder_that_holds_more_than_a_run(tiny_model_dir, tweets_dir, tmp_path,
                                                                           monkeypatch, capsys, where):
    folder = tmp_path / "work"
    (folder / "inner").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    shutil.copy(tweets_dir / "train.csv", folder / "train.csv")
    if where == "current folder":
        monkeypatch.chdir(folder)
    elif where == "parent of the current folder":
        monkeypatch.chdir(folder / "inner")
    elif where == "home folder":
        monkeypatch.setenv("HOME", str(folder))
    argv = tutorial_argv(tiny_model_dir, tweets_dir, folder) + ["--overwrite_output_dir"]
    if where == "folder of the training data":
        argv += ["--train_file", str(folder / "train.csv")]
    assert main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("textune:")]
    assert len(errors) == 1 and f"--output_dir {folder}" in errors[0]
    assert sorted(p.name for p in folder.iterdir()) == ["inner", "notes.txt", "train.csv"]


def test_unknown_hub_model_offline_fails_fast_with_the_options(tweets_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    code = main(tutorial_argv("bert-base-uncased", tweets_dir, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    for option in ("bert-base-uncased", "minilm", "HF_ENDPOINT", "HF_HUB_OFFLINE", "local model folder"):
        assert option in err


def test_python_dash_m_textune_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "textune", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "textune train" in done.stdout


# Start-up: commands that need no model answer without importing torch and transformers (seconds on a laptop).
HEAVY_MODULES = ("torch", "transformers", "datasets", "gradio", "matplotlib", "fastapi")
RUN_IN_FRESH_INTERPRETER = """
import json, sys
from textune.cli import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "loaded": [name for name in json.loads(sys.argv[2]) if name in sys.modules]}))
"""


def run_fresh(argv: list[str], heavy=HEAVY_MODULES) -> tuple[int, list[str], str]:
    """Run `textune ARGV` in a new interpreter: its exit status, which of `heavy` it imported, and its stderr."""
    done = subprocess.run([sys.executable, "-c", RUN_IN_FRESH_INTERPRETER, json.dumps(argv), json.dumps(heavy)],
                          capture_output=True, text=True, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], result["loaded"], done.stderr


def test_import_textune_loads_no_torch_and_every_public_name_resolves():
    code = ("import json, sys, textune; print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY_MODULES,))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout) == []

    import textune

    assert set(textune.__all__) <= set(dir(textune))
    for name in textune.__all__:
        assert getattr(textune, name) is not None
    assert textune.Predictor.__module__ == "textune.inference.prediction"
    from textune.tasks import TASKS

    assert textune.QuestionAnsweringTask is TASKS["question-answering"]
    assert textune.QuestionAnsweringArguments is TASKS["question-answering"].arguments
    with pytest.raises(AttributeError):
        textune.no_such_name


@pytest.mark.parametrize("argv", [["--help"], ["models"], ["predict", "--help"], ["evaluate", "--help"],
                                  ["serve", "--help"], ["report", "--help"], ["export-space", "--help"],
                                  ["push-space", "--help"], ["push", "--help"], ["generate", "--help"],
                                  ["chat", "--help"]])
def test_help_and_models_answer_without_importing_torch_or_transformers(argv):
    code, loaded, _ = run_fresh(argv)
    assert code == 0 and loaded == []


def test_predict_evaluate_generate_and_chat_spell_and_explain_the_sampling_flags_one_way():
    from textune import cli
    from textune.inference.generation import GenerationSettings

    def flags(parser) -> dict[str, tuple]:
        return {action.dest: (tuple(action.option_strings), action.help, action.default) for action in parser._actions
                if action.dest in GenerationSettings.__dataclass_fields__}

    predict = flags(cli._io_parser("textune predict", ""))
    generate = flags(cli._generation_parser("textune generate", ""))
    assert set(predict) == set(GenerationSettings.__dataclass_fields__)
    assert set(generate) == set(predict) - {"num_beams"}  # a chat streams: no beam search
    assert all(generate[name] == predict[name] for name in generate)
    assert predict["max_new_tokens"][0] == ("--max_new_tokens", "--max-new-tokens")


def test_train_help_loads_training_arguments_but_no_model_data_or_report_code():
    code, loaded, _ = run_fresh(["train", "--help"], ["transformers", "datasets", "gradio", "matplotlib",
                                                      "textune.training.train", "textune.report", "textune.tasks.classification.heads"])
    assert code == 0 and loaded == ["transformers"]


@pytest.mark.parametrize("argv, flag", [
    (["predict", "--model", "missing/", "--input", "x.csv"], "--model missing"),
    (["evaluate", "--model", "missing/", "--input", "x.csv"], "--model missing"),
    (["serve", "missing/"], "textune serve missing"),
    (["serve", "--port", "70000", "missing/"], "--port 70000"),
    (["report", "missing/"], "run folder missing"),
    (["train", "--train_file", "missing.csv"], "--train_file missing.csv"),
    (["train", "--validation_file=missing.csv"], "--validation_file missing.csv"),
])
def test_bad_input_is_rejected_before_torch_and_transformers_load(argv, flag):
    code, loaded, err = run_fresh(argv)
    assert code == 2 and loaded == []
    assert err.strip().splitlines() == [err.strip().splitlines()[-1]] and flag in err


def test_predict_checks_its_input_file_and_flag_values_before_loading_the_model(tmp_path):
    run = tmp_path / "run"  # passes the run folder check; loading it would fail
    run.mkdir()
    for name in ("textune_run.json", "config.json", "model.safetensors", "tokenizer.json"):
        (run / name).write_text("{}")
    code, loaded, err = run_fresh(["predict", "--model", str(run), "--input", str(tmp_path / "x.csv")])
    assert code == 2 and loaded == [] and "--input" in err and "x.csv: no such file" in err
    code, loaded, err = run_fresh(["predict", "--model", str(run), "--input", "x.csv", "--batch_size", "many"])
    assert code == 2 and loaded == [] and "--batch_size: invalid int value: 'many'" in err


@pytest.mark.parametrize("argv", [[], ["--no_batching", "--port", "0", "--title", "Tweets"], ["--ui", "false"],
                                  ["--no-ui", "--access_log", "--max_wait_ms", "2.5"], ["--batching", "yes"]])
def test_serve_flags_parse_as_transformers_hf_argument_parser_parses_them(argv):
    import argparse

    from transformers import HfArgumentParser

    from textune.dataclass_flags import add_dataclass_flags, dataclass_from_flags
    from textune.serving import ServeConfig

    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, ServeConfig)
    (expected,) = HfArgumentParser(ServeConfig).parse_args_into_dataclasses(args=argv)
    assert dataclass_from_flags(ServeConfig, parser.parse_args(argv)) == expected
