"""The JSON API's `parameters` of a request to a task that generates text: GenerationSettings as a pydantic model.

Built from `GenerationSettings`' fields and help, so the API, `textune predict`'s flags and the demo's sliders take
the same settings under the same names. The bounds are stricter than the settings' own checks where a value would
make `generate` fail or overflow (a temperature of 1e-300 divides the scores to infinity): the API answers 422,
never 500.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from pydantic import ConfigDict, Field, StrictBool, create_model

from ..inference.generation import HELP, GenerationSettings

# name: (type, bounds); the types are strict where pydantic would otherwise read "yes" as true
BOUNDS: dict[str, tuple[Any, dict[str, float]]] = {
    "max_new_tokens": (int, {"ge": 1}),
    "num_beams": (int, {"ge": 1}),
    "do_sample": (StrictBool, {}),
    "temperature": (float, {"ge": 0.01, "le": 100.0}),
    "top_p": (float, {"gt": 0.0, "le": 1.0}),
    "top_k": (int, {"ge": 1, "le": 1_000_000}),
    "repetition_penalty": (float, {"ge": 0.01, "le": 100.0}),
    "seed": (int, {"ge": 0, "le": 2**63 - 1}),
}

GenerationParameters = create_model(
    "GenerationParameters",
    __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [{"max_new_tokens": 64, "num_beams": 2}]}),
    __doc__="How to generate; a parameter left out keeps the run's own setting (the server caps max_new_tokens "
            "and num_beams: 422 beyond).",
    **{item.name: (BOUNDS[item.name][0] | None, Field(default=None, description=HELP[item.name].replace("--", ""),
                                                      **BOUNDS[item.name][1]))
       for item in fields(GenerationSettings)},
)


def settings_from_values(values: dict[str, Any]) -> GenerationSettings | None:
    """The one builder of a request's (or a demo's) generation settings: `values` by GenerationSettings' names,
    None or absent where not said; counts made whole numbers (Gradio's sliders send floats). None when nothing is
    said.

    Raises:
        TextuneError: A value the settings' own checks refuse.
    """
    given = {name: value for name, value in values.items() if value is not None}
    for name in ("max_new_tokens", "num_beams", "top_k"):
        if name in given:
            given[name] = int(given[name])
    settings = GenerationSettings.from_values(given)
    return settings if settings.given() else None


def settings_from_parameters(parameters) -> GenerationSettings | None:
    """The GenerationSettings a /v1/predict request's `parameters` give, or None when it gives none."""
    return None if parameters is None else settings_from_values(parameters.model_dump())


def default_new_tokens(base: GenerationSettings, limit: int) -> int:
    """How many new tokens a request that does not say gets: the run's setting (`base`), capped at `limit`
    (--max_new_tokens_limit), so a run trained with a long setting cannot exceed the server's cap."""
    return min(base.max_new_tokens or limit, limit)


def within_token_limit(settings: GenerationSettings | None, base: GenerationSettings,
                       limit: int) -> GenerationSettings | None:
    """`settings` with max_new_tokens, when a request left it out and the run's own (`base`) is over `limit`, set
    to `limit`. A run without a setting keeps its model's generation config (a seq2seq model's length)."""
    if settings is not None and settings.max_new_tokens is not None:
        return settings
    if base.max_new_tokens is None or base.max_new_tokens <= limit:
        return settings  # the run's own setting is within the limit: nothing to put over it
    return replace(settings or GenerationSettings(), max_new_tokens=limit)
