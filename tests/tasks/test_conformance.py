"""The conformance suite: every registered task goes through the whole product on a tiny model.

A task passes when, from its own tiny data, it trains a few steps, evaluates, predicts a file, reloads, answers the
JSON API and the demo, exports a Space that starts and answers, and builds its report. A new task adds one `Case`
below (its data and one input) and gets every check; nothing here names what a task predicts.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
import pandas as pd
import pytest

from textune.cli import main
from textune.tasks import TASKS

from conftest import CALM_WORDS, DISASTER_WORDS, FILLER, running_space, seq2seq_rows, toy_frame


@dataclass
class Case:
    """One task's tiny world: how to write its data files and one input to serve.

    Attributes:
        write_data: Writes train, validation and test files (test without references) into a folder; returns them.
        flags: Extra `textune train` flags the data needs (columns), beyond --task.
        inputs: Inputs as the task's API takes them (the `inputs`/`texts` list of one request body).
        body: Wraps a list of inputs into the API's request body.
        demo: The demo's input values for one input.
        model: The fixture of the tiny pretrained model the task trains (an encoder by default; seq2seq needs its own).
    """

    write_data: Callable[[Path], dict[str, Path]]
    flags: tuple[str, ...]
    inputs: list
    body: Callable[[list], dict]
    demo: tuple
    model: str = "tiny_model_dir"


def classification_data(folder: Path) -> dict[str, Path]:
    files = {"train": folder / "train.csv", "validation": folder / "val.csv", "test": folder / "test.csv"}
    toy_frame(64, seed=1).to_csv(files["train"], index=False)
    toy_frame(16, seed=2).to_csv(files["validation"], index=False)
    toy_frame(12, seed=3, with_label=False).to_csv(files["test"], index=False)
    return files


def qa_rows(n: int, seed: int, unanswerable: float = 0.2) -> list[dict]:
    """Contexts of toy words where the question names what to find: 'which fire word' -> the disaster word."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
        answer = rng.choice(DISASTER_WORDS)
        answerable = rng.random() >= unanswerable
        words.insert(rng.randint(0, len(words)), answer if answerable else rng.choice(CALM_WORDS))
        context = " ".join(words)
        start = context.find(answer) if answerable else -1
        rows.append({"id": f"q{seed}-{i}", "question": "which word is a disaster", "context": context,
                     "answers": {"text": [answer] if answerable else [], "answer_start": [start] if answerable else []}})
    return rows


def qa_data(folder: Path) -> dict[str, Path]:
    files = {"train": folder / "train.jsonl", "validation": folder / "val.json", "test": folder / "test.csv"}
    pd.DataFrame(qa_rows(64, 1)).to_json(files["train"], orient="records", lines=True)
    squad = {"version": "v2.0", "data": [{"title": "toy", "paragraphs": [
        {"context": row["context"], "qas": [{"id": row["id"], "question": row["question"],
                                             "is_impossible": not row["answers"]["text"],
                                             "answers": [{"text": t, "answer_start": s} for t, s in
                                                         zip(row["answers"]["text"], row["answers"]["answer_start"])]}]}
        for row in qa_rows(16, 2)]}]}
    files["validation"].write_text(json.dumps(squad), encoding="utf-8")
    pd.DataFrame(qa_rows(12, 3))[["id", "question", "context"]].to_csv(files["test"], index=False)
    return files


def text_to_text_data(folder: Path, translation: bool = False) -> dict[str, Path]:
    """Toy sentences with a one-word summary (summarization, text2text) or their word-by-word Spanish in
    run_translation.py's JSON rows (translation); the test file has no references."""
    files = {"train": folder / "train.csv", "validation": folder / "val.csv", "test": folder / "test.csv"}
    for role, n, seed in (("train", 64, 1), ("validation", 16, 2), ("test", 12, 3)):
        rows = seq2seq_rows(n, seed)
        if role == "test":
            rows[["id", "text"]].rename(columns={"text": "en" if translation else "text"}).to_csv(files[role],
                                                                                                  index=False)
        elif translation:
            files[role] = folder / f"{role}.json"
            pairs = [{"id": row.id, "translation": {"en": row.text, "es": row.spanish}} for row in rows.itertuples()]
            files[role].write_text("\n".join(json.dumps(pair) for pair in pairs), encoding="utf-8")
        else:
            rows[["id", "text", "summary"]].to_csv(files[role], index=False)
    return files


def text_generation_data(folder: Path) -> dict[str, Path]:
    """Toy prompts asking for a sentence's Spanish, completed word by word; the test file has prompts only."""
    files = {"train": folder / "train.csv", "validation": folder / "val.csv", "test": folder / "test.csv"}
    for role, n, seed in (("train", 64, 1), ("validation", 16, 2), ("test", 12, 3)):
        rows = seq2seq_rows(n, seed)
        table = pd.DataFrame({"id": rows["id"], "prompt": "translate: " + rows["text"] + " answer:",
                              "completion": rows["spanish"]})
        (table[["id", "prompt"]] if role == "test" else table).to_csv(files[role], index=False)
    return files


TEXT = "the fire near my house"
QA_INPUT = {"question": "which word is a disaster", "context": "the dog saw a flood near the river"}

CASES = {
    "text-classification": Case(classification_data, ("--text_column_name", "text", "--label_column_name", "target"),
                                ["fire near the town"], lambda inputs: {"texts": inputs}, ("fire near the town",)),
    "question-answering": Case(qa_data, ("--version_2_with_negative", "--max_seq_length", "32", "--doc_stride", "8"), [QA_INPUT],
                               lambda inputs: {"inputs": inputs}, (QA_INPUT["context"], QA_INPUT["question"])),
    "summarization": Case(text_to_text_data, ("--source_prefix", "summarize: ", "--max_target_length", "8", "--predict_with_generate",
                                              "--generation_max_length", "4", "--num_beams", "2"),
                          [TEXT], lambda inputs: {"inputs": inputs}, (TEXT,), model="tiny_t5_dir"),
    "translation": Case(lambda folder: text_to_text_data(folder, translation=True),
                        ("--source_lang", "en", "--target_lang", "es", "--generation_max_length", "8",
                         "--predict_with_generate"),
                        [TEXT], lambda inputs: {"inputs": inputs}, (TEXT,), model="tiny_bart_dir"),
    "text2text": Case(text_to_text_data, ("--text_column", "text", "--summary_column", "summary",
                                          "--generation_max_length", "4", "--predict_with_generate"),
                      [TEXT], lambda inputs: {"inputs": inputs}, (TEXT,), model="tiny_bart_dir"),
    "text-generation": Case(text_generation_data, ("--max_seq_length", "48", "--max_new_tokens", "4"),
                            [TEXT], lambda inputs: {"inputs": inputs}, (TEXT,), model="tiny_llama_dir"),
}


def test_every_registered_task_has_a_conformance_case():
    assert set(TASKS) <= set(CASES), f"add a Case for {sorted(set(TASKS) - set(CASES))} to this suite"


@pytest.fixture(scope="module", params=sorted(CASES))
def trained(request, tmp_path_factory):
    """A run of the task trained a few steps on its tiny data, with validation metrics and test predictions."""
    name = request.param
    if name not in TASKS:
        pytest.skip(f"{name} is not registered")
    case = CASES[name]
    tiny_model_dir = request.getfixturevalue(case.model)
    folder = tmp_path_factory.mktemp(name)
    files = case.write_data(folder)
    run = folder / "run"
    assert main(["train", "--task", name, "--model_name_or_path", str(tiny_model_dir),
                 "--train_file", str(files["train"]), "--validation_file", str(files["validation"]),
                 "--test_file", str(files["test"]), "--do_train", "--do_eval", "--do_predict", "--max_steps", "4",
                 "--per_device_train_batch_size", "16", "--output_dir", str(run),
                 *case.flags]) == 0
    return name, case, files, run


def task_of(run: Path):
    from textune.run_folder import read_run_file
    from textune.tasks import task_from_dict

    return task_from_dict(read_run_file(run)["task"])


def test_training_writes_the_model_metrics_predictions_and_report(trained):
    name, case, files, run = trained
    task = task_of(run)
    assert task.name == name
    for file in ("textune_run.json", "model.safetensors", "all_results.json", "predictions.csv", "report.html"):
        assert (run / file).is_file(), file
    metrics = json.loads((run / "all_results.json").read_text(encoding="utf-8"))
    assert "eval_" + task.headline_metrics[0] in metrics
    assert metrics["eval_samples"] == 16 and metrics["train_samples"] == 64  # rows, not the task's features
    assert task.metric_scale > 0 and isinstance(task.trains_on_disk, bool)


def test_overwrite_output_dir_removes_every_file_the_run_wrote(trained, tmp_path):
    """RUN_OUTPUTS names all a run writes (its predictions included): a new run never sits beside the old one's files."""
    import shutil

    from textune.run_folder import remove_run_outputs

    name, case, files, run = trained
    copy = shutil.copytree(run, tmp_path / "run")
    remove_run_outputs(copy)
    assert sorted(path.name for path in copy.iterdir()) == []


def test_large_data_true_trains_on_disk_or_is_refused_in_one_line(trained, tiny_model_dir, tmp_path, capsys):
    name, case, files, run = trained
    if task_of(run).trains_on_disk:
        pytest.skip("trained from disk in tests/data/test_large_data.py")
    code = main(["train", "--task", name, "--model_name_or_path", str(tiny_model_dir), "--train_file",
                 str(files["train"]), "--large_data", "true", "--output_dir", str(tmp_path / "out"), *case.flags])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("textune:")]
    assert code == 2 and len(errors) == 1 and "--large_data" in errors[0] and not (tmp_path / "out").exists()


def test_evaluate_scores_a_labelled_file_with_the_tasks_metrics(trained, tmp_path):
    name, case, files, run = trained
    output = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(run), "--input", str(files["validation"]), "--output", str(output)]) == 0
    metrics = json.loads(output.read_text(encoding="utf-8"))
    assert "eval_" + task_of(run).headline_metrics[0] in metrics


def test_predict_writes_one_record_per_input_row_and_a_reloaded_run_agrees(trained, tmp_path):
    from textune.inference.prediction import Predictor

    name, case, files, run = trained
    output = tmp_path / "out.csv"
    assert main(["predict", "--model", str(run), "--input", str(files["test"]), "--output", str(output)]) == 0
    written = pd.read_csv(output, keep_default_na=False)
    predictor = Predictor.from_run(run, backend="torch")
    rows = predictor.task.check_rows(pd.read_csv(files["test"], keep_default_na=False), "test", with_targets=False)
    expected = predictor.task.prediction_table(rows, predictor.predict(rows))
    assert len(written) == len(expected) == len(rows)
    assert list(written.columns) == list(expected.columns)
    for column in expected.columns:
        if expected[column].dtype.kind == "f":
            assert written[column].to_numpy() == pytest.approx(expected[column].to_numpy(), abs=1e-4), column
        else:
            assert written[column].astype(str).tolist() == expected[column].astype(str).tolist(), column


def test_the_json_api_answers_the_tasks_schema(trained):
    from fastapi.testclient import TestClient

    from textune.serving import ModelService, ServeConfig, build_app

    name, case, files, run = trained
    service = ModelService.from_run(run)
    api = service.predictor.task.api()
    with TestClient(build_app(service, ServeConfig(ui=False))) as client:
        answer = client.post("/v1/predict", json=case.body(case.inputs * 2))
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert len(predictions) == 2 and predictions[0] == predictions[1]
        api.record.model_validate(predictions[0])
        described = client.get("/v1/labels")
        assert described.status_code == 200 and described.json() == json.loads(json.dumps(
            {"model": service.info.name} | service.predictor.task.describe()))
        assert client.post("/v1/predict", json={"nothing": []}).status_code == 422


def test_the_exported_space_starts_and_answers_the_api_and_the_demo(trained, tmp_path):
    from gradio_client import Client

    name, case, files, run = trained
    space = tmp_path / "space"
    assert main(["export-space", str(run), "--to", str(space), "--title", "Conformance"]) == 0
    with running_space(space, "Conformance") as (url, process):
        answer = httpx.post(url + "/v1/predict", json=case.body(case.inputs), timeout=30)
        assert answer.status_code == 200, answer.text
        assert "Conformance" in httpx.get(url + "/", timeout=30).text
        shown = Client(url + "/", verbose=False).predict(*case.demo, api_name="/predict")
        assert shown is not None


def test_the_report_holds_the_shell_and_the_tasks_own_sections(trained, tmp_path):
    from textune.data.splits import read_rows
    from textune.inference.prediction import Predictor

    name, case, files, run = trained
    (run / "report.html").unlink()
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text(encoding="utf-8")
    assert 'id="metrics"' in html and 'id="data"' in html  # the shell's own sections
    predictor = Predictor.from_run(run, backend="torch")
    rows = predictor.task.check_rows(read_rows(files["validation"], None, "--validation_file", name), "validation",
                                     with_targets=True)
    sections = predictor.task.report_sections(rows, predictor.predict(rows), tmp_path)
    assert sections, "a task's report says something of its own"
    for section in sections:
        assert section.title in html, section.title
