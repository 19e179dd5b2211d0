"""The JSON API in-process: predictions per problem type, every limit, bad bodies, overload, batching, shutdown."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from textune.cli import main
from textune.errors import TextuneError
from textune.tasks.classification.labels import MULTI, REGRESSION, SINGLE, LabelSpec
from textune.serving import BackgroundServer, MicroBatcher, ModelService, QueueFull, ServeConfig, build_app

from conftest import save_untrained_run, toy_frame, train_tiny_run

TWEET = "Forest fire near my house, we evacuate"


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    return train_tiny_run(tiny_model_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def service(tiny_run):
    return ModelService.from_run(tiny_run)


RUN_KINDS = {
    SINGLE: LabelSpec(SINGLE, ["calm", "disaster"]),
    MULTI: LabelSpec(MULTI, ["sports", "politics", "tech"]),
    REGRESSION: LabelSpec(REGRESSION, []),
}


@pytest.fixture(scope="module")
def services(tiny_model_dir, tmp_path_factory):
    """One service per problem type."""
    return {kind: ModelService.from_run(save_untrained_run(tiny_model_dir, tmp_path_factory.mktemp(kind), labels))
            for kind, labels in RUN_KINDS.items()}


@pytest.fixture
def client(service):
    with TestClient(build_app(service, ServeConfig(ui=False, max_texts_per_request=4, max_chars_per_text=50,
                                                    max_body_bytes=2_000))) as client:
        yield client


# -- good requests --------------------------------------------------------------------------------------------


def test_predict_returns_each_texts_label_and_scores_in_order_matching_the_predictor(client, service):
    texts = [TWEET, "lovely sunny garden party", "storm and flood in town"]
    response = client.post("/v1/predict", json={"texts": texts})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "run" and len(body["predictions"]) == 3
    expected = service.predictor.predict(texts)
    for record, (_, row) in zip(body["predictions"], expected.iterrows()):
        assert record["label"] == row["prediction"]
        assert set(record["scores"]) == {"0", "1"}
        assert record["scores"]["1"] == pytest.approx(row["prob_1"], abs=1e-5)
        assert sum(record["scores"].values()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("kind", [SINGLE, MULTI, REGRESSION])
def test_each_problem_type_answers_its_own_record_shape(services, kind):
    with TestClient(build_app(services[kind], ServeConfig(ui=False))) as client:
        predictions = client.post("/v1/predict", json={"texts": [TWEET, "coffee"]}).json()["predictions"]
        labels = client.get("/v1/labels").json()
    assert labels["problem_type"] == kind and labels["labels"] == RUN_KINDS[kind].labels
    for record in predictions:
        if kind == SINGLE:
            assert set(record) == {"label", "scores"} and record["label"] in ("calm", "disaster")
        elif kind == MULTI:
            assert set(record) == {"labels", "scores"} and labels["threshold"] == 0.5
            assert record["labels"] == [name for name, p in record["scores"].items() if p > 0.5]
        else:
            assert set(record) == {"value"} and isinstance(record["value"], float)


def test_labels_probes_and_openapi_docs(client):
    assert client.get("/v1/labels").json() == {"model": "run", "problem_type": SINGLE, "labels": ["0", "1"]}
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert "POST" in client.get("/docs").text
    schema = client.get("/openapi.json").json()
    assert "/v1/predict" in schema["paths"] and "at most 4 texts per request" in json.dumps(schema)


# -- limits and bad requests ----------------------------------------------------------------------------------


def test_too_many_texts_is_422_naming_the_limit_and_its_value(client):
    response = client.post("/v1/predict", json={"texts": ["a"] * 5})
    assert response.status_code == 422
    assert "5" in response.json()["detail"] and "limit is 4" in response.json()["detail"]
    assert "--max_texts_per_request" in response.json()["detail"]


def test_too_long_text_is_422_naming_which_text_and_the_limit(client):
    response = client.post("/v1/predict", json={"texts": ["ok", "x" * 51]})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "texts[1]" in detail and "51 characters" in detail and "limit is 50" in detail


def test_body_over_the_limit_is_413_whether_or_not_its_length_is_declared(client):
    big = json.dumps({"texts": ["y" * 3000]}).encode()
    declared = client.post("/v1/predict", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert "2000 bytes" in declared.json()["detail"] and "--max_body_bytes" in declared.json()["detail"]
    streamed = client.post("/v1/predict", content=iter([big[:1500], big[1500:]]),
                           headers={"content-type": "application/json"})
    assert streamed.status_code == 413


@pytest.mark.parametrize("body, status, words", [
    (b'{"texts": ["unterminated', 400, ["not valid JSON"]),
    (b'', 422, ["no JSON body"]),
    (b'{"texts": []}', 422, ["texts is empty"]),
    (b'{"texts": "one string"}', 422, ["texts", "valid list", "got str"]),
    (b'{"texts": ["fine", 3, null]}', 422, ["texts[1]", "valid string", "got int"]),
    (b'["a list"]', 422, ["body", "got list"]),
    (b'{"text": ["typo"]}', 422, ["texts: Field required", "text: Extra inputs"]),
])
def test_malformed_or_mistyped_bodies_get_a_message_saying_what_is_wrong(client, body, status, words):
    response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    for word in words:
        assert word in response.json()["detail"]


def test_overload_answers_429_with_retry_after_instead_of_queueing(service, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    predict = service.predict

    def held_predict(texts):
        if "hold" in texts:
            entered.set()
            release.wait(10)
        return predict(texts)

    monkeypatch.setattr(service, "predict", held_predict)
    config = ServeConfig(ui=False, max_queue=3, max_texts_per_request=3)
    with TestClient(build_app(service, config)) as client:
        held = {}
        worker = threading.Thread(
            target=lambda: held.update(r=client.post("/v1/predict", json={"texts": ["hold", "x"]})))
        worker.start()
        assert entered.wait(10)
        refused = client.post("/v1/predict", json={"texts": ["a", "b"]})
        release.set()
        worker.join(10)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "--max_queue" in refused.json()["detail"] and "3" in refused.json()["detail"]
    assert held["r"].status_code == 200 and len(held["r"].json()["predictions"]) == 2


def test_serve_config_errors_name_the_flag():
    with pytest.raises(TextuneError, match="--max_batch_size"):
        ServeConfig(max_batch_size=0)
    with pytest.raises(TextuneError, match="--max_queue"):
        ServeConfig(max_queue=8, max_texts_per_request=64)


# -- batching -------------------------------------------------------------------------------------------------


def run_concurrently(enabled: bool, n: int = 12):
    """n concurrent one-text requests through a batcher whose predict takes 20 ms; returns results and batches."""
    batches = []

    def predict(texts):
        batches.append(list(texts))
        time.sleep(0.02)
        return [text.upper() for text in texts]

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=8, max_wait_s=0.01, enabled=enabled)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit([f"t{i}"]) for i in range(n)))
        await batcher.stop()
        return results

    return asyncio.run(scenario()), batches


def test_concurrent_requests_share_forward_passes_and_each_gets_its_own_result():
    results, batches = run_concurrently(enabled=True)
    assert results == [[f"T{i}"] for i in range(12)]
    assert [len(batch) for batch in batches] == [8, 4]  # capped at max_batch_size


def test_an_idle_server_runs_a_lone_request_without_waiting_for_company():
    async def scenario():
        batcher = MicroBatcher(lambda texts: texts, max_wait_s=5.0)
        await batcher.start()
        start = time.monotonic()
        for _ in range(3):
            await batcher.submit(["alone"])
        elapsed = time.monotonic() - start
        await batcher.stop()
        return elapsed

    assert asyncio.run(scenario()) < 1.0


def test_the_server_socket_is_tcp_so_responses_are_not_held_back_by_nagle():
    import socket

    from textune.serving.server import bind_socket

    with bind_socket("127.0.0.1", 0) as sock:  # asyncio sets TCP_NODELAY only when proto is IPPROTO_TCP
        assert sock.proto == socket.IPPROTO_TCP and sock.getsockname()[1] > 0


def test_without_batching_each_request_runs_alone():
    results, batches = run_concurrently(enabled=False)
    assert results == [[f"T{i}"] for i in range(12)] and len(batches) == 12


def test_a_failing_batch_fails_its_requests_and_the_next_batch_still_runs():
    calls = []

    def predict(texts):
        calls.append(texts)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return texts

    async def scenario():
        batcher = MicroBatcher(predict, max_wait_s=0)
        await batcher.start()
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit(["a"])
        assert await batcher.submit(["b"]) == ["b"]
        await batcher.stop()

    asyncio.run(scenario())


def test_queue_limit_counts_texts_and_stop_drains_what_was_accepted():
    async def scenario():
        batcher = MicroBatcher(lambda texts: (time.sleep(0.05), texts)[1], max_queue=4, max_wait_s=0)
        await batcher.start()
        accepted = [asyncio.create_task(batcher.submit(["a", "b"])), asyncio.create_task(batcher.submit(["c", "d"]))]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull) as refused:
            await batcher.submit(["e"])
        await batcher.stop()  # graceful: both accepted requests still complete
        return refused.value, [task.result() for task in accepted]

    refused, results = asyncio.run(scenario())
    assert refused.limit == 4 and refused.retry_after >= 1
    assert results == [["a", "b"], ["c", "d"]]


# -- a real server: graceful shutdown, the demo, gradio_client --------------------------------------------------


def test_shutdown_finishes_in_flight_requests_then_refuses_new_connections(service, monkeypatch):
    started = threading.Event()
    predict = service.predict

    def slow_predict(texts):
        if "slow" in texts:
            started.set()
            time.sleep(0.5)
        return predict(texts)

    monkeypatch.setattr(service, "predict", slow_predict)
    server = BackgroundServer(build_app(service, ServeConfig(port=0, ui=False))).start()
    answer = {}
    request = threading.Thread(target=lambda: answer.update(
        r=httpx.post(server.url + "/v1/predict", json={"texts": ["slow"]}, timeout=30)))
    request.start()
    assert started.wait(10)
    server.stop(timeout=30)
    request.join(10)
    assert answer["r"].status_code == 200 and answer["r"].json()["predictions"][0]["label"] in ("0", "1")
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/healthz", timeout=2)


@pytest.mark.parametrize("kind", [SINGLE, MULTI, REGRESSION])
def test_demo_page_and_gradio_client_work_for_each_problem_type(services, kind):
    from gradio_client import Client

    with BackgroundServer(build_app(services[kind], ServeConfig(port=0, title=f"Demo {kind}"))) as server:
        page = httpx.get(server.url + "/", timeout=30)
        assert page.status_code == 200 and f"Demo {kind}" in page.text
        result = Client(server.url + "/", verbose=False).predict(TWEET, api_name="/predict")
        api = httpx.post(server.url + "/v1/predict", json={"texts": [TWEET]}).json()["predictions"][0]
    if kind == SINGLE:
        assert result["label"] == api["label"]
        assert {c["label"] for c in result["confidences"]} == {"calm", "disaster"}
    elif kind == MULTI:
        shown, scores = result
        assert shown == (", ".join(api["labels"]) or "(none)")
        assert {c["label"] for c in scores["confidences"]} == {"sports", "politics", "tech"}
    else:
        assert result == pytest.approx(api["value"], abs=1e-5)


def test_demo_header_shows_metrics_and_examples_come_from_the_validation_file(service, tiny_run):
    from textune.serving.ui import header_markdown

    validation = set(toy_frame(16, seed=2)["text"])
    examples = [text for [text] in service.info.examples]  # one value per demo input: the text box
    assert examples and set(examples) <= validation
    labels_shown = {int(toy_frame(16, seed=2).set_index("text").loc[text, "target"]) for text in examples}
    assert labels_shown == {0, 1}  # one example of each class, taken in turn
    header = header_markdown(service.info, "Tweets", service.task.card())
    assert header.startswith("# Tweets") and "accuracy **" in header and "(on 16 rows)" in header


def test_serve_command_parses_flags_into_the_config(tiny_run, monkeypatch, capsys):
    import textune.serving.server as server_module

    seen = {}
    monkeypatch.setattr(server_module, "serve", lambda run_dir, config: seen.update(run=run_dir, config=config) or 0)
    assert main(["serve", str(tiny_run), "--port", "0", "--no_batching", "--max_wait_ms", "2",
                 "--host", "127.0.0.1"]) == 0
    assert seen["run"] == str(tiny_run)
    assert seen["config"].batching is False and seen["config"].port == 0 and seen["config"].max_wait_ms == 2
    assert main(["serve", str(tiny_run), "--max_batch_size", "0"]) == 2
    assert "--max_batch_size" in capsys.readouterr().err
