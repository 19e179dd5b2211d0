"""Serving a task that generates text: the API's `parameters` and the server's limits on them, batches kept apart by
settings, the demo streaming its output with the settings in an accordion; tiny random T5 and BART."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from textune.serving import BackgroundServer, MicroBatcher, ModelService, ServeConfig, build_app

from conftest import seq2seq_rows, seq2seq_run

TEXT = "the fire near my house"
TEXTS = [TEXT, "a storm in town today and so big", "flood", "we saw the big earthquake today"]


@pytest.fixture(scope="module")
def t5_run(tiny_t5_dir, tmp_path_factory) -> Path:
    return seq2seq_run(tiny_t5_dir, tmp_path_factory.mktemp("t5") / "run")


def reference(model_dir: Path, text: str, **options) -> str:
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        ids = model.generate(**tokenizer("summarize: " + text, return_tensors="pt"), **options)
    return tokenizer.decode(ids[0], skip_special_tokens=True).strip()


@pytest.fixture(params=["t5", "bart"])
def client_and_model(request, tiny_t5_dir, tiny_bart_dir, tmp_path):
    model_dir = tiny_t5_dir if request.param == "t5" else tiny_bart_dir
    service = ModelService.from_run(seq2seq_run(model_dir, tmp_path / "run"))
    with TestClient(build_app(service, ServeConfig(ui=False, max_new_tokens_limit=12, num_beams_limit=3))) as client:
        yield client, model_dir


def generated(answer) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [record["generated_text"] for record in answer.json()["predictions"]]


def test_the_api_generates_with_the_runs_settings_and_the_requests_parameters_over_them(client_and_model):
    client, model_dir = client_and_model
    assert generated(client.post("/v1/predict", json={"inputs": [TEXT]})) == [reference(model_dir, TEXT,
                                                                                         max_new_tokens=3)]
    body = {"inputs": [TEXT], "parameters": {"max_new_tokens": 8, "num_beams": 2, "do_sample": False}}
    assert generated(client.post("/v1/predict", json=body)) == [reference(model_dir, TEXT, max_new_tokens=8,
                                                                          num_beams=2)]


def test_max_new_tokens_in_a_request_changes_the_output_length(t5_run):
    with TestClient(build_app(ModelService.from_run(t5_run), ServeConfig(ui=False))) as client:
        short = generated(client.post("/v1/predict", json={"inputs": TEXTS, "parameters": {"max_new_tokens": 1}}))
        longer = generated(client.post("/v1/predict", json={"inputs": TEXTS, "parameters": {"max_new_tokens": 9}}))
    assert sum(len(text.split()) for text in longer) > sum(len(text.split()) for text in short) > 0


@pytest.mark.parametrize("parameters, named", [
    ({"max_new_tokens": 13}, "--max_new_tokens_limit"),
    ({"num_beams": 4}, "--num_beams_limit"),
    ({"temperature": 0, "do_sample": True}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"beams": 2}, "beams"),  # an unknown key
    ({"do_sample": "yes"}, "do_sample"),
])
def test_a_parameter_beyond_the_servers_limits_or_out_of_range_gets_a_json_422_naming_it(client_and_model, parameters,
                                                                                        named):
    client, _ = client_and_model
    answer = client.post("/v1/predict", json={"inputs": [TEXT], "parameters": parameters})
    assert answer.status_code == 422 and named in answer.json()["detail"], answer.text
    if named.startswith("--"):
        assert "parameters." in answer.json()["detail"]


def test_the_limits_are_flags_of_serve_and_stated_in_the_docs(t5_run):
    import argparse

    from textune.dataclass_flags import add_dataclass_flags, dataclass_from_flags
    from textune.errors import TextuneError

    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, ServeConfig)
    config = dataclass_from_flags(ServeConfig, parser.parse_args(["--no_ui", "--max_new_tokens_limit", "32",
                                                                  "--num_beams_limit", "2"]))
    assert config.generation_limits.max_new_tokens == 32 and config.generation_limits.num_beams == 2
    with pytest.raises(TextuneError, match="--num_beams_limit"):
        ServeConfig(num_beams_limit=0)
    app = build_app(ModelService.from_run(t5_run), config)
    post = app.openapi()["paths"]["/v1/predict"]["post"]
    assert "at most 32 (--max_new_tokens_limit)" in post["description"]


def test_requests_with_other_parameters_are_never_batched_together():
    calls: list[tuple[list, object]] = []

    def predict(inputs, key=None):
        calls.append((list(inputs), key))
        return [f"{value}/{key}" for value in inputs]

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=16, max_wait_s=0.05)
        await batcher.start()
        await batcher.submit(["warm"])
        await batcher.submit(["warm"])  # two batches of one: the next batch waits to fill
        results = await asyncio.gather(batcher.submit(["a"], "k1"), batcher.submit(["b"], "k2"),
                                       batcher.submit(["c"], "k1"), batcher.submit(["d"]))
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert results == [["a/k1"], ["b/k2"], ["c/k1"], ["d/None"]]
    batched = {tuple(inputs): key for inputs, key in calls[2:]}
    assert batched == {("a", "c"): "k1", ("b",): "k2", ("d",): None}


def test_the_demo_streams_the_output_token_by_token_with_settings_in_an_accordion(t5_run):
    from gradio_client import Client

    service = ModelService.from_run(t5_run)
    with BackgroundServer(build_app(service, ServeConfig(port=0, max_new_tokens_limit=20))) as server:
        page = httpx.get(server.url + "/", timeout=30).text
        assert "Generation settings" in page and "Max new tokens" in page
        client = Client(server.url + "/", verbose=False)
        text = "flood"  # one the random T5 answers with several tokens
        job = client.submit(text, 8, 1, False, 1.0, 1.0, api_name="/predict")
        final = job.result()
        updates = job.outputs()
        assert len(updates) > 1 and updates[-1] == final
        assert all(final.startswith(update) for update in updates)
        assert final.strip() == reference(t5_run, text, max_new_tokens=8)
        # defaults: the run's settings (3 new tokens); over the server's limit: refused by the slider
        assert client.predict(text, api_name="/predict").strip() == reference(t5_run, text, max_new_tokens=3)
        with pytest.raises(Exception):
            client.predict(text, 21, 1, False, 1.0, 1.0, api_name="/predict")


def test_the_demos_streams_share_the_servers_max_generations_slots_with_the_openai_routes(t5_run):
    from gradio_client import Client

    app = build_app(ModelService.from_run(t5_run), ServeConfig(port=0, max_generations=1))
    with BackgroundServer(app) as server:
        client = Client(server.url + "/", verbose=False)
        slots = app.state.generation_slots
        slots.take()  # one generation running (e.g. a /v1/completions stream): the only slot is taken
        with pytest.raises(Exception, match="--max_generations 1"):
            client.predict("flood", api_name="/predict")
        slots.give_back()
        assert client.predict("flood", api_name="/predict").strip() == reference(t5_run, "flood", max_new_tokens=3)
        assert slots.running == 0  # the demo's stream gave its slot back


def test_the_generation_parameters_pass_the_fuzzer(tiny_t5_dir, tmp_path):
    """The generating task's schema (parameters included) fuzzed as tests/serving/test_serving_fuzz.py fuzzes
    classification's: no 5xx, every answer declared."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.config import SchemathesisConfig

    from textune.serving.service import ModelInfo
    from textune.tasks.text_to_text import SummarizationArguments, SummarizationTask

    class FakeGeneratingService:
        def __init__(self):
            self.task = SummarizationTask.from_arguments(SummarizationArguments(text_column="text",
                                                                                summary_column="summary"),
                                                         seq2seq_rows(4), "x")
            self.api = self.task.api()
            self.info = ModelInfo(name="toy")

        def predict(self, inputs, generation=None):
            if generation is not None:
                self.task.with_generation(generation)  # as the real service does: settings it takes
            return [{"generated_text": "fuego"} for _ in inputs]

        def prompt_tokens(self, value):
            return len(value.split())

    app = build_app(FakeGeneratingService(), ServeConfig(ui=False, max_texts_per_request=4, max_chars_per_text=50,
                                                         max_body_bytes=2_000))
    checks = {"negative_data_rejection": {"expected-statuses": [400, 413, 422]},
              "positive_data_acceptance": {"enabled": False}}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app,
                                            config=SchemathesisConfig.from_dict({"checks": checks}))
    operation = schema["/v1/predict"]["POST"]

    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def fuzz(case):
        case.call_and_validate()

    fuzz()


def test_an_empty_generated_output_shows_as_empty_text_in_the_demo(tiny_bart_dir, tmp_path):
    from gradio_client import Client

    service = ModelService.from_run(seq2seq_run(tiny_bart_dir, tmp_path / "run"))  # the random BART ends at once
    assert service.predict([TEXT]) == [{"generated_text": ""}]
    with BackgroundServer(build_app(service, ServeConfig(port=0))) as server:
        assert Client(server.url + "/", verbose=False).predict(TEXT, api_name="/predict") == ""
