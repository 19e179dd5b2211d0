"""Inference backends and ONNX export: the export matches PyTorch, auto trusts only a passed parity record."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from textune.inference.backends import choose_backend, parity_path
from textune.cli import main
from textune.tasks.classification.columns import ColumnSpec
from textune.errors import TextuneError
from textune.inference.export import export_onnx
from textune.tasks.classification.labels import LabelSpec
from textune.inference.prediction import Predictor
from textune.run_folder import write_run_file
from textune.tasks import ClassificationTask

from conftest import toy_frame

pytest.importorskip("onnxruntime")

SINGLE = "single_label_classification"


def make_run(tiny_model_dir, folder, head: str = "linear", problem_type: str = SINGLE, validation: bool = True):
    """A run folder as `textune train` leaves it, without the training: the tiny model, its task, and (like the
    report writes) validation_predictions.csv."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer, BertForSequenceClassification

    from textune.tasks.classification.heads import EncoderClassifier

    folder.mkdir(parents=True)
    labels = LabelSpec(problem_type, [] if problem_type == "regression" else ["0", "1"])
    config = AutoConfig.from_pretrained(tiny_model_dir, num_labels=labels.num_labels, problem_type=problem_type)
    torch.manual_seed(0)
    if head == "linear":
        BertForSequenceClassification(config).save_pretrained(folder)
    else:  # a textune head on the encoder, saved as training saves it
        from safetensors.torch import save_file

        model = EncoderClassifier(AutoModel.from_config(config), head, "mean", labels.num_labels, problem_type)
        save_file(model.state_dict(), folder / "model.safetensors")
        config.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    task = ClassificationTask(ColumnSpec(text=["text"], label="target", id="id"), labels, max_seq_length=64,
                              head=head)
    write_run_file(folder, {"task": task.to_dict()})
    if validation:
        rows = toy_frame(40, seed=7)
        pd.DataFrame({"text": rows["text"], "label": rows["target"]}).to_csv(
            folder / "validation_predictions.csv", index=False)
    return folder


def error_line(stderr: str) -> str:
    """The CLI's error: exactly one line (progress bars of model loading may precede it)."""
    lines = [line for line in stderr.splitlines() if line.startswith("textune: error:")]
    assert len(lines) == 1 and stderr.rstrip().endswith(lines[0]), stderr
    return lines[0]


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory):
    return make_run(tiny_model_dir, tmp_path_factory.mktemp("runs") / "linear")


@pytest.fixture
def fresh_run(tiny_model_dir, tmp_path):
    """A run folder of its own, for tests that export into it or break it."""
    return make_run(tiny_model_dir, tmp_path / "run")


@pytest.mark.parametrize("head,problem_type", [("linear", SINGLE), ("mean_pool", SINGLE), ("linear", "regression")])
def test_onnx_export_matches_pytorch_and_the_onnx_backend_predicts_the_same(tiny_model_dir, tmp_path, head,
                                                                           problem_type):
    run = make_run(tiny_model_dir, tmp_path / "run", head, problem_type)
    result = export_onnx(run)
    assert result.model == run / "model.onnx" and result.parity_file == run / "model.parity.json"
    record = json.loads(result.parity_file.read_text())
    assert record["passed"] and record["agreement"] == 1.0 and record["max_abs_diff"] < 1e-4
    assert record["rows"] == 40 and record["source"] == "validation" and record["quantize"] is None
    texts = toy_frame(25, seed=9)["text"].tolist() + ["", "fire " * 80]  # empty, and longer than max_seq_length
    expected = Predictor.from_run(run, backend="torch").predict(texts)
    got = Predictor.from_run(run, backend="onnx").predict(texts)
    assert list(got.columns) == list(expected.columns)
    if problem_type == SINGLE:
        assert (got["prediction"] == expected["prediction"]).all()
        np.testing.assert_allclose(got["prob_1"], expected["prob_1"], atol=1e-4)
    else:
        np.testing.assert_allclose(got["prediction"], expected["prediction"], atol=1e-4)
    assert not list(run.glob(".textune-export-*"))  # the staging folder is gone


def test_export_cli_writes_the_model_and_its_parity_record(fresh_run, capsys):
    assert main(["export", str(fresh_run), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert "agreement 100.00%" in out and "model.onnx" in out
    record = json.loads((fresh_run / "model.parity.json").read_text())
    assert {"rows", "max_abs_diff", "agreement", "passed", "weights", "metrics"} <= set(record)
    assert record["metrics"]["torch"] == record["metrics"]["exported"]


def test_int8_export_records_its_parity_and_runs(fresh_run):
    result = export_onnx(fresh_run, quantize="int8", min_agreement=0.0)
    assert result.model.name == "model_int8.onnx" and parity_path(result.model).exists()
    assert result.parity["quantize"] == "int8" and 0.0 <= result.parity["agreement"] <= 1.0
    import onnx

    quantized = {node.name for node in onnx.load(str(result.model)).graph.node if node.op_type == "MatMulInteger"}
    assert quantized and not [name for name in quantized if "/layer.0/" in name]  # the first layer stays fp32
    table = Predictor.from_run(fresh_run, backend="onnx-int8").predict(["fire near my house", "happy coffee"])
    assert len(table) == 2 and set(table["prediction"]) <= {"0", "1"}


def test_export_below_min_agreement_is_one_line_exit_2_and_writes_nothing(fresh_run, monkeypatch, capsys):
    import textune.inference.export

    real = textune.inference.export.compare_outputs
    monkeypatch.setattr(textune.inference.export, "compare_outputs",
                        lambda *args: real(*args) | {"agreement": 0.9})  # as if 10% of labels changed
    assert main(["export", str(fresh_run), "--quantize", "int8"]) == 2
    err = error_line(capsys.readouterr().err)
    assert "90.0%" in err and "--min_agreement" in err and "nothing was written" in err
    assert not list(fresh_run.glob("*.onnx")) and not list(fresh_run.glob("*.parity.json"))
    assert not list(fresh_run.glob(".textune-export-*"))


@pytest.mark.parametrize("argv,message", [
    (["export", "{tmp}/missing"], "no such run folder"),
    (["export", "{run}", "--output", "{tmp}/model.bin"], "must end in .onnx"),
    (["export", "{run}", "--min_agreement", "1.5"], "between 0 and 1"),
    (["predict", "--model", "{run}", "--input", "{tmp}/x.csv", "--backend", "onnx"], "textune export"),
])
def test_bad_export_or_backend_requests_are_one_line_exit_2(run_dir, tmp_path, capsys, argv, message):
    pd.DataFrame({"text": ["a fire"]}).to_csv(tmp_path / "x.csv", index=False)
    argv = [arg.format(tmp=tmp_path, run=run_dir) for arg in argv]
    assert main(argv) == 2
    assert message in error_line(capsys.readouterr().err)
    assert not list(run_dir.glob("*.onnx"))


def test_auto_uses_onnx_only_while_its_parity_record_vouches_for_it(fresh_run, caplog):
    assert choose_backend(fresh_run) == "torch"
    export_onnx(fresh_run)
    assert choose_backend(fresh_run) == "onnx"
    predictor = Predictor.from_run(fresh_run)
    assert predictor.backend.name == "onnx" and predictor._model is None  # PyTorch weights never loaded
    record_file = fresh_run / "model.parity.json"
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps(record | {"passed": False}))
    assert choose_backend(fresh_run) == "torch"
    record_file.write_text(json.dumps(record | {"weights": "retrained"}))
    assert choose_backend(fresh_run) == "torch"
    record_file.unlink()
    assert choose_backend(fresh_run) == "torch"


def test_auto_skips_an_int8_model_kept_below_99_percent_agreement(fresh_run):
    export_onnx(fresh_run)
    int8 = export_onnx(fresh_run, quantize="int8", min_agreement=0.0)
    assert choose_backend(fresh_run) == ("onnx-int8" if int8.parity["agreement"] >= 0.99 else "onnx")
    record_file = int8.parity_file
    record_file.write_text(json.dumps(json.loads(record_file.read_text()) | {"agreement": 0.95}))
    assert choose_backend(fresh_run) == "onnx"


def test_predict_and_evaluate_cli_take_a_backend_and_agree(fresh_run, tmp_path, capsys):
    export_onnx(fresh_run)
    toy_frame(30, seed=4).to_csv(tmp_path / "in.csv", index=False)
    outputs = {}
    for backend in ("torch", "onnx"):
        output = tmp_path / f"{backend}.csv"
        assert main(["predict", "--model", str(fresh_run), "--input", str(tmp_path / "in.csv"), "--output",
                     str(output), "--backend", backend]) == 0
        outputs[backend] = pd.read_csv(output)
        assert main(["evaluate", "--model", str(fresh_run), "--input", str(tmp_path / "in.csv"),
                     "--backend", backend]) == 0
    assert (outputs["torch"]["prediction"] == outputs["onnx"]["prediction"]).all()
    np.testing.assert_allclose(outputs["torch"]["prob_1"], outputs["onnx"]["prob_1"], atol=1e-4)


def test_torch_logits_equal_one_text_at_a_time(run_dir):
    """Sorting, batching and padding change nothing: each row's logits are those of the text run alone."""
    predictor = Predictor.from_run(run_dir, batch_size=4, backend="torch")
    frame = toy_frame(11, seed=3)
    (batched,) = predictor.outputs(frame)
    model, tokenizer = predictor.model, predictor.tokenizer
    with torch.inference_mode():
        alone = np.concatenate([model(**tokenizer([text], return_tensors="pt")).logits.numpy()
                                for text in frame["text"]])
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_bf16_backend_runs_and_stays_close_to_fp32(run_dir):
    frame = toy_frame(8, seed=2)
    (fp32,) = Predictor.from_run(run_dir, backend="torch").outputs(frame)
    (bf16,) = Predictor.from_run(run_dir, backend="torch-bf16").outputs(frame)
    assert bf16.dtype == np.float32 and np.abs(bf16 - fp32).max() < 0.1


def test_a_predictor_on_a_model_in_memory_uses_torch_and_rejects_onnx(run_dir):
    loaded = Predictor.from_run(run_dir, backend="torch")
    assert Predictor(loaded.model, loaded.tokenizer, loaded.task).backend.name == "torch"
    with pytest.raises(TextuneError, match="from_run"):
        Predictor(loaded.model, loaded.tokenizer, loaded.task, backend="onnx")
    with pytest.raises(TextuneError, match="not known"):
        Predictor(loaded.model, loaded.tokenizer, loaded.task, backend="tensorrt")


def test_export_falls_back_to_the_torch_export_based_exporter(fresh_run, monkeypatch):
    pytest.importorskip("onnxscript")
    real = torch.onnx.export

    def without_torchscript(*args, dynamo=True, **kwargs):
        if not dynamo:
            raise TypeError("the TorchScript exporter was removed")  # as a future torch may do
        return real(*args, dynamo=True, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", without_torchscript)
    result = export_onnx(fresh_run, parity_rows=10)
    assert result.parity["passed"] and result.parity["max_abs_diff"] < 1e-4
    assert result.parity["rows"] == 10


def test_parity_check_uses_example_sentences_when_the_run_has_no_validation_rows(tiny_model_dir, tmp_path):
    run = make_run(tiny_model_dir, tmp_path / "run", validation=False)
    result = export_onnx(run, parity_rows=16)
    assert result.parity["source"] == "example" and result.parity["rows"] == 16 and "metrics" not in result.parity
    shutil.rmtree(run)


@pytest.mark.parametrize("text_columns", [["text"], ["text", "keyword"]])
def test_predicting_plain_texts_skips_the_frame_with_identical_results(run_dir, text_columns):
    predictor = Predictor.from_run(run_dir, backend="torch")
    predictor.task.columns = ColumnSpec(text=text_columns, label="target", delimiter=" | ")
    texts = ["Forest fire near La Ronge", "", "  spaces  ", "émoji 🔥 ünïcode", "fire " * 100]
    rows = predictor.task.input_rows(texts)
    assert predictor.task.tokenize_texts(predictor.tokenizer, texts) == \
        predictor.task.tokenize(predictor.tokenizer, rows)
    pd.testing.assert_frame_equal(predictor.predict(texts), predictor.records(rows))
    assert predictor.predict("one text").shape[0] == 1 and predictor.predict([]).shape[0] == 0
    assert predictor.task.tokenize_texts(predictor.tokenizer, ["a", None]) is None  # the frame cleans None


def test_the_server_answers_from_the_backend_it_is_given(fresh_run):
    from fastapi.testclient import TestClient

    from textune.serving import ModelService, ServeConfig, build_app

    export_onnx(fresh_run)
    texts = toy_frame(6, seed=9)["text"].tolist()
    answers = {}
    for backend in ("torch", "onnx"):
        service = ModelService.from_run(fresh_run, backend=backend)
        assert type(service.predictor.backend).__name__.lower().startswith(backend.split("-")[0])
        with TestClient(build_app(service, ServeConfig(ui=False))) as client:
            response = client.post("/v1/predict", json={"texts": texts})
        assert response.status_code == 200
        answers[backend] = response.json()
    labels = {backend: [item["label"] for item in answer["predictions"]] for backend, answer in answers.items()}
    assert labels["onnx"] == labels["torch"]


def test_onnx_threads_spin_between_runs_only_in_a_batch_job(fresh_run, tmp_path, monkeypatch):
    from textune.inference import backends
    from textune.serving import ModelService

    export_onnx(fresh_run)
    built = []
    monkeypatch.setattr(backends, "OnnxBackend", lambda *args, **kwargs: built.append(kwargs) or
                        backends.TorchBackend(Predictor.from_run(fresh_run, backend="torch").model, ("logits",)))
    toy_frame(4, seed=5, with_label=False).to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", "--model", str(fresh_run), "--input", str(tmp_path / "new.csv"), "--backend", "onnx"]) == 0
    ModelService.from_run(fresh_run, backend="onnx")
    Predictor.from_run(fresh_run, backend="onnx")
    assert [kwargs["spinning"] for kwargs in built] == [True, False, False]  # predict; the server; a library user
