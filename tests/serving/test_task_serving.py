"""Serving speaks only the task protocol: a stub task with its own request, records and demo is served as it says."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, StrictStr

from textune.serving import BackgroundServer, ModelInfo, ModelService, ServeConfig, build_app


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: StrictStr
    context: StrictStr


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"inputs": [{"question": "Where?", "context": "Fire in Paris"}]}]})
    inputs: list[Question]


class Answer(BaseModel):
    answer: str
    score: float


class Expects(BaseModel):
    expects: list[str]
    answers: str


class StubApi:
    request, record, description = AskRequest, Answer, Expects

    def inputs(self, body):
        return [item.model_dump() for item in body.inputs]

    def rows(self, inputs):
        return pd.DataFrame(inputs, columns=["question", "context"])

    def to_records(self, records):
        return [{"answer": str(answer), "score": float(score)} for answer, score in zip(records["answer"],
                                                                                          records["score"])]


class StubDemo:
    def inputs(self):
        import gradio as gr

        return [gr.Textbox(label="Context", elem_id="context"), gr.Textbox(label="Question", elem_id="question")]

    def outputs(self):
        import gradio as gr

        return [gr.Textbox(label="Answer", elem_id="answer"), gr.Number(label="Score", elem_id="score")]

    def to_input(self, context, question):
        return {"question": question or "", "context": context or ""}

    def show(self, record, given=None):
        return record["answer"], record["score"]

    def examples(self, rows, limit):
        return [[row.context, row.question] for row in rows.head(limit).itertuples()]


class LastWordTask:
    """Answers the context's last word, scored by the question's length: no model, no classification code."""

    name = "last-word"
    headline_metrics = ("exact_match",)

    def api(self):
        return StubApi()

    def demo(self):
        return StubDemo()

    def describe(self):
        return {"expects": ["question", "context"], "answers": "the last word of the context"}

    def card(self):
        return {"kind": "last-word finder", "pipeline_tag": "question-answering", "tags": ["question-answering"],
                "outputs": "an answer and its score", "example": {"question": "Where?", "context": "Fire in Paris"}}


class StubPredictor:
    task = LastWordTask()

    def __init__(self):
        self.seen: list[pd.DataFrame] = []

    def predict(self, inputs: list) -> pd.DataFrame:
        """As `Predictor.predict` takes the server's inputs: a task without `encode_inputs` builds its rows."""
        rows = self.task.api().rows(inputs)
        self.seen.append(rows)
        return pd.DataFrame({"answer": [context.split()[-1] for context in rows["context"]],
                             "score": [len(question) / 10 for question in rows["question"]]})


@pytest.fixture
def service():
    info = ModelInfo("stub", metrics={"exact_match": 0.5, "loss": 1.0}, examples=[["Smoke over Lyon", "Where?"]],
                     headline_names=LastWordTask.headline_metrics)
    return ModelService(StubPredictor(), info)


def test_a_stub_tasks_request_schema_and_records_are_served_without_classification_code(service):
    with TestClient(build_app(service, ServeConfig(ui=False))) as client:
        body = {"inputs": [{"question": "Where is it?", "context": "Fire in Paris"},
                           {"question": "Who?", "context": "The firemen came"}]}
        answer = client.post("/v1/predict", json=body)
        assert answer.status_code == 200
        assert answer.json() == {"model": "stub", "predictions": [{"answer": "Paris", "score": 1.2},
                                                                   {"answer": "came", "score": 0.4}]}
        assert list(service.predictor.seen[-1]["question"]) == ["Where is it?", "Who?"]
        # the classification request is not this task's: 422 with the task's own example
        wrong = client.post("/v1/predict", json={"texts": ["fire"]})
        assert wrong.status_code == 422 and '"inputs"' in wrong.json()["detail"]
        empty = client.post("/v1/predict", json={"inputs": [{"question": " ", "context": "Fire"}]})
        assert empty.status_code == 422 and "inputs[0].question is empty" in empty.json()["detail"]
        assert "inputs is empty" in client.post("/v1/predict", json={"inputs": []}).json()["detail"]
        assert client.get("/v1/labels").json() == {"model": "stub", "expects": ["question", "context"],
                                                   "answers": "the last word of the context"}
        schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schema["AskRequest"]["properties"]) == {"inputs"}
    assert set(schema["Answer"]["properties"]) == {"answer", "score"}
    assert {"model", "expects", "answers"} <= set(schema["LabelsResponse"]["properties"])


def test_a_stub_tasks_demo_lays_out_its_inputs_outputs_and_examples(service):
    from gradio_client import Client

    with BackgroundServer(build_app(service, ServeConfig(port=0, title="Stub demo"))) as server:
        page = httpx.get(server.url + "/", timeout=30).text
        assert "Stub demo" in page and "last-word finder" in page and "exact_match" in page
        assert "Smoke over Lyon" in page  # the example
        shown = Client(server.url + "/", verbose=False).predict("Fire in Rome", "Where?", api_name="/predict")
    assert shown == ("Rome", pytest.approx(0.6))


def test_the_server_encodes_texts_without_building_rows_or_a_dataset_and_logs_no_warning_per_request(
        tiny_model_dir, tmp_path, monkeypatch, caplog):
    import logging

    import datasets

    from textune.tasks.classification.labels import LabelSpec

    from conftest import save_untrained_run

    run = save_untrained_run(tiny_model_dir, tmp_path / "run", LabelSpec("single_label_classification", ["0", "1"]))
    service = ModelService.from_run(run, backend="torch")
    long = "fire near the town " * 40  # past the run's max_seq_length of 64 tokens
    expected = service.api.to_records(service.predictor.predict(pd.DataFrame({"text": [long, "calm day"]})))

    def fail(*args, **kwargs):
        raise AssertionError("a request built a table or a datasets.Dataset")

    # classification's encode_inputs tokenizes the texts as they come: no rows, no Dataset round trip
    monkeypatch.setattr(type(service.api), "rows", fail)
    monkeypatch.setattr(datasets.Dataset, "from_dict", fail)
    caplog.clear()  # the table path above says it once, as `textune predict` says it for a file
    with caplog.at_level(logging.WARNING, logger="textune"):
        answers = [service.predict([long, "calm day"]) for _ in range(3)]
    for answer in answers:  # the same records as the table path gives
        assert [record["label"] for record in answer] == [record["label"] for record in expected]
        assert [record["scores"] for record in answer] == [pytest.approx(record["scores"]) for record in expected]
    assert "max_seq_length" not in caplog.text
