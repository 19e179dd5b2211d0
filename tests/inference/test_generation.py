"""The generation settings flags and API parameters override, the server's limits, and streaming one output."""

import pytest

from textune.errors import TextuneError
from textune.inference.generation import GenerationLimits, GenerationSettings, stream_text


def test_overrides_go_over_the_run_settings_and_only_said_values_count():
    run = GenerationSettings(max_new_tokens=64, num_beams=4)
    got = GenerationSettings(num_beams=1, do_sample=True, temperature=0.7).over(run)
    assert got == GenerationSettings(max_new_tokens=64, num_beams=1, do_sample=True, temperature=0.7)
    assert GenerationSettings.from_values({"num_beams": 2, "output": "x.csv", "top_p": None}) == \
        GenerationSettings(num_beams=2)


def test_greedy_generation_leaves_out_the_sampling_settings_and_the_seed():
    settings = GenerationSettings(max_new_tokens=8, temperature=0.5, top_p=0.9, seed=3)
    assert settings.generate_kwargs() == {"max_new_tokens": 8}
    assert GenerationSettings(do_sample=True, temperature=0.5, seed=3).generate_kwargs() == \
        {"do_sample": True, "temperature": 0.5}


@pytest.mark.parametrize("values, flag", [({"max_new_tokens": 0}, "--max_new_tokens"),
                                          ({"temperature": 0.0}, "--temperature"), ({"top_p": 1.5}, "--top_p"),
                                          ({"num_beams": 0}, "--num_beams")])
def test_an_unusable_value_is_one_line_naming_the_flag(values, flag):
    with pytest.raises(TextuneError, match=flag):
        GenerationSettings(**values)


def test_limits_name_the_parameter_over_them():
    limits = GenerationLimits(max_new_tokens=32, num_beams=2)
    assert limits.problem(GenerationSettings(max_new_tokens=32, num_beams=2)) is None
    assert "parameters.max_new_tokens is 33" in limits.problem(GenerationSettings(max_new_tokens=33))
    assert "at most 2" in limits.problem(GenerationSettings(num_beams=3))


@pytest.mark.parametrize("beams", [1, 2])
def test_streamed_pieces_join_to_the_generated_text(tiny_llama_dir, beams):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    inputs = tokenizer("fire near my house", return_tensors="pt")
    settings = GenerationSettings(max_new_tokens=6, num_beams=beams)
    expected = model.generate(**inputs, **settings.generate_kwargs())[0][inputs["input_ids"].shape[-1]:]
    pieces = list(stream_text(model, tokenizer, inputs, settings, skip_prompt=True))
    assert len(pieces) >= 1
    assert "".join(pieces).split() == tokenizer.decode(expected, skip_special_tokens=True).split()


def test_a_failure_inside_generate_reaches_the_reader(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    inputs = {"input_ids": tokenizer("fire", return_tensors="pt")["input_ids"] * 0 + 10_000}  # no such token
    with pytest.raises(Exception):
        list(stream_text(model, tokenizer, inputs, GenerationSettings(max_new_tokens=3), skip_prompt=True))
