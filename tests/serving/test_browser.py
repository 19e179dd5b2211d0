"""One real browser: headless Debian Chromium, driven by Playwright, uses the Gradio demo like a person would."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

from textune.serving import BackgroundServer, ModelService, ServeConfig, build_app

from conftest import train_tiny_run

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
TWEET = "Huge wildfire near the town, everyone evacuate now"


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium; .ci/run does this)")
    return path


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="playwright not installed: pip install -e '.[test]'")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_a_person_types_a_tweet_submits_and_reads_the_predicted_label(browser, tiny_model_dir, tmp_path_factory):
    run = train_tiny_run(tiny_model_dir, tmp_path_factory)
    app = build_app(ModelService.from_run(run), ServeConfig(port=0, title="Disaster tweets"))
    with BackgroundServer(app) as server:
        expected = httpx.post(server.url + "/v1/predict", json={"texts": [TWEET]}).json()["predictions"][0]["label"]
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(server.url + "/")
        page.get_by_role("heading", name="Disaster tweets").wait_for(state="visible")  # the page rendered
        page.get_by_label("Text").fill(TWEET)
        page.get_by_role("button", name="Predict").click()
        shown = page.locator("#prediction [data-testid='label-output-value']")
        shown.wait_for()
        page.wait_for_function("el => el.textContent.trim().length > 0", arg=shown.element_handle())
        assert shown.text_content().strip() == expected
        # one probability per class is listed under the label
        assert page.locator("#prediction [data-testid$='-confidence-set']").count() == 2
        page.close()
