"""/v1/predict on a text-generation server checks a request as the OpenAI routes do: the same prompt and text
limits (chat messages included), the run's max_new_tokens capped at the server's limit, and a setting the model
cannot generate with refused as a 422, never a 500."""

from __future__ import annotations

import copy

import httpx
import pytest

from textune.serving import BackgroundServer, ModelService, ServeConfig, build_app

from conftest import llama_run


def serving(service: ModelService, **limits):
    return BackgroundServer(build_app(service, ServeConfig(port=0, ui=False, **limits)))


def predict(server, inputs: list, **body) -> httpx.Response:
    return httpx.post(server.url + "/v1/predict", json={"inputs": inputs} | body, timeout=60)


@pytest.fixture(scope="module")
def run(tiny_llama_dir, tmp_path_factory):
    return llama_run(tiny_llama_dir, tmp_path_factory.mktemp("runs") / "tiny-chat", max_new_tokens=12)


def test_beams_asked_of_a_model_on_a_causal_engine_get_a_422_naming_num_beams(run):
    service = ModelService.from_run(run)
    with serving(service) as server:
        task = copy.copy(service.predictor.task)
        task.engine = object()  # any engine (after the warm-up, which would run it): they decode one hypothesis
        service.predictor.task = task
        answer = predict(server, ["coffee"], parameters={"num_beams": 2})
    assert answer.status_code == 422, answer.text
    assert "num_beams 2" in answer.json()["detail"]


def test_a_request_without_max_new_tokens_gets_the_runs_setting_capped_at_the_servers_limit(run):
    service = ModelService.from_run(run)  # the run generates 12 new tokens
    with serving(service, max_new_tokens_limit=3) as server:
        capped = predict(server, ["coffee"])
        asked = predict(server, ["coffee"], parameters={"max_new_tokens": 3})
    assert capped.status_code == 200, capped.text
    assert capped.json()["predictions"] == asked.json()["predictions"]


@pytest.mark.parametrize("words, limits, param", [
    ("fire " * 40, {"max_prompt_tokens": 45}, "--max_prompt_tokens"),
    ("fire " * 10, {"max_chars_per_text": 20}, "--max_chars_per_text"),
])
def test_a_chats_messages_get_the_same_limits_on_predict_as_on_the_openai_routes(run, words, limits, param):
    service = ModelService.from_run(run)
    chat = [{"role": "user", "content": words}]
    with serving(service, **limits) as server:
        answer = predict(server, [{"messages": chat}])
        openai_answer = httpx.post(server.url + "/v1/chat/completions", json={"model": "m", "messages": chat},
                                   timeout=60)
    assert answer.status_code == 422 and param in answer.json()["detail"], answer.text
    assert openai_answer.status_code == 422 and param in openai_answer.json()["error"]["message"], openai_answer.text


def test_a_chats_prompt_tokens_include_the_runs_system_prompt(tiny_llama_dir, tmp_path):
    plain = ModelService.from_run(llama_run(tiny_llama_dir, tmp_path / "plain"))
    system = ModelService.from_run(llama_run(tiny_llama_dir, tmp_path / "system",
                                             system_prompt="answer in spanish, briefly and kindly"))
    chat = {"messages": [{"role": "user", "content": "Hello"}]}
    with_system = system.prompt_tokens(chat)
    assert with_system == len(system.task.context_ids(chat, system.predictor.tokenizer))
    assert with_system > plain.prompt_tokens(chat)
