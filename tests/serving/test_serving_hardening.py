"""The server under misuse and failure: body limits on every route, failures kept to their request, timeouts,
offline docs, one rule for empty texts, a busy port, wrong methods, and `--share` plumbing.

Most tests use `FakeService` (no model, instant), so a failure or a hang can be injected per text.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time

import pytest

from textune.cli import main
from textune.serving import BackgroundServer, MicroBatcher, ServeConfig, build_app

from conftest import FakeService, fake_client, train_tiny_run


# -- 7. one body limit for the whole app ----------------------------------------------------------------------


def test_body_limit_covers_the_demo_routes_uploads_included_declared_or_streamed():
    big = b"x" * 5_000
    multipart = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n\r\n" + big
                 + b"\r\n--b--\r\n")
    headers = {"content-type": "multipart/form-data; boundary=b"}
    with fake_client(ui=True, max_body_bytes=2_000) as client:
        declared = client.post("/gradio_api/upload", content=multipart, headers=headers)
        streamed = client.post("/gradio_api/upload", content=iter([multipart[:1_500], multipart[1_500:]]),
                               headers=headers)
        small = client.post("/gradio_api/upload", content=multipart.replace(big, b"small"), headers=headers)
        gradio_app = next(route.app for route in client.app.routes if getattr(route, "path", None) == "")
    for refused in (declared, streamed):
        assert refused.status_code == 413 and "--max_body_bytes" in refused.json()["detail"]
    assert small.status_code == 200  # the limit refuses size, not uploads
    assert gradio_app.get_blocks().max_file_size == 2_000


# -- 8. a failure stays with the request that caused it; every error is JSON -----------------------------------


def test_a_text_that_breaks_the_model_fails_only_its_own_request_in_a_shared_batch():
    def on_text(text):
        if text == "poison":
            raise ValueError("cannot tokenize poison")
        if text == "slow":
            time.sleep(0.1)  # while it runs, the next three requests queue up and form one batch

    service = FakeService(on_text)

    async def scenario():
        batcher = MicroBatcher(service.predict, max_batch_size=8, max_wait_s=0.05)
        await batcher.start()
        first = asyncio.create_task(batcher.submit(["slow"]))
        await asyncio.sleep(0.02)
        others = [asyncio.create_task(batcher.submit([text])) for text in ("fire a", "poison", "calm b")]
        results = await asyncio.gather(first, *others, return_exceptions=True)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert ["fire a", "poison", "calm b"] in service.calls  # they did share a forward pass
    assert results[1][0]["label"] == "disaster" and results[3][0]["label"] == "calm"
    assert isinstance(results[2], ValueError)


def test_a_model_error_is_a_json_500_and_an_unexpected_one_too():
    def on_text(text):
        if text == "poison":
            raise ValueError("cannot tokenize poison")

    with fake_client(FakeService(on_text), raise_server_exceptions=False) as client:
        model_error = client.post("/v1/predict", json={"texts": ["poison"]})
        fine = client.post("/v1/predict", json={"texts": ["fire"]})

        @client.app.get("/broken")
        async def broken():
            raise KeyError("a bug")

        bug = client.get("/broken")
        missing = client.get("/v1/nothing-here")
    assert model_error.status_code == 500
    assert "ValueError" in model_error.json()["detail"]
    assert "poison" not in model_error.json()["detail"]  # the message stays in the log: it may hold paths or data
    assert fine.status_code == 200
    assert bug.status_code == 500 and bug.json() == {"detail": "internal server error (KeyError); see the server log"}
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}


# -- 9. a time limit on inference, and readiness that sees a stuck worker --------------------------------------


def test_a_hung_forward_pass_answers_504_and_readyz_reports_the_stuck_worker_until_it_recovers():
    release = threading.Event()
    service = FakeService(lambda text: text == "hang" and release.wait(10))
    with fake_client(service, request_timeout_s=0.3) as client:
        start = time.monotonic()
        hung = client.post("/v1/predict", json={"texts": ["hang"]})
        waited = time.monotonic() - start
        stuck = client.get("/readyz")
        release.set()
        deadline = time.monotonic() + 5
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        recovered = client.get("/readyz")
        after = client.post("/v1/predict", json={"texts": ["fire"]})
    assert hung.status_code == 504 and "--request_timeout_s" in hung.json()["detail"]
    assert waited < 5
    assert stuck.status_code == 503 and stuck.json()["status"] == "stuck"
    assert recovered.status_code == 200 and after.status_code == 200


def test_a_request_that_timed_out_in_the_queue_is_never_run():
    from textune.serving import RequestTimeout

    release = threading.Event()
    service = FakeService(lambda text: text == "hang" and release.wait(10))

    async def scenario():
        batcher = MicroBatcher(service.predict, max_batch_size=1, timeout_s=0.2)
        await batcher.start()
        hung = asyncio.create_task(batcher.submit(["hang"]))
        await asyncio.sleep(0.05)
        with pytest.raises(RequestTimeout, match="--request_timeout_s"):
            await batcher.submit(["queued"])
        with pytest.raises(RequestTimeout):
            await hung
        release.set()
        await batcher.stop()
        return batcher.pending

    assert asyncio.run(scenario()) == 0
    assert service.calls == [["hang"]]


def test_request_timeout_must_be_positive():
    from textune.errors import TextuneError

    with pytest.raises(TextuneError, match="--request_timeout_s"):
        ServeConfig(request_timeout_s=0)


# -- 10. docs that work offline --------------------------------------------------------------------------------


def test_docs_page_needs_no_other_host_and_lists_the_api_with_its_limits():
    with fake_client(max_texts_per_request=4) as client:
        page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text  # no CDN script or stylesheet: the page works offline
    for reference in re.findall(r"""(?:src|href)=["']?([^"' >]+)""", page.text):
        assert not reference.startswith("//")
    assert "/v1/predict" in page.text and "at most 4 texts per request" in page.text


# -- 12. smaller edges -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n"])
def test_an_empty_or_blank_text_is_422_in_the_api(text):
    with fake_client() as client:
        response = client.post("/v1/predict", json={"texts": ["fine", text]})
    assert response.status_code == 422
    assert "texts[1] is empty or only whitespace" in response.json()["detail"]


def test_the_demo_refuses_an_empty_text_with_a_message_and_logs_no_traceback(capfd):
    from gradio_client import Client

    with BackgroundServer(build_app(FakeService(), ServeConfig(port=0))) as server:
        client = Client(server.url + "/", verbose=False)
        with pytest.raises(Exception, match="empty or only whitespace"):
            client.predict("  ", api_name="/predict")
        assert client.predict("fire", api_name="/predict")["label"] == "disaster"
    assert "Traceback" not in capfd.readouterr().err


def test_get_on_predict_is_405_with_allow_even_with_the_demo_mounted():
    with fake_client(ui=True) as client:
        response = client.get("/v1/predict")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert "POST" in response.json()["detail"]


def test_serve_on_a_busy_port_says_so_in_one_line_before_loading_the_model(tiny_model_dir, tmp_path_factory,
                                                                          monkeypatch, capsys):
    import textune.serving.server as server_module

    run = train_tiny_run(tiny_model_dir, tmp_path_factory)
    monkeypatch.setattr(server_module.ModelService, "from_run",
                        lambda *args, **kwargs: pytest.fail("the model was loaded before the port was checked"))
    capsys.readouterr()  # training the shared run (first test to need it) prints progress bars
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(run), "--port", str(port), "--no_ui"]) == 2
    err = capsys.readouterr().err
    assert f"--port {port} is already in use" in err and "--port 0" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_serve_on_a_missing_run_folder_names_serves_own_argument(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "textune serve" in err and "no such run folder" in err and "--model" not in err


# -- issue 17: --share -------------------------------------------------------------------------------------------


def test_share_flag_opens_a_public_link_to_the_bound_port_once_the_server_runs(tiny_model_dir, tmp_path_factory,
                                                                               monkeypatch, capsys):
    import textune.serving.server as server_module

    run = train_tiny_run(tiny_model_dir, tmp_path_factory)
    monkeypatch.setattr(server_module.ModelService, "from_run", lambda *args, **kwargs: FakeService())
    opened, ports = threading.Event(), {}

    def fake_open(host, port):  # the real one needs the network
        opened.set()
        return "https://example.gradio.live"

    def fake_run(self, sockets):  # stands for uvicorn: "started", until the link is open
        ports["bound"] = sockets[0].getsockname()[1]
        self.started = True
        assert opened.wait(10)
        time.sleep(0.1)

    monkeypatch.setattr(server_module, "open_share_link", lambda host, port: ports.update(shared=port) or fake_open(
        host, port))
    monkeypatch.setattr(server_module._Server, "run", fake_run)
    assert main(["serve", str(run), "--port", "0", "--no_ui", "--share"]) == 0
    assert ports["shared"] == ports["bound"]
    assert "Public link" in capsys.readouterr().out
    assert ServeConfig().share is False
