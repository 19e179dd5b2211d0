"""Property-based fuzzing of the JSON API against its own OpenAPI schema, in-process (schemathesis, no socket).

Every generated request, valid or not, must get a non-5xx answer that the schema declares: its status, its
content type, its headers and its body (errors included, as `{"detail": ...}`). Bounded to a few examples per
operation so the default run stays fast; `FakeService` stands in for the model.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed: pip install -e '.[test]'")

from hypothesis import HealthCheck, settings  # noqa: E402  (after the importorskip above)
from schemathesis.config import SchemathesisConfig  # noqa: E402

from textune.serving import ModelService, ServeConfig, build_app  # noqa: E402

from conftest import FakeService, llama_run  # noqa: E402

# Small limits, so generated data also crosses them (422) rather than only staying far below them.
APP = build_app(FakeService(), ServeConfig(ui=False, max_texts_per_request=4, max_chars_per_text=50,
                                          max_body_bytes=2_000))
CHECKS = {
    # Invalid data may be refused as malformed (400), too large (413: fuzzed bodies can exceed 2,000 bytes)
    # or wrong (422).
    "negative_data_rejection": {"expected-statuses": [400, 413, 422]},
    # Off: the per-request limits (texts, characters, blank texts) depend on the flags and are stated in the
    # endpoint's description, not the schema, so schema-valid data may rightly get a 422.
    "positive_data_acceptance": {"enabled": False},
}
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=SchemathesisConfig.from_dict({"checks": CHECKS}))


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_answer_of_the_api_is_declared_by_its_schema_and_none_is_a_server_error(case):
    case.call_and_validate()


def test_every_error_the_api_answers_is_declared_with_the_json_error_model():
    responses = APP.openapi()["paths"]["/v1/predict"]["post"]["responses"]
    for status in ("400", "413", "422", "429", "500", "503", "504"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"}, status


@pytest.fixture(scope="module")
def openai_app(tiny_llama_dir, tmp_path_factory):
    """The app of the text-generation task on the tiny Llama (the OpenAI-compatible routes), with limits small
    enough for fuzzed data to cross."""
    run = llama_run(tiny_llama_dir, tmp_path_factory.mktemp("fuzz") / "tiny-chat", max_new_tokens=2)
    return build_app(ModelService.from_run(run), ServeConfig(
        ui=False, max_new_tokens_limit=4, max_prompt_tokens=20, max_texts_per_request=2, max_body_bytes=2_000))


def test_every_answer_of_the_openai_compatible_routes_is_declared_and_none_is_a_server_error(openai_app):
    # Built in the test, not at import: the app needs the tiny Llama fixture (schemathesis' from_fixture fails
    # on this pytest), so each operation's cases run through hypothesis here.
    from hypothesis import given

    schema = schemathesis.openapi.from_asgi("/openapi.json", openai_app,
                                            config=SchemathesisConfig.from_dict({"checks": CHECKS}))
    operations = [result.ok() for result in schema.include(path_regex="^/v1/(models|.*completions)$")
                  .get_all_operations()]
    assert {operation.path for operation in operations} == {"/v1/models", "/v1/completions", "/v1/chat/completions"}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate()

        check()
