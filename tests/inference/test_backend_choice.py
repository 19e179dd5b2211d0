"""The prediction backend chosen at the end of training: measured on validation, recorded, honoured by auto."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

import textune.inference.backend_choice as backend_choice
import textune.inference.backends as backends
from textune.inference.backend_choice import BACKEND_FILE, choose_run_backend, resolve_candidates
from textune.inference.backends import choose_backend
from textune.inference.batch_predict import evaluate_file
from textune.cli import main
from textune.tasks.classification.columns import ColumnSpec
from textune.errors import TextuneError
from textune.tasks.classification.labels import LabelSpec
from textune.inference.prediction import Predictor
from textune.run_folder import write_run_file
from textune.tasks import ClassificationTask

from conftest import DISASTER_WORDS, FILLER, save_untrained_qa_run, toy_frame

# texts/s each backend "measures": real timings of a tiny model are noise, so tests fix who is faster
SPEEDS = {"torch": 100.0, "torch-int8": 300.0, "torch-bf16": 200.0, "onnx-int8": 250.0, "onnx": 150.0}


def make_run(tiny_model_dir, folder):
    """A run folder as `textune train` saves it (the tiny model, its tokenizer and task), without training."""
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification

    folder.mkdir(parents=True)
    config = AutoConfig.from_pretrained(tiny_model_dir, num_labels=2)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    task = ClassificationTask(ColumnSpec(text=["text"], label="target", id="id"),
                              LabelSpec("single_label_classification", ["0", "1"]), max_seq_length=64)
    write_run_file(folder, {"task": task.to_dict()})
    return folder


@pytest.fixture
def run(tiny_model_dir, tmp_path):
    return make_run(tiny_model_dir, tmp_path / "run")


@pytest.fixture
def validation():
    return toy_frame(120, seed=7)


@pytest.fixture
def fixed_speeds(monkeypatch):
    real = backend_choice.timed_outputs

    def timed(predictor, frame, features):
        outputs, _ = real(predictor, frame, features)
        return outputs, SPEEDS[predictor.backend.name]

    monkeypatch.setattr(backend_choice, "timed_outputs", timed)


@pytest.fixture
def disagreeing_int8(monkeypatch):
    """torch-int8 as if quantization had broken the model: its classifier's logits are swapped."""
    real = backends.quantize_linear_int8

    def broken(model):
        quantized = real(model)
        with torch.no_grad():
            quantized.classifier.weight.copy_(quantized.classifier.weight.flip(0))
            quantized.classifier.bias.copy_(quantized.classifier.bias.flip(0))
        return quantized

    monkeypatch.setattr(backends, "quantize_linear_int8", broken)


def test_torch_int8_quantizes_the_encoder_linears_but_the_first_layer_and_head_and_stays_close(run, validation):
    fp32 = Predictor.from_run(run, backend="torch")
    int8 = Predictor.from_run(run, backend="torch-int8")
    assert int8.backend.name == "torch-int8"
    int8_linear = torch.ao.nn.quantized.dynamic.Linear
    quantized = {name for name, module in int8.backend.model.named_modules() if isinstance(module, int8_linear)}
    assert {"bert.encoder.layer.1.attention.self.query", "bert.encoder.layer.1.output.dense"} <= quantized
    assert not {"bert.encoder.layer.0.attention.self.query", "classifier", "bert.pooler.dense"} & quantized
    assert not isinstance(fp32.model.bert.encoder.layer[1].output.dense, int8_linear)  # the original is untouched
    assert np.abs(int8.outputs(validation)[0] - fp32.outputs(validation)[0]).max() < 0.05


def test_the_fastest_candidate_that_keeps_the_answers_is_recorded_and_auto_uses_it(run, validation, fixed_speeds):
    choice = choose_run_backend(run, validation, ["torch-int8", "torch-bf16"])
    assert choice.chosen == "torch-int8" and "3.0x" in choice.reason
    record = json.loads((run / BACKEND_FILE).read_text())
    assert record["chosen"] == "torch-int8" and record["rows"] == 120
    by_name = {row["backend"]: row for row in record["candidates"]}
    assert list(by_name) == ["torch", "torch-int8", "torch-bf16"]
    assert by_name["torch-int8"]["passed"] and by_name["torch-int8"]["agreement"] >= 0.99
    assert by_name["torch-int8"]["metric_drop"][0] in ("accuracy", "f1")
    assert choose_backend(run) == "torch-int8"


def test_predict_evaluate_and_serve_honour_the_recorded_backend(run, validation, fixed_speeds, tmp_path, caplog):
    from textune.serving import ModelService

    choose_run_backend(run, validation, ["torch-int8"])
    validation.to_csv(tmp_path / "val.csv", index=False)
    with caplog.at_level(logging.INFO, logger="textune"):
        assert main(["predict", "--model", str(run), "--input", str(tmp_path / "val.csv"), "--output",
                     str(tmp_path / "int8.csv")]) == 0
    assert "inference backend: torch-int8 (auto)" in caplog.text and "chosen at the end of training" in caplog.text
    assert main(["predict", "--model", str(run), "--input", str(tmp_path / "val.csv"), "--output",
                 str(tmp_path / "fp32.csv"), "--backend", "torch"]) == 0
    int8, fp32 = pd.read_csv(tmp_path / "int8.csv"), pd.read_csv(tmp_path / "fp32.csv")
    assert not np.array_equal(int8["prob_1"], fp32["prob_1"])  # really another backend, not fp32 again
    assert (int8["prediction"] == fp32["prediction"]).mean() >= 0.99
    predictor = Predictor.from_run(run)
    assert predictor.backend.name == "torch-int8"
    assert evaluate_file(predictor, tmp_path / "val.csv", progress=False)["eval_samples"] == 120
    assert ModelService.from_run(run).predictor.backend.name == "torch-int8"


def test_an_int8_candidate_that_disagrees_with_fp32_falls_back_to_fp32(run, validation, fixed_speeds,
                                                                      disagreeing_int8):
    choice = choose_run_backend(run, validation, ["torch-int8"])
    assert choice.chosen == "torch" and "failed parity" in choice.reason
    failed = choice.candidates[1]
    assert failed["backend"] == "torch-int8" and not failed["passed"] and failed["agreement"] < 0.99
    assert "agreement" in failed["why"]
    assert Predictor.from_run(run).backend.name == "torch"


def test_a_candidate_losing_more_than_half_a_point_of_metric_fails_even_at_99_percent_agreement(
        run, validation, fixed_speeds, monkeypatch):
    import textune.inference.export

    real = textune.inference.export.compare_outputs

    def slightly_worse(task, frame, features, expected, got):
        record = real(task, frame, features, expected, got)
        if record.get("metrics") and not all(np.array_equal(a, b) for a, b in zip(expected, got)):
            record["metrics"]["exported"]["f1"] = record["metrics"]["torch"]["f1"] - 0.006
        return record

    monkeypatch.setattr(textune.inference.export, "compare_outputs", slightly_worse)
    choice = choose_run_backend(run, validation, ["torch-int8"])
    assert choice.chosen == "torch" and choice.candidates[1]["why"] == "f1 0.60 points below fp32"


def test_the_backend_flag_overrides_the_record(run, validation, fixed_speeds, tmp_path):
    choose_run_backend(run, validation, ["torch-int8"])
    assert Predictor.from_run(run, backend="torch").backend.name == "torch"
    assert Predictor.from_run(run, backend="torch-bf16").backend.name == "torch-bf16"


def test_a_record_of_other_weights_falls_back_to_fp32_with_a_warning(run, validation, fixed_speeds, caplog):
    choose_run_backend(run, validation, ["torch-int8"])
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # a retrained model rewrites every tensor; one byte is enough for the fingerprint
    weights.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert choose_backend(run) == "torch"
    assert "other weights" in caplog.text


def test_a_candidate_that_crashes_loses_alone_and_the_others_are_still_measured(run, validation, fixed_speeds,
                                                                               monkeypatch):
    def crash(model):
        raise RuntimeError("no quantized engine on this CPU")

    monkeypatch.setattr(backends, "quantize_linear_int8", crash)
    choice = choose_run_backend(run, validation, ["torch-int8", "torch-bf16"])
    by_name = {row["backend"]: row for row in json.loads((run / BACKEND_FILE).read_text())["candidates"]}
    assert by_name["torch-int8"]["why"] == "RuntimeError: no quantized engine on this CPU"
    assert choice.chosen == "torch-bf16"


def test_a_bf16_choice_made_on_a_cpu_with_native_bf16_is_fp32_on_one_without(run, validation, fixed_speeds,
                                                                             monkeypatch, caplog):
    choose_run_backend(run, validation, ["torch-bf16"])
    assert choose_backend(run) == "torch-bf16"
    monkeypatch.setattr(backend_choice, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert choose_backend(run) == "torch"
    assert "lacks" in caplog.text


@pytest.mark.parametrize("rows,why", [(0, "no validation rows"), (20, "too few")])
def test_runs_without_enough_validation_rows_keep_fp32(run, fixed_speeds, rows, why):
    choice = choose_run_backend(run, toy_frame(rows, seed=1) if rows else None, ["torch-int8"])
    assert choice.chosen == "torch" and why in choice.reason and choice.candidates == []
    assert json.loads((run / BACKEND_FILE).read_text())["chosen"] == "torch"


def test_onnx_candidate_is_skipped_with_the_reason_when_onnxruntime_is_missing(run, validation, fixed_speeds,
                                                                              monkeypatch):
    import textune.inference.export

    def missing(needed_by):
        raise TextuneError(f"{needed_by} needs ONNX Runtime: pip install 'textune[onnx]'")

    monkeypatch.setattr(textune.inference.export, "import_onnxruntime", missing)
    choice = choose_run_backend(run, validation, ["onnx-int8", "torch-int8"])
    skipped = choice.candidates[1]
    assert skipped["backend"] == "onnx-int8" and not skipped["passed"] and "ONNX Runtime" in skipped["why"]
    assert choice.chosen == "torch-int8" and not (run / "model_int8.onnx").exists()


def test_onnx_int8_candidate_is_exported_with_its_parity_record_and_auto_loads_it(run, validation, fixed_speeds):
    pytest.importorskip("onnxruntime")
    choice = choose_run_backend(run, validation, ["onnx-int8"])
    row = choice.candidates[1]
    if row["passed"]:
        assert choice.chosen == "onnx-int8" and (run / "model_int8.onnx").exists()
        assert Predictor.from_run(run).backend.name == "onnx-int8"
    else:  # the tiny random model may lose labels to int8; then nothing is written and fp32 stays
        assert choice.chosen == "torch" and not (run / "model_int8.onnx").exists()


def test_inference_backends_flag_names_known_backends():
    assert resolve_candidates("none") == []
    assert resolve_candidates("torch-int8, onnx-int8") == ["torch-int8", "onnx-int8"]
    assert {"torch-int8", "onnx-int8"} <= set(resolve_candidates("auto"))
    with pytest.raises(TextuneError, match="--inference_backends: tensorrt not known"):
        resolve_candidates("torch-int8,tensorrt")


def test_training_records_the_choice_says_it_in_the_log_and_the_report(tiny_model_dir, tmp_path, caplog,
                                                                        monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    toy_frame(64, seed=1).to_csv(data / "train.csv", index=False)
    toy_frame(120, seed=2).to_csv(data / "val.csv", index=False)
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="textune"):
        assert main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", f"{data}/train.csv",
                     "--validation_file", f"{data}/val.csv", "--label_column_name", "target", "--do_train",
                     "--do_eval", "--num_train_epochs", "1", "--per_device_train_batch_size", "32",
                     "--report_to", "none", "--save_strategy", "no", "--inference_backends", "torch-int8",
                     "--output_dir", str(out)]) == 0
    record = json.loads((out / BACKEND_FILE).read_text())
    assert [row["backend"] for row in record["candidates"]] == ["torch", "torch-int8"] and record["rows"] == 120
    assert f"prediction backend: {record['chosen']}" in caplog.text and "measuring took" in caplog.text
    assert f"Prediction backend: {record['chosen']}" in (out / "report.md").read_text()
    assert choose_backend(out) == record["chosen"]


def test_an_unknown_inference_backend_fails_before_training(tiny_model_dir, tweets_dir, tmp_path, capsys):
    assert main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", f"{tweets_dir}/train.csv",
                 "--label_column_name", "target", "--inference_backends", "tensorrt",
                 "--output_dir", str(tmp_path / "run")]) == 2
    assert "--inference_backends: tensorrt not known" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_an_export_made_after_a_record_that_did_not_measure_it_is_used_by_auto(run, validation):
    pytest.importorskip("onnxruntime")
    from textune.inference.export import export_onnx

    choose_run_backend(run, validation, [])  # --inference_backends none: fp32, nothing measured
    export_onnx(run)  # the user exports later; its own parity record vouches for it
    assert choose_backend(run) == "onnx"
    record = json.loads((run / BACKEND_FILE).read_text())
    rejected = {"backend": "onnx", "texts_per_s": 1.0, "passed": False, "why": "f1 0.60 points below fp32"}
    (run / BACKEND_FILE).write_text(json.dumps(record | {"candidates": [rejected]}))
    assert choose_backend(run) == "torch"  # the record measured that export and refused it: its verdict stands


def test_the_onnx_candidate_reuses_fp32s_validation_logits_instead_of_computing_them_again(run, validation,
                                                                                          fixed_speeds, monkeypatch):
    passes = []
    real = Predictor.run

    def counted(self, features, progress=False):
        if self.backend.name == "torch":
            passes.append(len(features["input_ids"]))  # prediction features: a dict of lists
        return real(self, features, progress)

    monkeypatch.setattr(Predictor, "run", counted)
    choose_run_backend(run, validation, ["onnx-int8"])
    # one full fp32 pass (after timed_outputs' short warm-up), for every candidate and the export's parity record
    assert passes.count(len(validation)) == 1


def qa_validation(n: int) -> pd.DataFrame:
    import random

    rng = random.Random(3)
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
        answer = rng.choice(DISASTER_WORDS)
        words.insert(rng.randint(0, len(words)), answer)
        rows.append({"id": f"q{i}", "question": "which word is a disaster", "context": " ".join(words),
                     "answer": answer})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("loss, chosen", [(0.3, "onnx"), (0.6, "torch")])
def test_a_qa_onnx_export_passes_parity_and_its_metric_drop_is_in_points_of_squads_0_to_100_scale(
        tiny_model_dir, tmp_path, fixed_speeds, monkeypatch, loss, chosen):
    pytest.importorskip("onnxruntime")
    import textune.inference.export

    run = save_untrained_qa_run(tiny_model_dir, tmp_path / "qa")
    real = textune.inference.export.compare_outputs

    def worse(task, frame, features, expected, got):
        record = real(task, frame, features, expected, got)
        if record.get("metrics"):
            record["metrics"]["exported"]["f1"] = record["metrics"]["torch"]["f1"] - loss
        return record

    monkeypatch.setattr(textune.inference.export, "compare_outputs", worse)
    choice = choose_run_backend(run, qa_validation(110), ["onnx"])
    onnx = choice.candidates[1]
    assert onnx["agreement"] >= 0.99 and (run / "model.onnx").is_file()  # the QA export agrees with PyTorch
    assert onnx["metric_drop"] == ["f1", loss] or onnx["metric_drop"] == ("f1", loss)
    assert choice.chosen == chosen
    if chosen == "torch":
        assert onnx["why"] == "f1 0.60 points below fp32"


def test_one_changed_answer_of_761_is_a_small_metric_drop_for_a_task_scored_in_percent():
    # SQuAD's exact match is a percentage: one answer of 761 changed costs 0.13 points, not 13 (x 100 again)
    from textune.tasks.question_answering.arguments import QuestionAnsweringArguments
    from textune.tasks.question_answering.metrics import squad_metrics
    from textune.tasks.question_answering.task import QuestionAnsweringTask

    golds = [["fire"]] * 761
    fp32 = squad_metrics(golds, ["fire"] * 761, version_2=False)
    int8 = squad_metrics(golds, ["fire"] * 760 + ["flood"], version_2=False)
    task = QuestionAnsweringTask(QuestionAnsweringArguments())
    name, drop = backend_choice.metric_drop({"torch": fp32, "exported": int8}, task.metric_scale)
    assert name in ("f1", "exact_match") and drop == pytest.approx(100 / 761, abs=1e-3)
    assert drop < backend_choice.MAX_METRIC_DROP
