"""Inference is task-agnostic: a task with two sequence outputs and several features per row predicts, exports and
checks parity through the same Predictor, backends and ONNX export as classification."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from textune.errors import TextuneError
from textune.inference.backends import TorchBackend
from textune.inference.prediction import Predictor
from textune.run_folder import write_run_file
from textune.tasks import TASKS

WINDOW = 3  # context words per feature: a longer context makes several features, as QA's windows do


class SpanTask:
    """A stand-in for extractive QA: each window of a row's context is a feature; the model gives start and end
    scores per token; a row's record is its best (window, start, end) over the real tokens of its windows."""

    name = "test-spans"
    output_names = ("start_logits", "end_logits")

    def to_dict(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_dict(cls, data: dict) -> "SpanTask":
        return cls()

    def encode(self, rows: pd.DataFrame, tokenizer, for_training: bool, where: str = "data"):
        questions, windows, owners = [], [], []
        for number, (question, context) in enumerate(zip(rows["question"], rows["context"])):
            words = context.split()
            for start in range(0, max(len(words), 1), WINDOW):
                questions.append(question)
                windows.append(" ".join(words[start:start + WINDOW]))
                owners.append(number)
        return dict(tokenizer(questions, windows, truncation=True, max_length=64)) | {"row": owners}

    def model_inputs(self, features) -> list[str]:
        return [name for name in features if name != "row"]

    def load_model(self, run_dir, allow_pickle: bool = False):
        from transformers import AutoModelForQuestionAnswering

        return AutoModelForQuestionAnswering.from_pretrained(run_dir)

    def decode(self, rows, features, outputs) -> pd.DataFrame:
        start, end = outputs
        best, windows = {}, {}
        # no rows: the engine passes features {} (a tokenizer cannot encode nothing)
        for i, (owner, ids) in enumerate(zip(features.get("row", []), features.get("input_ids", []))):
            n = len(ids)  # only the feature's own tokens: the rest is padding
            s, e = int(start[i, :n].argmax()), int(end[i, :n].argmax())
            score = float(start[i, s] + end[i, e])
            window = windows[owner] = windows.get(owner, -1) + 1  # the row's own window number
            if owner not in best or score > best[owner][0]:
                best[owner] = (score, f"{window}:{s}:{e}")
        return pd.DataFrame({"answer": [best[row][1] for row in range(len(rows))],
                             "score": [best[row][0] for row in range(len(rows))]})

    def check_rows(self, rows: pd.DataFrame, where: str, with_targets: bool) -> pd.DataFrame:
        return rows

    def agreement(self, expected: pd.DataFrame, got: pd.DataFrame) -> float:
        return float((expected["answer"].to_numpy() == got["answer"].to_numpy()).mean()) if len(expected) else 1.0

    def score(self, rows: pd.DataFrame, records: pd.DataFrame) -> dict[str, float]:
        if "reference" not in rows.columns:
            raise TextuneError("no references")
        return {"exact_match": float((rows["reference"].to_numpy() == records["answer"].to_numpy()).mean())}

    def api(self):
        class Api:  # the part of the JSON API Predictor.predict uses for a list of inputs
            @staticmethod
            def rows(inputs: list) -> pd.DataFrame:
                return pd.DataFrame({"question": [i["question"] for i in inputs],
                                     "context": [i["context"] for i in inputs]})

        return Api()

    def saved_rows(self, run_dir, limit):
        return None

    def example_rows(self, limit: int) -> pd.DataFrame:
        contexts = ["fire near the river spread fast tonight", "calm sunny day at the beach", "flood warning"]
        return pd.DataFrame({"question": ["what happened"] * limit,
                             "context": [contexts[i % len(contexts)] for i in range(limit)]})


def span_rows() -> pd.DataFrame:
    return pd.DataFrame({"question": ["what burns", "where", "when is the flood"],
                         "context": ["fire near the river spread fast tonight and more", "beach",
                                     "flood warning for the county until nine pm tonight"]})


class EchoBackend:
    """Start scores: each token id + 1 (so a padded position inside a batch reads 1); end scores: their negation."""

    name = "echo"

    def __call__(self, batch):
        ids = batch["input_ids"].astype(np.float32) + 1
        return ids, -ids


def test_outputs_come_back_in_feature_order_and_zero_padded_to_the_longest_feature(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    task = SpanTask()
    predictor = Predictor(None, tokenizer, task, batch_size=2, backend=EchoBackend())
    rows = span_rows()
    features = predictor.features(rows)
    assert len(features["row"]) > len(rows)  # several features for a row, as windows make
    lengths = [len(ids) for ids in features["input_ids"]]
    assert len(set(lengths)) > 2  # batches of different lengths, sorted out of feature order
    start, end = predictor.run(features)
    assert start.dtype == end.dtype == np.float32
    assert start.shape == end.shape == (len(lengths), max(lengths))
    for i, ids in enumerate(features["input_ids"]):
        np.testing.assert_array_equal(start[i, :len(ids)], np.asarray(ids) + 1)  # feature i's own values
        assert set(start[i, len(ids):]) <= {0.0, 1.0}  # then batch padding (1), then the engine's zeros
    assert (start == 0).any(axis=1).sum() > 0  # a shorter batch was padded by the engine, with 0
    np.testing.assert_array_equal(end, -start)  # each output regrouped the same way


def test_predict_and_evaluate_decode_and_score_per_row_whatever_the_features(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = span_rows()
    alone = Predictor(None, tokenizer, SpanTask(), batch_size=1, backend=EchoBackend()).predict(rows)
    batched = Predictor(None, tokenizer, SpanTask(), batch_size=4, backend=EchoBackend())
    records = batched.predict(rows)
    assert list(records.columns) == ["answer", "score"] and len(records) == len(rows)
    pd.testing.assert_frame_equal(records, alone)  # batching and sorting change no record
    # API inputs (no fast path in this task) become rows through its api(), with the same records
    pd.testing.assert_frame_equal(batched.predict(rows.to_dict("records")), records)
    pd.testing.assert_frame_equal(batched.predict(rows.iloc[1].to_dict()), records.iloc[[1]].reset_index(drop=True))
    references = rows.assign(reference=[records["answer"][0], "none", records["answer"][2]])
    assert batched.evaluate(references) == {"eval_exact_match": pytest.approx(2 / 3), "eval_samples": 3}
    empty = batched.predict(rows.head(0))
    assert len(empty) == 0


@pytest.fixture
def qa_model(tiny_model_dir):
    from transformers import AutoConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    return BertForQuestionAnswering(AutoConfig.from_pretrained(tiny_model_dir)).eval()


def test_torch_backends_return_the_named_outputs_in_the_tasks_order(tiny_model_dir, qa_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = {key: np.asarray(value, dtype=np.int64) for key, value in
             tokenizer(["what burns", "where"], ["fire near the river", "beach"], padding=True).items()}
    with torch.inference_mode():
        output = qa_model(**{key: torch.from_numpy(value) for key, value in batch.items()})
    got = TorchBackend(qa_model, ("end_logits", "start_logits"))(batch)
    assert isinstance(got, tuple) and len(got) == 2
    np.testing.assert_allclose(got[0], output.end_logits.numpy(), atol=1e-6)
    np.testing.assert_allclose(got[1], output.start_logits.numpy(), atol=1e-6)
    assert got[0].shape == batch["input_ids"].shape  # (batch, sequence)


def test_onnx_export_of_a_two_output_model_names_both_with_dynamic_axes_and_passes_parity(
        tiny_model_dir, qa_model, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import onnx

    from textune.inference.export import export_onnx

    monkeypatch.setitem(TASKS, SpanTask.name, SpanTask)
    run = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run)
    for name in ("model.safetensors", "config.json"):
        (run / name).unlink()
    qa_model.save_pretrained(run)
    write_run_file(run, {"task": SpanTask().to_dict()})

    result = export_onnx(run, parity_rows=12, batch_size=4)
    record = json.loads(result.parity_file.read_text())
    assert record["passed"] and record["agreement"] == 1.0 and record["max_abs_diff"] < 1e-4
    assert record["source"] == "example" and record["compared"] == "start_logits, end_logits"
    graph = onnx.load(str(result.model)).graph
    assert [node.name for node in graph.output] == ["start_logits", "end_logits"]
    for node in graph.output:  # both axes follow the batch: named, not fixed by the export's sample
        assert [dim.dim_param for dim in node.type.tensor_type.shape.dim] == ["batch", "sequence"]

    rows = span_rows()
    torch_predictor = Predictor.from_run(run, batch_size=2, backend="torch")
    onnx_predictor = Predictor.from_run(run, batch_size=2, backend="onnx")
    expected, got = torch_predictor.outputs(rows), onnx_predictor.outputs(rows)
    for a, b in zip(expected, got):
        assert a.shape == b.shape and a.shape[0] > len(rows)
        np.testing.assert_allclose(a, b, atol=1e-4)
    pd.testing.assert_frame_equal(torch_predictor.predict(rows)[["answer"]], onnx_predictor.predict(rows)[["answer"]])


def test_int8_export_keeps_a_tasks_output_layer_fp32_without_naming_it(tiny_model_dir, qa_model, tmp_path,
                                                                       monkeypatch):
    pytest.importorskip("onnxruntime")
    import onnx

    from textune.inference.export import export_onnx

    monkeypatch.setitem(TASKS, SpanTask.name, SpanTask)
    run = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run)
    qa_model.save_pretrained(run)
    write_run_file(run, {"task": SpanTask().to_dict()})
    result = export_onnx(run, quantize="int8", min_agreement=0.0, parity_rows=12)
    nodes = onnx.load(str(result.model)).graph.node
    quantized = [node.name for node in nodes if node.op_type == "MatMulInteger"]
    fp32 = [node.name for node in nodes if node.op_type == "MatMul"]
    assert quantized and all("/layer.1/" in name for name in quantized)  # the encoder's blocks after the first
    assert any("qa_outputs" in name for name in fp32)  # QA's span layer (a MatMul on 3-D input) stays fp32


def test_the_predictor_pads_on_the_right_whatever_side_the_tokenizer_pads(tiny_model_dir, tmp_path):
    # QA maps output positions to characters through each window's own tokens: left padding would shift them
    from conftest import save_untrained_qa_run

    run = save_untrained_qa_run(tiny_model_dir, tmp_path / "qa", max_seq_length=48, doc_stride=16)
    words = "the big fire near my house in town and we saw a storm today".split()
    rows = pd.DataFrame({"question": ["where is the fire"] * 6,
                         "context": [" ".join(words[:n]) for n in (3, 13, 5, 9, 4, 11)]})
    predictor = Predictor.from_run(run, batch_size=6, backend="torch")
    predictor.tokenizer.padding_side = "left"  # as some tokenizers ship (and run_qa.py's XLNet case)
    padded = predictor.records(rows)  # one batch of windows of six lengths
    predictor.batch_size = 1
    alone = predictor.records(rows)  # one window per batch: nothing padded
    for column in ("answer", "start", "end"):
        assert padded[column].tolist() == alone[column].tolist()
    assert padded["score"].to_numpy() == pytest.approx(alone["score"].to_numpy(), abs=1e-5)
