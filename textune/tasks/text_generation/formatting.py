"""Turning text-generation rows into token ids and loss targets: raw prompt/completion pairs, chat conversations
rendered with the tokenizer's chat template (assistant turns are the targets), plain text, and packing.

Label -100 marks a position the loss skips (PyTorch's `ignore_index`, which the causal LM's loss uses).
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

from ...errors import TextuneError

IGNORE = -100
ROLES = ("system", "user", "assistant", "tool", "developer")


@dataclass
class Example:
    """One row's tokens: what the model reads (`ids`), and which of them the loss trains on (`labels`)."""

    ids: list[int]
    labels: list[int]


def as_messages(value: Any, where: str, column: str, number: int) -> list[dict]:
    """A conversation as a list of {"role", "content"}: from JSONL's lists, or a cell holding their JSON text (CSV,
    or `textune predict`, which reads every column as text).

    Raises:
        TextuneError: The value is not such a list (naming the file, column and row).
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            try:  # pandas wrote a Python list's repr (str() of a JSONL cell); literal_eval runs no code
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = None
    if hasattr(value, "tolist") and not isinstance(value, (list, dict)):
        value = value.tolist()  # Parquet gives numpy arrays
    problem = None
    if not isinstance(value, list) or not value:
        problem = "is not a non-empty list of messages"
    else:
        for message in value:
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                problem = "has a message without text \"content\""
                break
            if message.get("role") not in ROLES:
                problem = f"has a message whose role is {message.get('role')!r}, not one of {', '.join(ROLES)}"
                break
    if problem:
        raise TextuneError(f"{where}: row {number}'s {column!r} {problem}; write each row as "
                           "[{\"role\": \"user\", \"content\": \"...\"}, {\"role\": \"assistant\", \"content\": "
                           "\"...\"}] (--messages_column names the column)")
    return [{"role": message["role"], "content": message["content"]} for message in value]


def with_system(messages: list[dict], system_prompt: str | None) -> list[dict]:
    """The conversation with `system_prompt` as its first message when it has no system message of its own."""
    if system_prompt and not any(message["role"] == "system" for message in messages):
        return [{"role": "system", "content": system_prompt}] + list(messages)
    return list(messages)


def split_reply(messages: list[dict]) -> tuple[list[dict], str | None]:
    """The conversation before its last assistant reply, and that reply (None when it does not end with one)."""
    if messages and messages[-1]["role"] == "assistant":
        return messages[:-1], messages[-1]["content"]
    return messages, None


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_ids(tokenizer, messages: list[dict], add_generation_prompt: bool) -> list[int]:
    """The token ids of a conversation as the chat template writes it (the template adds its own special tokens).

    Raises:
        TextuneError: The tokenizer has no chat template.
    """
    if not has_chat_template(tokenizer):
        raise TextuneError("the model's tokenizer has no chat template, so it cannot read messages; use a chat model "
                           "(an -Instruct one) or prompt/completion columns")
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def chat_example(tokenizer, messages: list[dict], assistant_only: bool) -> Example:
    """A conversation's ids, with targets on the assistant turns only (`assistant_only`) or on every token.

    The assistant spans are found by rendering the conversation message by message: the tokens a reply adds after
    the template's generation prompt (its text and end-of-turn token) are targets. This works with any template,
    also those without the `{% generation %}` markers `return_assistant_tokens_mask` needs; where a template
    rewrites earlier turns (some drop past reasoning), only the common prefix is kept as context.
    """
    ids = render_ids(tokenizer, messages, add_generation_prompt=False)
    if not assistant_only:
        return Example(ids, list(ids))
    labels = [IGNORE] * len(ids)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = _common_prefix(ids, render_ids(tokenizer, messages[:index], add_generation_prompt=True)) \
            if index else 0
        end = _common_prefix(ids, render_ids(tokenizer, messages[:index + 1], add_generation_prompt=False))
        labels[start:end] = ids[start:end]
    return Example(ids, labels)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


def prompt_completion_example(tokenizer, prompt: str, completion: str, completion_only: bool) -> Example:
    """A raw prompt then its completion and the end-of-sequence token; the prompt is masked when `completion_only`.

    The two are tokenized apart and joined, which is how the model sees them when it generates from the prompt.
    """
    prompt_ids = tokenizer(prompt)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + _eos(tokenizer)
    prompt_labels = [IGNORE] * len(prompt_ids) if completion_only else list(prompt_ids)
    return Example(prompt_ids + completion_ids, prompt_labels + completion_ids)


def text_example(tokenizer, text: str) -> Example:
    """Plain text then the end-of-sequence token, every token a target."""
    ids = tokenizer(text)["input_ids"] + _eos(tokenizer)
    return Example(ids, list(ids))


def _eos(tokenizer) -> list[int]:
    return [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []


def truncate(example: Example, limit: int) -> Example:
    return Example(example.ids[:limit], example.labels[:limit])


def pack(examples: list[Example], block: int) -> dict[str, list[list[int]]]:
    """Examples concatenated into rows of `block` tokens (the last may be shorter), with their labels' masks, and
    position ids that restart at each example: transformers' attention then keeps examples apart (it reads packed
    sequences from position ids when no attention mask is given), and each example keeps the positions it has alone.
    An example longer than a block was already cut to `block` tokens; one that does not fit the rest of a block
    starts the next block rather than being split."""
    rows: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []

    def flush() -> None:
        if ids:
            rows["input_ids"].append(list(ids))
            rows["labels"].append(list(labels))
            rows["position_ids"].append(list(positions))
            ids.clear(), labels.clear(), positions.clear()

    for example in examples:
        if len(ids) + len(example.ids) > block:
            flush()
        ids.extend(example.ids)
        labels.extend(example.labels)
        positions.extend(range(len(example.ids)))
    flush()
    return rows


def given(value) -> bool:
    """Whether a cell holds something (pandas gives NaN or None for a missing one; a list is truthy as a list)."""
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and not value.strip())


def prediction_features(settings, rows, tokenizer) -> dict[str, list]:
    """Prediction features of `rows` under the task's settings `s`: each row's prompt (a conversation rendered with
    its generation prompt, a raw prompt, or a plain text) followed by its reference when it has one, with where
    the prompt ends (`prompt_length`: generation starts there) and where the scored tokens start (`target_start`).
    A prompt longer than --max_seq_length keeps its end, which the reply follows."""
    s = settings
    limit = s.max_seq_length
    features: dict[str, list] = {"input_ids": [], "attention_mask": [], "prompt_length": [], "target_start": []}
    for row in rows.to_dict("records"):
        messages = row.get(s.messages_column)
        if given(messages):
            conversation, reply = split_reply(with_system(
                as_messages(messages, "input", s.messages_column, 0), s.system_prompt))
            context = render_ids(tokenizer, conversation, add_generation_prompt=True)
            whole = (chat_example(tokenizer, conversation + [{"role": "assistant", "content": reply}], True).ids
                     if reply is not None else context)
            target_start = len(context)
        elif s.prompt_column in row:
            context = tokenizer(str(row[s.prompt_column]))["input_ids"]
            completion = str(row.get(s.completion_column) or "")
            whole = prompt_completion_example(tokenizer, str(row[s.prompt_column]), completion, True).ids \
                if completion.strip() else context
            target_start = len(context)
        else:
            text = str(row.get(s.dataset_text_field, ""))
            context = tokenizer(text)["input_ids"]
            whole = text_example(tokenizer, text).ids
            target_start = 1  # every token but the first, which nothing predicts
        if len(context) > limit:  # the prompt's end is what the reply follows
            whole, context = context[-limit:], context[-limit:]
            target_start = len(context)
        whole = whole[:max(limit, len(context))]
        features["input_ids"].append(whole)
        features["attention_mask"].append([1] * len(whole))
        features["prompt_length"].append(max(len(context), 1))
        features["target_start"].append(min(target_start, len(whole)))
    return features


def shown(input: str | dict, as_json: bool = False) -> str:
    """An API input as one line of text: the prompt, or the conversation (its last message, or all as JSON)."""
    if isinstance(input, dict):
        messages = input.get("messages") or []
        if as_json:
            return json.dumps(messages, ensure_ascii=False)
        return messages[-1]["content"] if messages else ""
    return input


def has_reply(value) -> bool:
    """Whether a messages cell is a conversation with an assistant turn to train on."""
    try:
        return given(value) and any(m["role"] == "assistant" for m in as_messages(value, "", "", 0))
    except TextuneError:
        return False
