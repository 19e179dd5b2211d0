"""LoRA for every task: only the adapters and the head train, the adapter run reloads and merges to the same outputs,
and predict, serve, Space export and ONNX export take an adapter run as they take any run."""

from __future__ import annotations

import importlib.util
import json
import random

import pandas as pd
import pytest
import torch

from textune import ModelArguments, Predictor, TextuneTrainingArguments, train
from textune.cli import main
from textune.errors import TextuneError

from conftest import DISASTER_WORDS, FILLER, split_flags, toy_frame

LORA = dict(use_peft=True, lora_r=4, lora_alpha=8, lora_dropout=0.0)


def write_toy_data(data):
    data.mkdir(parents=True)
    toy_frame(64, seed=1).to_csv(data / "train.csv", index=False)
    toy_frame(16, seed=2).to_csv(data / "val.csv", index=False)
    toy_frame(12, seed=3, with_label=False).to_csv(data / "test.csv", index=False)
    return data


def keep_transformed_model(monkeypatch) -> dict:
    """Spy on train()'s model transforms: the dict gets the model as it trains ("model") and a copy of its weights
    before training ("before")."""
    import textune.training.train as flow

    seen = {}
    transform = flow.apply_model_transforms

    def keep(model, model_args, training_args):
        seen["model"] = transform(model, model_args, training_args)
        seen["before"] = {name: value.detach().clone() for name, value in seen["model"].state_dict().items()}
        return seen["model"]

    monkeypatch.setattr(flow, "apply_model_transforms", keep)
    return seen


def train_lora(model_dir, folder, monkeypatch, **model_flags):
    """A LoRA run through train(), keeping the model as it trained and a copy of its weights before training."""
    seen = keep_transformed_model(monkeypatch)
    data = write_toy_data(folder / "data")
    data_args, task_args = split_flags(train_file=str(data / "train.csv"), validation_file=str(data / "val.csv"),
                                       test_file=str(data / "test.csv"), text_column_names="text",
                                       label_column_name="target")
    training = TextuneTrainingArguments(output_dir=str(folder / "run"), max_steps=6, per_device_train_batch_size=16,
                                        learning_rate=5e-3, report_to="none", save_strategy="no",
                                        inference_backends="none")
    train(ModelArguments(str(model_dir), **{**LORA, **model_flags}), data_args, training, task_args)
    return folder / "run", seen


class PackagedTinyModel:
    """A model alias, as `minilm` is one: a name that stands for a folder inside an installed package."""

    def __init__(self, path):
        self.path = path

    def locate(self):
        return self.path


@pytest.fixture(scope="module")
def tiny_alias(tiny_model_dir):
    """`tiny-packaged`: an alias of the tiny model for this module's runs, which must reload by that name."""
    from textune.models.packaged import MODEL_ALIASES

    MODEL_ALIASES["tiny-packaged"] = PackagedTinyModel(tiny_model_dir)
    yield "tiny-packaged"
    del MODEL_ALIASES["tiny-packaged"]


@pytest.fixture(scope="module")
def lora_run(tiny_alias, tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return train_lora(tiny_alias, tmp_path_factory.mktemp("lora"), monkeypatch)


def test_lora_changes_the_adapters_and_the_head_and_leaves_every_pretrained_weight_bit_identical(lora_run):
    run, seen = lora_run
    after = seen["model"].state_dict()
    changed = {name for name, value in after.items() if not torch.equal(value, seen["before"][name])}
    adapters = {name for name in after if "lora_" in name}
    head = {name for name in after if ".modules_to_save." in name}
    assert adapters and head
    assert changed == adapters | head  # every adapter and the head trained; nothing else moved by a bit
    trainable = {name for name, parameter in seen["model"].named_parameters() if parameter.requires_grad}
    assert trainable == adapters | head


def test_the_run_saves_only_the_adapter_and_head_in_safetensors_and_names_its_base_portably(lora_run, tiny_model_dir):
    from safetensors import safe_open

    run, _ = lora_run
    assert not (run / "model.safetensors").exists() and (run / "adapter_model.safetensors").is_file()
    with safe_open(str(run / "adapter_model.safetensors"), framework="pt") as handle:
        keys = list(handle.keys())
    assert keys and all("lora_" in key or "classifier" in key for key in keys)
    assert any("classifier" in key for key in keys)  # the trained head travels with the adapter
    record = json.loads((run / "textune_run.json").read_text(encoding="utf-8"))
    text = (run / "adapter_config.json").read_text(encoding="utf-8")
    # the alias, as the run was asked for it: never the folder of the package on the training machine
    assert record["adapter"]["base_model"] == json.loads(text)["base_model_name_or_path"] == "tiny-packaged"
    assert str(tiny_model_dir) not in text and record["adapter"]["r"] == json.loads(text)["r"] == 4


def test_an_adapter_run_reloads_with_the_head_it_trained_and_predicts_what_training_predicted(lora_run):
    run, seen = lora_run
    trained = pd.read_csv(run / "predictions.csv", dtype={"prediction": str})  # the model in memory, after training
    reloaded = Predictor.from_run(run, backend="torch")
    rows = pd.read_csv(run.parent / "data" / "test.csv", dtype=str)
    again = reloaded.predict(rows["text"].tolist())
    assert again["prediction"].tolist() == trained["prediction"].tolist()
    assert again["prob_1"].to_numpy() == pytest.approx(trained["prob_1"].to_numpy(), abs=1e-5)
    trained_head = seen["model"].base_model.model.classifier.modules_to_save["default"].weight
    assert torch.equal(reloaded.model.classifier.weight, trained_head)  # restored, not the checkpoint's head


def test_merge_writes_a_standalone_run_whose_outputs_match_the_adapter_model(lora_run, tmp_path):
    from textune.models.adapters import load_adapter_model

    run, _ = lora_run
    merged = tmp_path / "merged"
    assert main(["merge", str(run), "--to", str(merged)]) == 0
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    record = json.loads((merged / "textune_run.json").read_text(encoding="utf-8"))
    assert "adapter" not in record and record["merged_from"]["r"] == 4
    standalone = Predictor.from_run(merged, backend="torch")
    adapter_model = load_adapter_model(standalone.task, run).eval()
    features = standalone.features(pd.DataFrame({"text": ["fire near the town", "coffee in the garden"]}))
    with torch.no_grad():
        expected = adapter_model(**standalone.tokenizer.pad({k: features[k] for k in ("input_ids", "attention_mask",
                                                                                       "token_type_ids")},
                                                             return_tensors="pt")).logits.numpy()
    assert standalone.run(features)[0] == pytest.approx(expected, abs=1e-5)
    out = tmp_path / "preds.csv"
    assert main(["predict", "--model", str(merged), "--input", str(run.parent / "data" / "test.csv"),
                 "--output", str(out), "--backend", "torch"]) == 0
    assert pd.read_csv(out)["prob_1"].to_numpy() == pytest.approx(
        pd.read_csv(run / "predictions.csv")["prob_1"].to_numpy(), abs=1e-5)


def test_merge_refuses_a_used_folder_and_a_run_without_adapter_and_leaves_nothing_when_it_fails(
        lora_run, tiny_model_dir, tmp_path, capsys, monkeypatch):
    import textune.models.adapters as adapters
    from textune.models.adapters import merge_run

    run, _ = lora_run
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["merge", str(run), "--to", str(used)]) == 2
    assert "--to" in capsys.readouterr().err and (used / "notes.txt").read_text(encoding="utf-8") == "mine"
    plain = tmp_path / "plain"
    from conftest import save_untrained_run
    from textune.tasks.classification.labels import LabelSpec

    save_untrained_run(tiny_model_dir, plain, LabelSpec("single_label_classification", ["0", "1"]))
    with pytest.raises(TextuneError, match="no adapter"):
        merge_run(plain, tmp_path / "out")

    def broken(model, folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(adapters, "save_standalone_model", broken)
    with pytest.raises(OSError):
        merge_run(run, tmp_path / "failed")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plain", "used"]


def test_lora_target_modules_that_match_no_layer_are_one_line(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    from textune.models.adapters import apply_lora

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    with pytest.raises(TextuneError, match="--lora_target_modules qkv names no layer .*: dense, key, query, value$"):
        apply_lora(model, ModelArguments(str(tiny_model_dir), use_peft=True, lora_target_modules="qkv"))


def test_lora_flags_are_checked_in_one_line(capsys):
    with pytest.raises(TextuneError, match="add --use_peft"):
        ModelArguments(lora_r=8)
    with pytest.raises(TextuneError, match="--lora_r must be at least 1"):
        ModelArguments(use_peft=True, lora_r=0)
    assert ModelArguments(use_peft=True, lora_target_modules="query, value").lora_targets() == ["query", "value"]
    assert ModelArguments(use_peft=True).lora_targets() == "all-linear"
    assert main(["train", "--lora_alpha", "64", "--train_file", "missing.csv"]) == 2


def test_lora_on_a_custom_head_trains_and_restores_it(tiny_model_dir, tmp_path):
    data = write_toy_data(tmp_path / "data")
    data_args, task_args = split_flags(train_file=str(data / "train.csv"), validation_file=str(data / "val.csv"),
                                       text_column_names="text", label_column_name="target", head="mlp")
    training = TextuneTrainingArguments(output_dir=str(tmp_path / "mlp"), max_steps=4, per_device_train_batch_size=16,
                                        learning_rate=5e-3, report_to="none", save_strategy="no",
                                        inference_backends="none")
    train(ModelArguments(str(tiny_model_dir), **LORA), data_args, training, task_args)
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "mlp" / "adapter_model.safetensors")
    head = {key.removeprefix("base_model.model.").replace(".modules_to_save.default", ""): value
            for key, value in saved.items() if key.startswith("base_model.model.head.")}
    assert head and all("lora_" not in key for key in head)  # the head is saved whole, not adapted
    reloaded = Predictor.from_run(tmp_path / "mlp", backend="torch")
    weights = reloaded.model.state_dict()
    assert all(torch.equal(weights[name], value) for name, value in head.items())  # not a fresh random head
    texts = toy_frame(8, seed=5)["text"].tolist()
    again = Predictor.from_run(tmp_path / "mlp", backend="torch").predict(texts)
    assert again["prob_1"].to_numpy() == pytest.approx(reloaded.predict(texts)["prob_1"].to_numpy(), abs=1e-6)
    # a base given as a local folder: the record keeps where it is, the adapter config (pushed, shared) its name only
    record = json.loads((tmp_path / "mlp" / "textune_run.json").read_text(encoding="utf-8"))
    config = json.loads((tmp_path / "mlp" / "adapter_config.json").read_text(encoding="utf-8"))
    assert record["adapter"]["base_model"] == str(tiny_model_dir.resolve())
    assert config["base_model_name_or_path"] == tiny_model_dir.name


def qa_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
        answer = rng.choice(DISASTER_WORDS)
        words.insert(rng.randint(0, len(words)), answer)
        context = " ".join(words)
        rows.append({"id": f"q{seed}-{i}", "question": "which word is a disaster", "context": context,
                     "answers": {"text": [answer], "answer_start": [context.find(answer)]}})
    return rows


def test_question_answering_trains_with_lora_and_its_span_head_reloads(tiny_model_dir, tmp_path):
    train_file, val_file = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    pd.DataFrame(qa_rows(48, 1)).to_json(train_file, orient="records", lines=True)
    pd.DataFrame(qa_rows(12, 2)).to_json(val_file, orient="records", lines=True)
    run = tmp_path / "qa"
    assert main(["train", "--task", "question-answering", "--model_name_or_path", str(tiny_model_dir),
                 "--train_file", str(train_file), "--validation_file", str(val_file), "--max_seq_length", "32",
                 "--doc_stride", "8", "--max_steps", "4", "--per_device_train_batch_size", "16",
                 "--inference_backends", "none", "--output_dir", str(run), "--use_peft", "--lora_r", "4"]) == 0
    from safetensors import safe_open

    with safe_open(str(run / "adapter_model.safetensors"), framework="pt") as handle:
        assert any("qa_outputs" in key for key in handle.keys())
    predictor = Predictor.from_run(run, backend="torch")
    rows = pd.DataFrame(qa_rows(4, 3))[["id", "question", "context"]]
    answers = predictor.records(rows, True)
    assert answers.equals(Predictor.from_run(run, backend="torch").records(rows, True))
    assert len(answers) == 4


def test_serve_space_export_and_onnx_export_take_an_adapter_run_as_any_run(lora_run, tmp_path):
    import shutil

    from fastapi.testclient import TestClient

    from textune.inference.export import export_onnx
    from textune.serving import ServeConfig, build_app
    from textune.serving.service import ModelService
    from textune.serving.space import export_space

    run = tmp_path / "run"
    shutil.copytree(lora_run[0], run)  # the export writes model.onnx into the run folder
    texts = ["fire near the town", "coffee in the garden"]
    expected = Predictor.from_run(run, backend="torch").predict(texts)
    with TestClient(build_app(ModelService.from_run(run), ServeConfig(ui=False))) as client:
        answered = client.post("/v1/predict", json={"texts": texts}).json()
    assert [record["label"] for record in answered["predictions"]] == expected["prediction"].tolist()

    space = export_space(run, tmp_path / "space")
    model = space / "model"
    assert (model / "model.safetensors").is_file() and not (model / "adapter_config.json").exists()
    in_space = Predictor.from_run(model, backend="torch").predict(texts)  # no base model or peft needed there
    assert in_space["prob_1"].to_numpy() == pytest.approx(expected["prob_1"].to_numpy(), abs=1e-5)

    assert export_onnx(run, min_agreement=1.0).parity["max_abs_diff"] < 1e-4
    onnx = Predictor.from_run(run, backend="onnx").predict(texts)
    assert onnx["prob_1"].to_numpy() == pytest.approx(expected["prob_1"].to_numpy(), abs=1e-4)


@pytest.fixture(scope="module")
def causal_lora_run(tiny_llama_dir, tmp_path_factory):
    """A LoRA run of the text-generation task on the tiny Llama, with the model as it trained and its weights
    before training."""
    from conftest import seq2seq_rows

    folder = tmp_path_factory.mktemp("causal-lora")
    rows = seq2seq_rows(24, 1).rename(columns={"text": "prompt", "spanish": "completion"})
    rows[["prompt", "completion"]].to_json(folder / "train.jsonl", orient="records", lines=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        seen = keep_transformed_model(monkeypatch)
        assert main(["train", "--task", "text-generation", "--model_name_or_path", str(tiny_llama_dir),
                     "--train_file", str(folder / "train.jsonl"), "--do_train", "--max_steps", "4",
                     "--learning_rate", "1e-2", "--per_device_train_batch_size", "8", "--max_new_tokens", "6",
                     "--inference_backends", "none", "--output_dir", str(folder / "run"), "--use_peft",
                     "--lora_r", "4", "--lora_alpha", "8", "--lora_dropout", "0"]) == 0
    return folder / "run", seen


def test_causal_lora_trains_only_adapters_saves_them_and_generates_from_the_adapter_run(causal_lora_run, tmp_path,
                                                                                        capsys):
    from safetensors import safe_open

    run, seen = causal_lora_run
    after = seen["model"].state_dict()
    changed = {name for name, value in after.items() if not torch.equal(value, seen["before"][name])}
    adapters = {name for name in after if "lora_" in name}
    assert adapters and changed == adapters  # lm_head and every pretrained weight stay bit-identical
    assert {name for name, p in seen["model"].named_parameters() if p.requires_grad} == adapters
    assert (run / "adapter_config.json").is_file() and not (run / "model.safetensors").exists()
    with safe_open(str(run / "adapter_model.safetensors"), framework="pt") as handle:
        assert handle.keys() and all("lora_" in key for key in handle.keys())
    texts = {}
    for backend in ("torch", "ctranslate2"):
        if backend == "ctranslate2" and importlib.util.find_spec("ctranslate2") is None:
            continue
        assert main(["generate", "--model", str(run), "--prompt", "fire near the town", "--max_new_tokens", "6",
                     "--backend", backend]) == 0
        texts[backend] = capsys.readouterr().out
    assert len(set(texts.values())) == 1  # the engine runs the merged adapter model, not the bare base
    from textune.serving.service import ModelService

    served = {backend: ModelService.from_run(run, backend=backend) for backend in texts}
    streamed = {backend: "".join(service.task.stream(service.predictor.model, service.predictor.tokenizer,
                                                     "fire near the town")) for backend, service in served.items()}
    assert len(set(streamed.values())) == 1 and (served.get("ctranslate2") is None
                                                 or served["ctranslate2"].task.engine is not None)
    rows = tmp_path / "prompts.csv"
    pd.DataFrame({"prompt": ["fire near the town", "a storm"]}).to_csv(rows, index=False)
    assert main(["predict", "--model", str(run), "--input", str(rows), "--output", str(tmp_path / "out.csv"),
                 "--backend", "torch"]) == 0
    written = pd.read_csv(tmp_path / "out.csv")
    assert written["prompt"].tolist()[:2] == ["fire near the town", "a storm"] and "generated" in written


def test_causal_merge_gives_the_adapter_models_logits(causal_lora_run, tmp_path):
    from textune.models.adapters import load_adapter_model

    run, _ = causal_lora_run
    merged = tmp_path / "merged"
    assert main(["merge", str(run), "--to", str(merged)]) == 0
    standalone = Predictor.from_run(merged, backend="torch")
    adapter_model = load_adapter_model(standalone.task, run).eval()
    ids = torch.tensor([standalone.tokenizer("fire near the town")["input_ids"]])
    with torch.no_grad():
        expected, got = adapter_model(input_ids=ids).logits, standalone.model(input_ids=ids).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)  # merging rounds: wide random logits
