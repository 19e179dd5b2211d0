"""The text-generation task on a tiny random Llama: loss targets (prompt masking, assistant turns, packing),
perplexity, generation (end of turn, left padding) and the `generate` / `chat` commands."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest
import torch

from textune.cli import main
from textune.tasks import detect_task
from textune.tasks.text_generation import TextGenerationArguments, TextGenerationTask
from textune.tasks.text_generation.formatting import IGNORE

from conftest import seq2seq_rows

CHAT = [{"role": "user", "content": "the fire near my house"}, {"role": "assistant", "content": "el fuego"},
        {"role": "user", "content": "a flood"}, {"role": "assistant", "content": "un inundación"}]


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


@pytest.fixture(scope="module")
def model(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()


def prompt_rows(n: int = 8, seed: int = 1) -> pd.DataFrame:
    rows = seq2seq_rows(n, seed)
    return pd.DataFrame({"id": rows["id"], "prompt": "translate: " + rows["text"] + " answer:",
                         "completion": rows["spanish"]})


def test_prompt_completion_and_messages_columns_pick_the_task_but_a_plain_text_column_does_not():
    assert detect_task(["prompt", "completion"])[0] is TextGenerationTask
    assert detect_task(["messages"])[0] is TextGenerationTask
    assert detect_task(["text", "target"])[0] is not TextGenerationTask
    assert detect_task(["text"])[0] is not TextGenerationTask


def test_prompt_tokens_are_masked_and_completion_tokens_are_targets(tokenizer):
    rows = prompt_rows(4)
    task = TextGenerationTask.from_arguments(None, rows, "train")
    features = task.encode(task.check_rows(rows, "train", True), tokenizer, True)
    for row, ids, labels in zip(rows.itertuples(), features["input_ids"], features["labels"]):
        prompt = len(tokenizer(row.prompt)["input_ids"])
        completion = tokenizer(row.completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert labels[:prompt] == [IGNORE] * prompt
        assert labels[prompt:] == completion == ids[prompt:]
    everything = TextGenerationTask(TextGenerationArguments(completion_only_loss=False))
    features = everything.encode(rows, tokenizer, True)
    assert features["labels"][0] == features["input_ids"][0]


def test_chat_data_is_templated_and_only_assistant_turns_are_targets(tokenizer):
    rows = pd.DataFrame({"messages": [json.dumps(CHAT)]})  # as a CSV cell holds it
    task = TextGenerationTask.from_arguments(TextGenerationArguments(system_prompt="so lovely"), rows, "train")
    features = task.encode(task.check_rows(rows, "train", True), tokenizer, True)
    ids, labels = features["input_ids"][0], features["labels"][0]
    system = [{"role": "system", "content": "so lovely"}]
    assert tokenizer.decode(ids) == tokenizer.decode(tokenizer(tokenizer.apply_chat_template(
        system + CHAT, tokenize=False), add_special_tokens=False)["input_ids"])
    targets = tokenizer.decode([token for token, label in zip(ids, labels) if label != IGNORE])
    assert targets == "el fuego<|im_end|>\nun inundación<|im_end|>\n"  # the replies, each to its end of turn
    assert "<|im_start|>" not in targets and "fire" not in targets and "lovely" not in targets


def test_a_conversation_that_is_not_a_list_of_messages_is_refused_naming_the_row(tokenizer):
    from textune.errors import TextuneError

    rows = pd.DataFrame({"messages": [json.dumps(CHAT), json.dumps([{"role": "robot", "content": "x"}])]})
    with pytest.raises(TextuneError, match="row 2's 'messages'.*role"):
        TextGenerationTask.from_arguments(None, rows, "train.jsonl")


def test_packing_fills_blocks_keeps_masks_and_keeps_examples_apart(tokenizer, model):
    rows = prompt_rows(12)
    task = TextGenerationTask.from_arguments(TextGenerationArguments(packing=True, max_seq_length=100), rows, "t")
    alone = task.encode(rows, tokenizer, True, "--validation_file")  # only the training split is packed
    packed = task.encode(rows, tokenizer, True, "--train_file")
    assert len(alone) == 12 and len(packed) < 12 and "attention_mask" not in packed.column_names
    assert sum(map(len, packed["input_ids"])) == sum(map(len, alone["input_ids"]))
    assert [t for row in packed["labels"] for t in row] == [t for row in alone["labels"] for t in row]
    assert all(len(row) <= 100 for row in packed["input_ids"])
    # the first block's examples give the same logits packed as alone: positions restart, attention stays inside
    batch = task.collator(tokenizer)([packed[0]])
    with torch.no_grad():
        packed_logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0]
        first = len(alone["input_ids"][0])
        second = len(alone["input_ids"][1])
        one = model(input_ids=torch.tensor([alone["input_ids"][1]])).logits[0]
    assert batch["position_ids"][0, first] == 0
    assert torch.allclose(packed_logits[first:first + second], one, atol=1e-5)


def test_the_collator_pads_labels_with_minus_100(tokenizer):
    task = TextGenerationTask()
    batch = task.collator(tokenizer)([{"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [-100, 6, 7]},
                                      {"input_ids": [5], "attention_mask": [1], "labels": [5]}])
    assert batch["labels"][1].tolist() == [5, IGNORE, IGNORE]
    assert batch["attention_mask"][1].tolist() == [1, 0, 0]
    assert batch["input_ids"][1, 1:].tolist() == [tokenizer.pad_token_id] * 2


def test_validation_perplexity_is_exp_of_the_eval_loss_and_predictions_are_written(tiny_llama_dir, tmp_path):
    train, val = tmp_path / "train.csv", tmp_path / "val.csv"
    prompt_rows(32, 1).to_csv(train, index=False)
    prompt_rows(12, 2).to_csv(val, index=False)
    run = tmp_path / "run"
    assert main(["train", "--model_name_or_path", str(tiny_llama_dir), "--train_file", str(train),
                 "--validation_file", str(val), "--test_file", str(val), "--do_train", "--do_eval", "--do_predict",
                 "--max_steps", "3", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "64",
                 "--max_new_tokens", "3", "--output_dir", str(run),
                 "--bf16", "false"]) == 0  # fp32 as `evaluate`: a CPU with native bf16 would evaluate in bf16
    metrics = json.loads((run / "all_results.json").read_text(encoding="utf-8"))
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]), rel=1e-3)
    lines = [json.loads(line) for line in (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 12 and set(lines[0]) == {"id", "prompt", "completion", "generated"}
    record = json.loads((run / "textune_run.json").read_text(encoding="utf-8"))["task"]
    assert len(record["local"]["samples_before"]) == 3 and record["data_format"] == "prompt_completion"
    # the samples are the user's validation prompts: the record shared to the Hub and Spaces leaves them out
    from textune.hub import shareable_run_record

    shared = json.dumps(shareable_run_record(run), ensure_ascii=False)
    assert "samples_before" not in shared and record["local"]["samples_before"][0]["prompt"] not in shared
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "Perplexity" in report and "before fine-tuning" in report
    # `textune evaluate` scores the same references with one forward pass per batch: the same perplexity
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(run), "--input", str(val), "--output", str(out)]) == 0
    evaluated = json.loads(out.read_text(encoding="utf-8"))
    assert evaluated["eval_perplexity"] == pytest.approx(metrics["eval_perplexity"], rel=1e-3)
    assert "eval_chrf" in evaluated


class FakeModel:
    """Generates three fixed tokens after any prompt, the middle one ending the turn; records its arguments."""

    device = torch.device("cpu")

    def __init__(self, tokens):
        self.tokens, self.calls = tokens, []
        self.generation_config = type("Config", (), {"eos_token_id": None})()

    def generate(self, input_ids, **kwargs):
        self.calls.append(kwargs)
        return torch.cat([input_ids, torch.tensor([self.tokens] * len(input_ids))], dim=1)


def test_generation_stops_at_the_end_of_turn_token(tokenizer):
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    fire, flood = tokenizer.convert_tokens_to_ids(["fire", "flood"])
    model = FakeModel([fire, end, flood])
    assert TextGenerationTask().generate_ids(model, tokenizer, [[fire], [fire, fire]]) == [[fire], [fire]]
    assert end in model.calls[0]["eos_token_id"]


def test_left_padding_gives_each_prompt_the_output_it_gets_alone(tiny_llama_dir, tokenizer, model):
    from textune.inference.prediction import Predictor

    task = TextGenerationTask(TextGenerationArguments(max_new_tokens=6))
    rows = pd.DataFrame({"prompt": ["fire", "the big storm near my house today", "a flood in the town"]})
    together = Predictor(model, tokenizer, task, batch_size=3).predict(rows)
    alone = [Predictor(model, tokenizer, task, batch_size=1).predict(rows.iloc[[i]])["generated"].iloc[0]
             for i in range(3)]
    assert together["generated"].tolist() == alone
    assert all(together["generated_tokens"] > 0)


def test_stream_renders_messages_with_the_template_and_the_system_prompt(tokenizer, model):
    task = TextGenerationTask(TextGenerationArguments(system_prompt="so lovely", max_new_tokens=5))
    ids = task.context_ids({"messages": CHAT[:1]}, tokenizer)
    assert tokenizer.decode(ids).startswith("<|im_start|>system\nso lovely<|im_end|>\n<|im_start|>user\n")
    assert tokenizer.decode(ids).endswith("<|im_end|>\n<|im_start|>assistant\n")
    streamed = "".join(task.stream(model, tokenizer, {"messages": CHAT[:1]}))
    assert streamed.strip() == task.complete(model, tokenizer, {"messages": CHAT[:1]})


def test_generate_command_prints_a_completion_and_fills_a_file(tiny_llama_dir, tmp_path, capsys):
    assert main(["generate", "--model", str(tiny_llama_dir), "--prompt", "the fire", "--max_new_tokens", "4"]) == 0
    assert capsys.readouterr().out.strip()
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "the fire", "id": 1}\n{"messages": [{"role": "user", "content": "a flood"}]}\n',
                       encoding="utf-8")
    output = tmp_path / "out.jsonl"
    assert main(["generate", "--model", str(tiny_llama_dir), "--input", str(prompts), "--output", str(output),
                 "--max_new_tokens", "4", "--raw"]) == 0
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["id"] == 1 and "generated" in lines[0] and "messages" in lines[1] and "generated" in lines[1]


def test_generate_command_refuses_a_bad_prompts_file_in_one_line(tiny_llama_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"text": "no prompt"}\n', encoding="utf-8")
    assert main(["generate", "--model", str(tiny_llama_dir), "--input", str(prompts)]) == 2
    assert "line 1" in capsys.readouterr().err


def test_chat_command_streams_replies_keeps_history_and_resets(tiny_llama_dir, monkeypatch, capsys):
    from textune.tasks.text_generation import interactive as chat

    seen = []
    original = chat.Generator.stream

    def recording(self, given):
        seen.append([m["content"] for m in given["messages"]])
        return original(self, given)

    monkeypatch.setattr(chat.Generator, "stream", recording)
    monkeypatch.setattr("sys.stdin", io.StringIO("the fire\na flood\n/reset\nthe storm\n/exit\nnever read\n"))
    assert main(["chat", "--model", str(tiny_llama_dir), "--max_new_tokens", "3", "--system", "so lovely"]) == 0
    assert "(history cleared)" in capsys.readouterr().out
    assert seen[0] == ["the fire"] and seen[1][0] == "the fire" and seen[1][-1] == "a flood" and len(seen[1]) == 3
    assert seen[2] == ["the storm"] and len(seen) == 3


def test_a_tokenizer_without_a_chat_template_is_refused_with_a_fix_for_each_command(tiny_llama_dir, tmp_path,
                                                                                    capsys):
    import shutil

    base = tmp_path / "base"  # the tiny Llama as a base model: its tokenizer has no chat template
    shutil.copytree(tiny_llama_dir, base)
    (base / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((base / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    assert main(["chat", "--model", str(base), "--max_new_tokens", "2"]) == 2
    error = capsys.readouterr().err.strip()
    assert "Traceback" not in error  # one line, after the weights' loading bar
    assert "textune chat" in error and "no chat template" in error and "textune generate --raw" in error
    assert main(["generate", "--model", str(base), "--prompt", "hi", "--chat_template"]) == 2
    assert "drop --chat_template, or pass --raw" in capsys.readouterr().err
    assert main(["generate", "--model", str(base), "--prompt", "the fire", "--max_new_tokens", "2"]) == 0


def test_train_takes_trl_flag_names_max_length_among_them():
    from textune.cli import parse_train_args

    parsed = parse_train_args(["--task", "text-generation", "--model_name_or_path", "m", "--train_file", "t.jsonl",
                               "--max_length", "64", "--packing", "--no_completion_only_loss", "--output_dir", "o"])
    task_args = next(item for item in parsed if isinstance(item, TextGenerationArguments))
    assert (task_args.max_seq_length, task_args.packing, task_args.completion_only_loss) == (64, True, False)


def test_a_run_trained_on_chat_messages_predicts_a_jsonl_file_of_conversations(tiny_llama_dir, tmp_path):
    rows = seq2seq_rows(16, 1)
    conversations = [{"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": spanish}]}
                     for text, spanish in zip(rows["text"], rows["spanish"])]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in conversations), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--model_name_or_path", str(tiny_llama_dir), "--train_file", str(train), "--do_train",
                 "--max_steps", "1", "--max_new_tokens", "3", "--output_dir", str(run)]) == 0
    output = tmp_path / "out.csv"
    assert main(["predict", "--model", str(run), "--input", str(train), "--output", str(output)]) == 0
    written = pd.read_csv(output, keep_default_na=False)
    assert len(written) == 16 and written["completion"].tolist() == rows["spanish"].tolist()
    assert json.loads(written["prompt"][0]) == conversations[0]["messages"][:1]


def test_a_bad_sampling_flag_is_one_line_before_the_model_loads(tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path / "nowhere"), "--prompt", "x", "--temperature", "0"]) == 2
    assert "--temperature must be above 0" in capsys.readouterr().err
