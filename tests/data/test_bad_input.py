"""Bad input: a one-line error naming the problem and the fix, exit status 2, no traceback, nothing written."""

from __future__ import annotations

import logging
import shutil

import pandas as pd
import pytest

from textune.cli import main

from conftest import toy_frame


def good_files(folder):
    toy_frame(40, seed=1).to_csv(folder / "train.csv", index=False)
    toy_frame(10, seed=2).to_csv(folder / "val.csv", index=False)


def write_text(name, content: str | bytes):
    def setup(folder):
        good_files(folder)
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return setup


def edit_train(change):
    def setup(folder):
        good_files(folder)
        frame = toy_frame(40, seed=1)
        change(frame).to_csv(folder / "train.csv", index=False)
    return setup


def edit_val(change):
    def setup(folder):
        good_files(folder)
        change(toy_frame(10, seed=2)).to_csv(folder / "val.csv", index=False)
    return setup


def directory_as_train(folder):
    good_files(folder)
    (folder / "train.csv").unlink()
    (folder / "train.csv").mkdir()


CASES = {
    # name: (setup(folder), train file name, extra argv, text the error must contain)
    "missing file": (good_files, "nope.csv", [], "no such file"),
    "directory instead of file": (directory_as_train, "train.csv", [], "is a directory"),
    "unsupported extension": (write_text("train.xlsx", "x"), "train.xlsx", [], "unsupported file type .xlsx"),
    "empty file": (write_text("train.csv", ""), "train.csv", [], "is empty"),
    "header only": (write_text("train.csv", "id,keyword,location,text,target\n"), "train.csv", [], "has no data rows"),
    "unbalanced quotes": (write_text("train.csv", 'text,target\n"fire in town,1\nsunny day,0\n'), "train.csv", [],
                          "could not be read as csv"),
    "ragged rows": (write_text("train.csv", "text,target\nfire,1\nsun,0,extra,more\n"), "train.csv", [],
                    "Expected 2 fields"),
    "not utf-8 nor cp1252": (write_text("train.csv", b"text,target\n\x81\x8d fire,1\nsun,0\n"), "train.csv", [],
                             "--encoding"),
    "text column missing": (good_files, "train.csv", ["--text_column_names", "tweet"], "no column 'tweet'"),
    "label column missing": (good_files, "train.csv", ["--label_column_name", "targt"], "did you mean 'target'"),
    "all labels missing": (edit_train(lambda f: f.assign(target=None)), "train.csv", [], "every row"),
    "single class": (edit_train(lambda f: f.assign(target=1)), "train.csv", [], "single class"),
    "validation label unseen in training": (edit_val(lambda f: f.assign(target=7)), "train.csv", [],
                                            "label '7' never occurs in training"),
    "float labels with a few strings": (
        edit_train(lambda f: f.assign(target=[0.5 + i / 10 for i in range(39)] + ["n/a?"])), "train.csv", [],
        "are not numbers"),
    "model path that is not a model": (good_files, "train.csv", ["--model_name_or_path", "{folder}"],
                                       "is not a model folder"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_training_input_is_one_line_exit_2_and_writes_nothing(case, tiny_model_dir, tmp_path, capsys):
    setup, train_name, extra, expected = CASES[case]
    folder = tmp_path / "data"
    folder.mkdir()
    setup(folder)
    out = tmp_path / "out"
    argv = ["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(folder / train_name),
            "--validation_file", str(folder / "val.csv"), "--label_column_name", "target", "--num_train_epochs", "1",
            "--output_dir", str(out)] + [arg.format(folder=folder) for arg in extra]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err and err[-1].startswith("textune: error: ") and expected in err[-1], err[-1:]
    assert not any("Traceback" in line for line in err)
    assert not out.exists()


def test_debug_flag_shows_the_traceback(tiny_model_dir, tmp_path):
    with pytest.raises(Exception, match="no such file"):
        main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(tmp_path / "x.csv"),
              "--output_dir", str(tmp_path / "out"), "--debug"])


def test_pickle_only_model_is_refused_unless_allowed(tiny_model_dir, tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification

    legacy = tmp_path / "legacy"
    shutil.copytree(tiny_model_dir, legacy)
    (legacy / "model.safetensors").unlink()
    import torch

    torch.save(AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).state_dict(),
               legacy / "pytorch_model.bin")
    good_files(tmp_path)
    argv = ["train", "--model_name_or_path", str(legacy), "--train_file", str(tmp_path / "train.csv"),
            "--label_column_name", "target", "--max_steps", "1", "--output_dir", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "--allow_pickle" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(argv + ["--allow_pickle", "true"]) == 0


@pytest.fixture
def trained_run(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    good_files(folder)
    assert main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(folder / "train.csv"),
                 "--label_column_name", "target", "--max_steps", "2", "--output_dir", str(folder / "run")]) == 0
    return folder


@pytest.mark.parametrize("deleted", ["model.safetensors", "tokenizer.json", "config.json", "textune_run.json"])
def test_predict_on_a_run_missing_a_file_names_the_file(trained_run, tmp_path, capsys, deleted):
    run = tmp_path / "run"
    shutil.copytree(trained_run / "run", run)
    (run / deleted).unlink()
    if deleted == "tokenizer.json":
        for other in ("vocab.txt", "tokenizer_config.json"):
            (run / other).unlink(missing_ok=True)
    code = main(["predict", "--model", str(run), "--input", str(trained_run / "val.csv"),
                 "--output", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and deleted.split(".")[0] in err[-1] and not (tmp_path / "p.csv").exists()


def test_predict_input_without_the_text_column_names_it(trained_run, tmp_path, capsys):
    pd.DataFrame({"tweet": ["fire"]}).to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", "--model", str(trained_run / "run"), "--input", str(tmp_path / "new.csv")]) == 2
    assert "no column 'text'" in capsys.readouterr().err


def test_long_texts_are_truncated_and_counted(tiny_model_dir, tmp_path, caplog):
    frame = toy_frame(40, seed=1)
    frame.loc[:2, "text"] = "fire " * 500
    frame.to_csv(tmp_path / "train.csv", index=False)
    toy_frame(10, seed=2).to_csv(tmp_path / "val.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="textune"):
        assert main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(tmp_path / "train.csv"),
                     "--validation_file", str(tmp_path / "val.csv"), "--label_column_name", "target",
                     "--max_seq_length", "32", "--max_steps", "1", "--output_dir", str(tmp_path / "out")]) == 0
    assert "--train_file: 3 of 40 texts reached --max_seq_length 32 tokens and were truncated" in caplog.text


def test_duplicate_ids_in_the_test_file_are_reported_and_every_row_predicted(tiny_model_dir, tmp_path, caplog):
    good_files(tmp_path)
    test = toy_frame(6, seed=3, with_label=False)
    test.loc[1, "id"] = test.loc[0, "id"]
    test.to_csv(tmp_path / "test.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="textune"):
        assert main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(tmp_path / "train.csv"),
                     "--test_file", str(tmp_path / "test.csv"), "--label_column_name", "target", "--max_steps", "1",
                     "--output_dir", str(tmp_path / "out")]) == 0
    assert "1 rows repeat an id of column 'id'" in caplog.text
    assert len(pd.read_csv(tmp_path / "out" / "predictions.csv")) == 6
