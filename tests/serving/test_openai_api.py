"""The OpenAI-compatible routes, driven by the official `openai` client against a real server of the text-generation
task (a run folder of the tiny Llama): chat and completions, streaming and not, their limits (422, 429) and a client
that disconnects mid-stream; plus the Gradio chat demo."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from textune.inference.generation import GenerationSettings
from textune.serving import BackgroundServer, ModelService, ServeConfig, build_app
from textune.tasks.text_generation.task import TextGenerationTask

from conftest import llama_run

openai = pytest.importorskip("openai", reason="the openai client is not installed: pip install openai")


@pytest.fixture(scope="module")
def chat_run(tiny_llama_dir, tmp_path_factory):
    return llama_run(tiny_llama_dir, tmp_path_factory.mktemp("runs") / "tiny-chat")  # served as "tiny-chat"


def chat_service(chat_run) -> ModelService:
    # PyTorch, so slow_model's patched forward reaches the generation: auto picks CTranslate2 where it is installed
    # (tests/inference/test_causal_engines.py serves through that engine)
    return ModelService.from_run(chat_run, backend="torch")


@pytest.fixture(scope="module")
def service(chat_run):
    return chat_service(chat_run)


@pytest.fixture(scope="module")
def server(service):
    config = ServeConfig(port=0, ui=False, max_new_tokens_limit=40, max_prompt_tokens=45, max_generations=2)
    with BackgroundServer(build_app(service, config)) as running:
        yield running


def client_of(server) -> "openai.OpenAI":
    # no retries: a 429 must reach the test, not be retried after Retry-After
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def direct(service, value, **settings) -> str:
    """What the task generates for `value` without the server (greedy)."""
    task = service.task.with_generation(GenerationSettings(do_sample=False, **settings))
    return "".join(task.stream(service.predictor.model, service.predictor.tokenizer, value))


def finish_reason(service, text: str, max_tokens: int) -> str:
    return "length" if service.count_tokens(text) >= max_tokens else "stop"


HELLO = [{"role": "system", "content": "answer in spanish"}, {"role": "user", "content": "Hello, how are you today?"}]


def test_models_lists_the_served_model(server):
    assert [model.id for model in client_of(server).models.list()] == ["tiny-chat"]


def test_a_chat_completion_answers_the_models_greedy_reply_with_its_token_usage(server, service):
    answer = client_of(server).chat.completions.create(model="tiny-chat", messages=HELLO, max_tokens=6,
                                                       temperature=0)
    [choice] = answer.choices
    assert answer.object == "chat.completion" and answer.model == "tiny-chat" and answer.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant"
    assert choice.message.content == direct(service, {"messages": HELLO}, max_new_tokens=6)
    tokenizer = service.predictor.tokenizer
    prompt = tokenizer.apply_chat_template(HELLO, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert answer.usage.prompt_tokens == len(prompt)
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    # counted by re-tokenizing the text, which for a random model's broken characters can be more than it made
    assert answer.usage.completion_tokens == min(service.count_tokens(choice.message.content), 6)
    assert choice.finish_reason == finish_reason(service, choice.message.content, 6)


def test_a_streamed_chat_sends_the_role_first_then_pieces_that_join_into_the_whole_reply(server, service):
    chunks = list(client_of(server).chat.completions.create(model="tiny-chat", messages=HELLO, max_tokens=6,
                                                            temperature=0, stream=True))
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices[0].delta.content]
    assert len(pieces) > 1
    assert "".join(pieces) == direct(service, {"messages": HELLO}, max_new_tokens=6)
    assert [chunk.choices[0].finish_reason for chunk in chunks][-1] == finish_reason(service, "".join(pieces), 6)
    assert all(chunk.choices[0].finish_reason is None for chunk in chunks[:-1])


def test_completions_answer_one_choice_per_prompt_streamed_or_not(server, service):
    client = client_of(server)
    answer = client.completions.create(model="tiny-chat", prompt=["the fire near my house", "coffee"], max_tokens=4,
                                       temperature=0)
    assert answer.object == "text_completion"
    assert [choice.index for choice in answer.choices] == [0, 1]
    assert [choice.text for choice in answer.choices] == [direct(service, prompt, max_new_tokens=4)
                                                          for prompt in ("the fire near my house", "coffee")]
    assert [choice.finish_reason for choice in answer.choices] == [finish_reason(service, choice.text, 4)
                                                                   for choice in answer.choices]
    assert answer.usage.completion_tokens == sum(min(service.count_tokens(choice.text), 4) for choice in answer.choices)
    chunks = list(client.completions.create(model="tiny-chat", prompt="coffee", max_tokens=4, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == answer.choices[1].text
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == min(service.count_tokens(answer.choices[1].text), 4)


def test_sampling_with_a_seed_repeats_and_a_stop_string_ends_the_text_before_it(server):
    client = client_of(server)

    def sample(**extra):
        return client.completions.create(model="tiny-chat", prompt="the fire near my house", max_tokens=30,
                                         temperature=1.5, top_p=0.95, seed=7, **extra).choices[0]

    first, again = sample(), sample()
    assert first.text == again.text and len(set(first.text.split())) > 2  # sampled: not one word repeated
    words = first.text.split()
    stop = words[len(words) // 2]
    cut = sample(stop=[stop, "never-generated"])
    assert cut.text == first.text[:first.text.index(stop)] and cut.finish_reason == "stop"
    streamed = client.completions.create(model="tiny-chat", prompt="the fire near my house", max_tokens=30,
                                         temperature=1.5, top_p=0.95, seed=7, stop=stop, stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed) == cut.text


def test_the_tasks_own_predict_route_takes_generation_parameters_within_the_servers_limits(server, service):
    def predict(**body):
        return httpx.post(server.url + "/v1/predict", json={"inputs": ["coffee", {"messages": HELLO}]} | body,
                          timeout=60)

    answer = predict(parameters={"max_new_tokens": 3})
    assert answer.status_code == 200, answer.text
    texts = [record["generated_text"] for record in answer.json()["predictions"]]
    assert texts == [direct(service, "coffee", max_new_tokens=3).strip(),
                     direct(service, {"messages": HELLO}, max_new_tokens=3).strip()]
    assert [record["generated_text"] for record in predict().json()["predictions"]] == [
        direct(service, "coffee").strip(), direct(service, {"messages": HELLO}).strip()]  # the run's 8 tokens
    over = predict(parameters={"max_new_tokens": 41})
    assert over.status_code == 422 and "at most 40" in over.text
    assert predict(parameters={"temperature": "hot"}).status_code == 422


@pytest.mark.parametrize("request_args, param, words", [
    ({"max_tokens": 41}, "max_tokens", "at most 40 (--max_new_tokens_limit)"),
    ({"n": 2}, "n", "one choice per prompt"),
    ({"messages": [{"role": "user", "content": "fire " * 40}]}, "messages", "at most 45 (--max_prompt_tokens)"),
    ({"messages": []}, "messages", "at least 1"),
    ({"temperature": 3}, "temperature", "less than or equal to 2"),
])
def test_a_request_over_a_limit_or_malformed_gets_422_in_openais_error_shape(server, request_args, param, words):
    arguments = {"model": "tiny-chat", "messages": HELLO} | request_args
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client_of(server).chat.completions.create(**arguments)
    error = caught.value.body
    assert caught.value.status_code == 422 and words in error["message"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_bad_json_and_a_wrong_method_answer_openais_error_shape_too(server):
    bad = httpx.post(server.url + "/v1/chat/completions", content=b"{not json", timeout=10,
                     headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    wrong = httpx.get(server.url + "/v1/completions", timeout=10)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST" and "error" in wrong.json()
    large = httpx.post(server.url + "/v1/completions", content=b"x" * 1_048_577, timeout=10,
                       headers={"Content-Type": "application/json"})
    assert large.status_code == 413 and "--max_body_bytes" in large.json()["error"]["message"]


class slow_model:
    """Each forward pass of the model takes `seconds` more, so a generation lasts long enough to be watched."""

    def __init__(self, model, seconds: float):
        self.model, self.seconds, self.passes = model, seconds, 0

    def __enter__(self):
        def wait(*args):
            self.passes += 1
            time.sleep(self.seconds)

        self.hook = self.model.register_forward_pre_hook(wait)
        return self

    def __exit__(self, *exc):
        self.hook.remove()


def open_stream(url: str, stack, **body) -> httpx.Response:
    """A streamed chat answer whose first event has arrived (the generation is running)."""
    client = stack.enter_context(httpx.Client(timeout=30))
    response = stack.enter_context(client.stream("POST", url + "/v1/chat/completions", json={
        "model": "tiny-chat", "messages": HELLO, "stream": True, "temperature": 0} | body))
    assert response.status_code == 200
    next(response.iter_lines())
    return response


def test_generations_beyond_max_generations_get_429_while_healthz_still_answers(chat_run):
    import contextlib

    config = ServeConfig(port=0, ui=False, max_new_tokens_limit=40, max_generations=1)
    service = chat_service(chat_run)
    with BackgroundServer(build_app(service, config)) as running, \
            slow_model(service.predictor.model, 0.2), contextlib.ExitStack() as stack:  # 40 passes: 8 s
        open_stream(running.url, stack, max_tokens=40)
        started = time.monotonic()
        assert httpx.get(running.url + "/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 1  # the generation runs off the event loop
        with pytest.raises(openai.RateLimitError) as caught:
            client_of(running).chat.completions.create(model="tiny-chat", messages=HELLO)
        assert caught.value.response.headers["Retry-After"] == "1"
        assert "--max_generations 1" in caught.value.body["message"]


def test_a_client_that_disconnects_mid_stream_stops_the_generation_and_frees_its_slot(chat_run):
    import contextlib

    config = ServeConfig(port=0, ui=False, max_new_tokens_limit=40)
    service = chat_service(chat_run)
    app = build_app(service, config)
    with BackgroundServer(app) as running, slow_model(service.predictor.model, 0.05) as slow:
        with contextlib.ExitStack() as stack:
            open_stream(running.url, stack, max_tokens=40)  # 40 passes of 50 ms if it ran to the end
        left = time.monotonic()
        while app.state.generation_slots.running and time.monotonic() - left < 10:
            time.sleep(0.02)
        assert app.state.generation_slots.running == 0
        assert time.monotonic() - left < 1.5
        passes = slow.passes
        time.sleep(0.3)
        assert slow.passes == passes < 20  # stopped early, and nothing runs on
        assert not [thread for thread in threading.enumerate() if thread.name == "textune-generate"]


def test_completions_serve_a_generating_task_without_chat_and_chat_is_absent(chat_run, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.setattr(TextGenerationTask, "chat", False)  # a generating task whose inputs are prompts alone
    with TestClient(build_app(chat_service(chat_run), ServeConfig(ui=False))) as client:
        assert client.post("/v1/completions", json={"prompt": "coffee", "max_tokens": 2}).status_code == 200
        assert client.get("/v1/chat/completions").status_code == 404  # not 405: POST would not work either
        paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/completions" in paths and "/v1/chat/completions" not in paths


def test_serve_takes_a_causal_lm_that_is_not_a_run_with_the_text_generation_tasks_defaults(
        tiny_llama_dir, chat_run, tmp_path, monkeypatch, capsys):
    from textune.run_folder import is_run_folder
    from textune.serving import server as server_module

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert all(map(is_run_folder, [chat_run, tmp_path / "missing", tmp_path, "missing/", "runs/typo"]))
    assert not any(map(is_run_folder, [tiny_llama_dir, "smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct"]))
    monkeypatch.setattr(server_module._Server, "run", lambda self, sockets=None: None)  # return once ready
    assert server_module.serve(tiny_llama_dir, ServeConfig(port=0, ui=False)) == 0
    assert "OpenAI-compatible API: base URL" in capsys.readouterr().out
    service = ModelService.from_model(str(tiny_llama_dir))
    assert service.info.name == service.info.base_model == tiny_llama_dir.name  # no path of this machine shown
    monkeypatch.undo()
    with BackgroundServer(build_app(service, ServeConfig(port=0, ui=False))) as running:
        client = client_of(running)
        assert [model.id for model in client.models.list()] == [tiny_llama_dir.name]
        answer = client.chat.completions.create(model=tiny_llama_dir.name, messages=HELLO, max_tokens=4,
                                                temperature=0)
    assert answer.choices[0].message.content == direct(service, {"messages": HELLO}, max_new_tokens=4)


def test_a_task_that_does_not_generate_gets_no_openai_routes():
    from conftest import fake_client

    with fake_client() as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert client.post("/v1/completions", json={"prompt": "hi"}).status_code in (404, 405)
    assert not {"/v1/models", "/v1/completions", "/v1/chat/completions"} & set(paths)


def test_the_chat_demo_streams_a_reply_with_the_system_prompt_and_settings(chat_run):
    from gradio_client import Client

    service = chat_service(chat_run)
    with BackgroundServer(build_app(service, ServeConfig(port=0, title="Tiny chat"))) as running:
        page = httpx.get(running.url + "/", timeout=30).text
        assert "Tiny chat" in page and "text generation model" in page
        components = httpx.get(running.url + "/config", timeout=30).json()["components"]
        labels = [component["props"].get("label") for component in components]
        assert labels.count("Sampling settings") == 1 and "System prompt" in labels
        assert {"Max new tokens", "Temperature (0: greedy)", "Top p (when sampling)"} <= set(labels)
        [accordion] = [component for component in components if component["props"].get("label") == "Sampling settings"]
        assert accordion["props"]["open"] is False
        updates = list(Client(running.url, verbose=False).submit("Hello, how are you today?", "answer in spanish", 6, 0,
                                                                 1, api_name="/predict"))
    assert len(updates) > 1
    assert updates[-1] == direct(service, {"messages": HELLO}, max_new_tokens=6)


def test_a_model_failure_mid_stream_ends_with_one_error_event_and_frees_the_slot(chat_run, monkeypatch, caplog):
    def breaking_stream(self, model, tokenizer, value):
        yield "fire"
        raise RuntimeError("/secret/path/weights broke")

    app = build_app(chat_service(chat_run), ServeConfig(port=0, ui=False))
    monkeypatch.setattr(TextGenerationTask, "stream", breaking_stream)
    with BackgroundServer(app) as running:
        lines = [line for line in httpx.post(running.url + "/v1/chat/completions", timeout=30, json={
            "model": "tiny-chat", "messages": HELLO, "stream": True}).iter_lines() if line]
        whole = httpx.post(running.url + "/v1/chat/completions", json={"messages": HELLO}, timeout=30)
    assert lines[-1] == "data: [DONE]"
    assert '"error"' in lines[-2] and "RuntimeError" in lines[-2] and "secret" not in lines[-2]
    assert '"fire"' in lines[-3]
    assert whole.status_code == 500 and "RuntimeError" in whole.json()["error"]["message"]
    assert "weights broke" in caplog.text  # the details stay in the server's log
    assert "secret" not in whole.text
    assert app.state.generation_slots.running == 0


def test_the_chat_demo_sends_the_system_prompt_then_the_history_then_the_new_message():
    from textune.serving.chat_demo import chat_messages

    history = [{"role": "user", "content": "fire"},
               {"role": "assistant", "content": [{"type": "text", "text": "fuego"}]}]  # Gradio's content parts
    assert chat_messages("flood", history, " answer in spanish ") == [
        {"role": "system", "content": "answer in spanish"}, {"role": "user", "content": "fire"},
        {"role": "assistant", "content": "fuego"}, {"role": "user", "content": "flood"}]
    assert chat_messages("flood", [], "  ") == [{"role": "user", "content": "flood"}]


@pytest.mark.parametrize("flag", ["max_prompt_tokens", "max_new_tokens_limit", "max_generations"])
def test_a_generation_limit_below_one_is_refused_naming_its_flag(flag):
    from textune.errors import TextuneError

    with pytest.raises(TextuneError, match=f"--{flag} 0: must be at least 1"):
        ServeConfig(**{flag: 0})


def test_a_stream_whose_client_is_gone_before_it_starts_still_frees_its_slot():
    import anyio

    from textune.serving.generation_slots import GenerationSlots
    from textune.serving.openai_api import SlotResponse

    slots = GenerationSlots(1)
    slots.take()
    started = []

    async def events():
        started.append(True)
        yield "data: [DONE]\n\n"

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        raise OSError("the client is gone")

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "method": "POST", "headers": []}
    with pytest.raises(Exception):
        anyio.run(SlotResponse(events(), slots), scope, receive, send)
    assert not started and slots.running == 0
