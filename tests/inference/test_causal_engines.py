"""Generation engines: the torch engine is transformers' generate (batch and stream), CTranslate2 gives the same
greedy tokens on the same prompts, and stop ids end an output."""

from __future__ import annotations

import importlib.util
import threading

import pytest

from textune.errors import TextuneError
from textune.inference.causal_engines import compare_outputs, greedy_parity, load_engine
from textune.inference.generation import GenerationSettings

needs_ctranslate2 = pytest.mark.skipif(importlib.util.find_spec("ctranslate2") is None,
                                       reason="ctranslate2 is not installed (pip install 'textune[fast-generation]')")
TWELVE, SIXTEEN = GenerationSettings(max_new_tokens=12), GenerationSettings(max_new_tokens=16)
TEXTS = ["Tell me about the fire", "Hello, how are you today?", "coffee", "we saw a big storm near my house"]


@pytest.fixture(scope="module")
def prompts(tiny_llama_dir) -> list[list[int]]:
    """Chat prompts of different lengths, as the text-generation task builds them."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    return [tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                          return_dict=True)["input_ids"] for text in TEXTS]


@pytest.fixture(scope="module")
def torch_engine(tiny_llama_dir):
    return load_engine("torch", tiny_llama_dir)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTUNE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _reference(model, prompt, max_new_tokens, eos_token_id=None):
    """model.generate alone on one prompt (no padding), greedy; the new tokens."""
    import torch

    with torch.inference_mode():
        output = model.generate(torch.tensor([prompt]), max_new_tokens=max_new_tokens, do_sample=False,
                                eos_token_id=eos_token_id, pad_token_id=0)
    return output[0, len(prompt):].tolist()


def test_torch_engine_batch_and_stream_equal_model_generate(torch_engine, prompts):
    expected = [_reference(torch_engine.model, prompt, 12) for prompt in prompts]
    assert all(len(tokens) == 12 for tokens in expected)
    assert torch_engine.generate(prompts, TWELVE, ()) == expected  # one left-padded batch
    assert [list(torch_engine.stream(prompt, TWELVE, ())) for prompt in prompts] == expected


def test_a_stop_id_ends_the_output_and_is_not_part_of_it(torch_engine, prompts):
    free = torch_engine.generate(prompts[:1], TWELVE, ())[0]
    stop = free[4]
    cut = free[:free.index(stop)]
    assert torch_engine.generate(prompts[:1], TWELVE, [stop]) == [cut]
    assert list(torch_engine.stream(prompts[0], TWELVE, [stop])) == cut
    # by default the model's own end-of-sequence id (generation_config.json: <|im_end|>, id 2) stops it
    assert torch_engine.default_stop_ids == (2,)


def test_closing_a_stream_early_stops_generating(torch_engine, prompts):
    stream = torch_engine.stream(prompts[0], GenerationSettings(max_new_tokens=200), ())
    first = [next(stream), next(stream)]
    stream.close()  # a client that went away: the generate thread is joined, not left running
    assert len(first) == 2
    assert not any(thread.name == "textune-generate" for thread in threading.enumerate())


def test_sampling_with_a_seed_repeats(torch_engine, prompts):
    settings = GenerationSettings(max_new_tokens=10, do_sample=True, temperature=1.5, seed=7)
    assert torch_engine.generate(prompts[:2], settings, ()) == torch_engine.generate(prompts[:2], settings, ())
    assert list(torch_engine.stream(prompts[0], settings, ())) == torch_engine.generate(prompts[:1], settings, ())[0]


def test_bad_settings_and_names_are_one_line_errors(tiny_llama_dir, torch_engine, prompts):
    with pytest.raises(TextuneError, match="--num_beams above 1 needs --backend torch"):
        torch_engine.generate(prompts, GenerationSettings(num_beams=2))
    with pytest.raises(TextuneError, match="--backend 'vllm' is not a generation engine; use one of torch"):
        load_engine("vllm", tiny_llama_dir)
    with pytest.raises(TextuneError, match="a prompt has no tokens"):
        torch_engine.generate([[]])
    assert torch_engine.generate([]) == []
    with pytest.raises(TypeError, match="max_tokens"):
        torch_engine.generate(prompts, max_tokens=3)


def test_compare_outputs_counts_identical_outputs_and_agreeing_tokens():
    parity = compare_outputs([[1, 2, 3, 4], [5, 6]], [[1, 2, 9, 9], [5, 6]])
    assert parity.identical == 1 and parity.share_identical == 0.5
    assert parity.agreeing_tokens == pytest.approx(4 / 6)


@needs_ctranslate2
def test_ctranslate2_matches_torch_greedy_and_stops_on_stop_ids(tiny_llama_dir, torch_engine, prompts, cache):
    engine = load_engine("ctranslate2", tiny_llama_dir)
    parity = greedy_parity(torch_engine, engine, prompts, max_new_tokens=16, stop_ids=())
    assert parity.share_identical == 1.0
    batch = engine.generate(prompts, SIXTEEN, ())
    assert batch == torch_engine.generate(prompts, SIXTEEN, ())
    assert list(engine.stream(prompts[1], SIXTEEN, ())) == batch[1]
    stop = batch[0][5]
    assert engine.generate(prompts[:1], SIXTEEN, [stop]) == [batch[0][:batch[0].index(stop)]]
    assert list(engine.stream(prompts[0], SIXTEEN, [stop])) == batch[0][:batch[0].index(stop)]
    assert engine.default_stop_ids == (2,)


@needs_ctranslate2
def test_ctranslate2_converts_once_per_folder_state(tiny_llama_dir, cache, monkeypatch):
    import ctranslate2

    conversions = []
    convert = ctranslate2.converters.TransformersConverter.convert

    def counting(self, *args, **kwargs):
        conversions.append(args)
        return convert(self, *args, **kwargs)

    monkeypatch.setattr(ctranslate2.converters.TransformersConverter, "convert", counting)
    load_engine("ctranslate2", tiny_llama_dir)
    int8 = load_engine("ctranslate2-int8", tiny_llama_dir)  # same conversion, quantized on load
    assert len(conversions) == 1 and [path.name for path in (cache / "ctranslate2").iterdir()] != []
    assert len(int8.generate([[1, 5, 6]], GenerationSettings(max_new_tokens=4), ())[0]) == 4


def test_load_engine_loads_only_named_engines(tiny_llama_dir):
    # auto is choose_engine's (with its parity check); loading without one is for a named engine only
    with pytest.raises(TextuneError, match="--backend 'auto' is not a generation engine; use one of torch"):
        load_engine("auto", tiny_llama_dir)


# --- --backend on the text-generation task --------------------------------------------------------------------

def _generated(capsys, model_dir, *flags) -> str:
    from textune.cli import main

    assert main(["generate", "--model", str(model_dir), "--prompt", "we saw a big storm", "--max_new_tokens", "12",
                 *flags]) == 0
    return capsys.readouterr().out


@needs_ctranslate2
def test_generate_and_file_generation_with_ctranslate2_give_torchs_greedy_text(tiny_llama_dir, cache, capsys,
                                                                               tmp_path):
    from textune.cli import main

    torch_text = _generated(capsys, tiny_llama_dir, "--backend", "torch")
    assert torch_text.strip() and _generated(capsys, tiny_llama_dir, "--backend", "ctranslate2") == torch_text
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(f'{{"prompt": "{text}"}}\n' for text in TEXTS), encoding="utf-8")
    outputs = {}
    for backend in ("torch", "ctranslate2"):
        output = tmp_path / f"{backend}.jsonl"
        assert main(["generate", "--model", str(tiny_llama_dir), "--input", str(prompts), "--output", str(output),
                     "--max_new_tokens", "8", "--batch_size", "4", "--backend", backend]) == 0
        outputs[backend] = output.read_text(encoding="utf-8")
    assert outputs["ctranslate2"] == outputs["torch"]


@needs_ctranslate2
def test_predict_and_stream_with_ctranslate2_give_torchs_greedy_text(tiny_llama_dir, cache):
    import pandas as pd
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from textune.inference.prediction import Predictor
    from textune.tasks.text_generation.task import TextGenerationTask

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    rows = pd.DataFrame({"prompt": TEXTS})
    records = {}
    for backend in ("torch", "ctranslate2"):
        predictor = Predictor(model, tokenizer, TextGenerationTask(), 2, backend=backend, run_dir=tiny_llama_dir)
        assert (predictor.task.engine is None) == (backend == "torch")
        records[backend] = predictor.records(rows)["generated"].tolist()
        streams = [("".join(predictor.task.stream(model, tokenizer, text))).strip() for text in TEXTS]
        assert streams == records[backend]
    assert records["ctranslate2"] == records["torch"] and any(records["torch"])


def test_auto_generates_with_torch_when_ctranslate2_is_missing_or_disagrees(tiny_llama_dir, cache, monkeypatch,
                                                                            caplog):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from textune.inference import causal_engines
    from textune.tasks.text_generation.task import TextGenerationTask

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(causal_engines.importlib.util, "find_spec",
                        lambda name, *rest: None if name == "ctranslate2" else real_find_spec(name, *rest))
    assert TextGenerationTask().with_engine("auto", model, tokenizer, tiny_llama_dir).engine is None
    assert not (cache / "ctranslate2").exists()  # nothing converted for an engine that is not there
    monkeypatch.undo()
    monkeypatch.setenv("TEXTUNE_CACHE", str(cache))  # undo() reset it: a parity an earlier test recorded is not read
    if importlib.util.find_spec("ctranslate2") is None:
        return
    monkeypatch.setattr(causal_engines, "greedy_parity", lambda *args, **kwargs: causal_engines.Parity(4, 3, 0.9))
    with caplog.at_level("WARNING"):
        assert TextGenerationTask().with_engine("auto", model, tokenizer, tiny_llama_dir).engine is None
    assert "3 of 4 prompts" in caplog.text
    # asked for by name, the engine is kept and the disagreement logged
    assert TextGenerationTask().with_engine("ctranslate2", model, tokenizer, tiny_llama_dir).engine is not None


def test_a_backend_that_is_not_a_generation_engine_is_one_line(tiny_llama_dir, capsys):
    from textune.cli import main

    assert main(["generate", "--model", str(tiny_llama_dir), "--prompt", "hi", "--backend", "onnx-int8"]) == 2
    error = capsys.readouterr().err
    assert "--backend 'onnx-int8' is not a generation engine" in error and len(error.strip().splitlines()) == 1


@needs_ctranslate2
def test_the_parity_check_runs_once_per_model_state(tiny_llama_dir, cache, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from textune.inference import causal_engines
    from textune.tasks.text_generation.task import TextGenerationTask

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    measured = []
    real = causal_engines.greedy_parity
    monkeypatch.setattr(causal_engines, "greedy_parity", lambda *a, **k: measured.append(1) or real(*a, **k))
    for _ in range(2):
        assert TextGenerationTask().with_engine("auto", model, tokenizer, tiny_llama_dir).engine is not None
    assert measured == [1]  # the second load read the record


@needs_ctranslate2
def test_serving_a_model_that_is_no_run_generates_with_the_backend_asked_for(tiny_llama_dir, cache):
    from textune.serving.service import ModelService

    torch_service = ModelService.from_model(str(tiny_llama_dir), backend="torch")
    assert torch_service.task.engine is None
    service = ModelService.from_model(str(tiny_llama_dir), backend="ctranslate2")
    assert service.task.engine.name == "ctranslate2"
    assert service.predict(["Tell me about the fire"]) == torch_service.predict(["Tell me about the fire"])


@needs_ctranslate2
def test_files_written_into_the_model_folder_later_keep_its_conversion(tiny_llama_dir, cache, tmp_path):
    import shutil

    from textune.inference.causal_engines import ctranslate2_folder

    folder = tmp_path / "run"
    shutil.copytree(tiny_llama_dir, folder)
    converted = ctranslate2_folder(folder)
    for name in ("report.html", "model.onnx", "predictions.csv", "eval_results.json"):
        (folder / name).write_text("written after training\n")
    assert ctranslate2_folder(folder) == converted  # no second conversion
    assert len(list((cache / "ctranslate2").iterdir())) == 1
    (folder / "config.json").write_text((folder / "config.json").read_text() + "\n")  # the model itself changed
    assert ctranslate2_folder(folder) != converted


def test_files_written_into_a_run_folder_later_keep_its_merged_copy_and_parity_record(tmp_path, cache, monkeypatch):
    from textune.inference import causal_engines

    run = tmp_path / "lora-run"
    run.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (run / name).write_text("{}")
    saved = []

    class Model:
        def save_pretrained(self, target):
            saved.append(target)

    folder = causal_engines.engine_folder(Model(), Model(), run)
    measured = []
    parity = lambda: measured.append(1) or causal_engines.Parity(1, 1, 1.0)  # noqa: E731
    causal_engines.recorded_parity(run, "ctranslate2", [[1, 2]], [2], parity)
    (run / "report.html").write_text("<html></html>")
    (run / "predictions.csv").write_text("generated\n")
    assert causal_engines.engine_folder(Model(), Model(), run) == folder
    causal_engines.recorded_parity(run, "ctranslate2", [[1, 2]], [2], parity)
    assert len(saved) == 2 and measured == [1]  # one merged copy (model + tokenizer), one parity measurement


@needs_ctranslate2
def test_a_seeded_sample_repeats_with_the_ctranslate2_backend(tiny_llama_dir, cache):
    # CTranslate2's set_random_seed does not make its sampling repeat (OpenNMT/CTranslate2#1757): such a request
    # generates with the model in memory
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from textune.tasks.text_generation.task import TextGenerationTask

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    task = TextGenerationTask().with_engine("ctranslate2", model, tokenizer, tiny_llama_dir)
    assert task.engine is not None
    sampled = task.with_generation(GenerationSettings(max_new_tokens=20, do_sample=True, temperature=1.5, seed=7))
    contexts = [sampled.context_ids(text, tokenizer) for text in TEXTS[:2]]
    first = sampled.generate_ids(model, tokenizer, contexts)
    assert sampled.generate_ids(model, tokenizer, contexts) == first and len(set(first[0])) > 2
    streamed = "".join(sampled.stream(model, tokenizer, TEXTS[0]))
    assert streamed == "".join(sampled.stream(model, tokenizer, TEXTS[0])) and streamed.strip()
