"""`textune predict` and the Predictor on a text-to-text run: the run's generation settings, flags over them, batches
sorted by length, files without references, on tiny random T5 and BART."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from textune.cli import main
from textune.inference.generation import GenerationSettings

from conftest import seq2seq_rows, seq2seq_run

TEXTS = ["the fire near my house", "a storm in town today and so big", "flood", "we saw the big earthquake today"]


def generate_one_at_a_time(model_dir: Path, texts: list[str], **options) -> list[str]:
    """The reference: transformers' generate on each input alone (no padding), decoded."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    outputs = []
    for text in texts:
        with torch.no_grad():
            ids = model.generate(**tokenizer("summarize: " + text, return_tensors="pt"), **options)
        outputs.append(tokenizer.decode(ids[0], skip_special_tokens=True).strip())
    return outputs


@pytest.fixture(params=["t5", "bart"])
def run(request, tiny_t5_dir, tiny_bart_dir, tmp_path):
    model_dir = tiny_t5_dir if request.param == "t5" else tiny_bart_dir
    return model_dir, seq2seq_run(model_dir, tmp_path / "run")


@pytest.fixture
def docs(tmp_path) -> Path:
    """Inputs without references (no summary column)."""
    path = tmp_path / "docs.csv"
    pd.DataFrame({"id": [f"d{i}" for i in range(len(TEXTS))], "text": TEXTS}).to_csv(path, index=False)
    return path


def predict(run_dir: Path, docs: Path, output: Path, *flags: str) -> pd.DataFrame:
    assert main(["predict", "--model", str(run_dir), "--input", str(docs), "--output", str(output),
                 "--batch_size", "2", *flags]) == 0
    return pd.read_csv(output, keep_default_na=False)


def test_predict_generates_with_the_runs_settings_on_a_file_without_references(run, docs, tmp_path):
    model_dir, run_dir = run
    table = predict(run_dir, docs, tmp_path / "out.csv")
    assert list(table.columns) == ["id", "input", "prediction"]
    assert table["id"].tolist() == ["d0", "d1", "d2", "d3"]
    assert table["prediction"].tolist() == generate_one_at_a_time(model_dir, TEXTS, max_new_tokens=3)


def test_generation_flags_override_the_runs_settings_beam_search_and_length(run, docs, tmp_path):
    model_dir, run_dir = run
    table = predict(run_dir, docs, tmp_path / "beams.csv", "--num_beams", "2", "--max_new_tokens", "7")
    assert table["prediction"].tolist() == generate_one_at_a_time(model_dir, TEXTS, max_new_tokens=7, num_beams=2)


def test_max_new_tokens_changes_the_length_of_the_outputs(tiny_t5_dir, docs, tmp_path):
    # the random T5 rarely ends early (the random BART ends at once, whatever the length)
    run_dir = seq2seq_run(tiny_t5_dir, tmp_path / "run")
    short = predict(run_dir, docs, tmp_path / "short.csv", "--max_new_tokens", "1")
    longer = predict(run_dir, docs, tmp_path / "long.csv", "--max_new_tokens", "9")
    assert sum(map(len, longer["prediction"].str.split())) > sum(map(len, short["prediction"].str.split())) > 0


def test_seeded_sampling_is_reproducible_and_evaluate_takes_the_flags(run, docs, tmp_path):
    model_dir, run_dir = run
    flags = ("--do_sample", "--temperature", "1.5", "--top_p", "0.9", "--seed", "7", "--max_new_tokens", "6")
    first = predict(run_dir, docs, tmp_path / "a.csv", *flags)
    again = predict(run_dir, docs, tmp_path / "b.csv", *flags)
    assert first["prediction"].tolist() == again["prediction"].tolist()
    labelled = tmp_path / "labelled.csv"
    seq2seq_rows(6)[["text", "summary"]].to_csv(labelled, index=False)
    assert main(["evaluate", "--model", str(run_dir), "--input", str(labelled), "--num_beams", "2"]) == 0


def test_generation_flags_are_refused_in_one_line_by_a_task_that_does_not_generate(tiny_model_dir, tmp_path,
                                                                                  capsys):
    from textune.tasks.classification.labels import SINGLE, LabelSpec

    from conftest import save_untrained_run

    run_dir = save_untrained_run(tiny_model_dir, tmp_path / "clf", LabelSpec(SINGLE, ["0", "1"]))
    docs = tmp_path / "tweets.csv"
    pd.DataFrame({"text": ["fire", "calm"]}).to_csv(docs, index=False)
    code = main(["predict", "--model", str(run_dir), "--input", str(docs), "--output", str(tmp_path / "o.csv"),
                 "--num_beams", "2"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("textune:")]
    assert code == 2 and len(errors) == 1 and "--num_beams" in errors[0] and not (tmp_path / "o.csv").exists()


def test_an_out_of_range_generation_flag_is_a_one_line_error_naming_it(run, docs, tmp_path, capsys):
    model_dir, run_dir = run
    code = main(["predict", "--model", str(run_dir), "--input", str(docs), "--temperature", "0"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("textune:")]
    assert code == 2 and len(errors) == 1 and "--temperature" in errors[0]


def test_generation_batches_are_sorted_by_input_length_and_big_files_are_predicted_in_chunks(run, docs, tmp_path,
                                                                                            monkeypatch):
    from textune.inference.batch_predict import predict_file
    from textune.inference.prediction import Predictor

    model_dir, run_dir = run
    predictor = Predictor.from_run(run_dir, batch_size=2)
    seen: list[list[int]] = []
    generate = predictor.task.generate

    def spy(model, tokenizer, batch):
        seen.append(batch["attention_mask"].sum(axis=1).tolist())
        return generate(model, tokenizer, batch)

    monkeypatch.setattr(predictor.task, "generate", spy)
    whole = predictor.predict(TEXTS)["prediction"].tolist()
    lengths = [length for batch in seen for length in batch]
    assert lengths == sorted(lengths, reverse=True) and len(seen) == 2
    seen.clear()
    written = predict_file(predictor, docs, tmp_path / "chunks.csv", chunk_rows=3, progress=False)
    assert written.rows == 4 and len(seen) == 3  # 3 rows (2 batches), then 1 row: one chunk at a time
    assert pd.read_csv(tmp_path / "chunks.csv", keep_default_na=False)["prediction"].tolist() == whole


def test_with_generation_puts_overrides_over_the_runs_settings_and_keeps_the_rest(run):
    from textune.inference.prediction import Predictor

    model_dir, run_dir = run
    task = Predictor.from_run(run_dir).task
    assert task.generation == GenerationSettings(max_new_tokens=3)
    beams = task.with_generation(GenerationSettings(num_beams=2))
    longer = beams.with_generation(GenerationSettings(max_new_tokens=9, do_sample=False))
    assert longer.generation == GenerationSettings(max_new_tokens=9, num_beams=2, do_sample=False)
    assert task.generation == GenerationSettings(max_new_tokens=3)  # a copy: the run's task is unchanged
    assert longer.to_dict() == task.to_dict()  # overrides are not saved with the run
