"""Generating with a causal LM for the text-generation task: where a reply ends, scoring reference tokens
(negative log-likelihood, for perplexity), and generating for prompts of different lengths together."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...inference.causal_engines import ModelEngine, pad_token_id
from ...inference.generation import GenerationSettings, seed_sampling
from .formatting import IGNORE

# End-of-turn tokens of common chat templates: generation stops at them as at the end-of-sequence token
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")
NLL_ROWS = 4  # rows per forward pass when scoring references: the vocabulary's logits of 32 rows x 512 tokens x
# 49k words would take gigabytes


def reference_nll(model, ids, mask, target_start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's summed negative log-likelihood of its tokens from `target_start` on (real tokens only), and their
    count; zeros where a row has none (no forward pass at all when no row has any)."""
    import torch

    nll, count = np.zeros(len(ids), dtype=np.float32), np.zeros(len(ids), dtype=np.float32)
    if not (target_start < mask.sum(dim=1).cpu().numpy()).any():
        return nll, count
    labels = ids.clone()
    positions = torch.arange(ids.shape[1], device=ids.device)[None, :]
    starts = torch.as_tensor(target_start, device=ids.device)[:, None]
    labels[(positions < starts) | (mask == 0)] = IGNORE
    with torch.inference_mode():
        for start in range(0, len(ids), NLL_ROWS):
            rows = slice(start, start + NLL_ROWS)
            row_nll, row_count = token_nll(model(input_ids=ids[rows], attention_mask=mask[rows]).logits,
                                           labels[rows])
            nll[rows], count[rows] = row_nll.float().cpu().numpy(), row_count.float().cpu().numpy()
    return nll, count


def generate_after(model, tokenizer, contexts: list[list[int]], settings: GenerationSettings) -> list[list[int]]:
    """The new tokens generated after each context, up to (not including) the end-of-turn token; the contexts
    are padded on the LEFT together, so each continues from its own last token."""
    import torch

    width = max(len(context) for context in contexts)
    stops = stop_token_ids(model, tokenizer)
    pad = pad_token_id(model, stops)
    ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts], dtype=torch.long, device=model.device)
    mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts], dtype=torch.long,
                        device=model.device)
    seed_sampling(settings)
    with torch.inference_mode():
        output = model.generate(input_ids=ids, attention_mask=mask, **settings.generate_kwargs(),
                                eos_token_id=stops, pad_token_id=pad)
    new = output[:, width:].tolist()
    return [row[:next((k for k, token in enumerate(row) if token in stops), len(row))] for row in new]


def stop_token_ids(model, tokenizer) -> list[int]:
    """The tokens that end a reply: the generation config's end-of-sequence ids, the tokenizer's, and the
    end-of-turn tokens of common chat templates the vocabulary has (<|im_end|>, <|eot_id|>, ...)."""
    ids: list[int] = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (configured if isinstance(configured, (list, tuple)) else [configured]) + [tokenizer.eos_token_id]:
        if value is not None and value not in ids:
            ids.append(int(value))
    vocabulary = tokenizer.get_vocab()
    ids += [vocabulary[token] for token in END_OF_TURN if token in vocabulary and vocabulary[token] not in ids]
    return ids


def token_nll(logits, labels):
    """Each row's summed negative log-likelihood of its target tokens (labels not -100) and their count: position t
    predicts label t+1, as the causal LM's loss reads them."""
    import torch

    shifted = logits[:, :-1, :].float()
    targets = labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(shifted.reshape(-1, shifted.shape[-1]), targets.reshape(-1),
                                               ignore_index=IGNORE, reduction="none").view(targets.shape)
    return losses.sum(dim=1), (targets != IGNORE).sum(dim=1)


def target_nll(logits, labels):
    """Trainer's evaluation outputs for `decode`: "not generated" (-1), then `token_nll`'s two per-row values."""
    import torch

    logits = logits[0] if isinstance(logits, (tuple, list)) else logits
    nll, count = token_nll(logits, labels)
    return torch.full((len(nll), 1), -1.0, device=nll.device), nll.float(), count.float()


def _engine_for(engine, model, settings: GenerationSettings, stops: list[int]):
    """`engine`, or the model in memory where a seeded sample must repeat and `engine` cannot repeat one."""
    if settings.do_sample and settings.seed is not None and not engine.repeats_seeded_samples:
        return ModelEngine(model, stops)
    return engine


def engine_generate(engine, model, tokenizer, contexts: list[list[int]], settings: GenerationSettings):
    """`generate_after` through a causal engine: the same contexts in, the new tokens out (each prompt alone, as
    the engine pads nothing)."""
    stops = stop_token_ids(model, tokenizer)
    return _engine_for(engine, model, settings, stops).generate(contexts, settings, stops)


def engine_stream(engine, model, tokenizer, context: list[int], settings: GenerationSettings) -> Iterator[str]:
    """One context's generated text through a causal engine, piece by piece: the tokens so far decoded together
    (a word or a multi-byte character can span tokens), and what is new sent once it is whole."""
    ids: list[int] = []
    shown = ""
    stops = stop_token_ids(model, tokenizer)
    tokens = _engine_for(engine, model, settings, stops).stream(context, settings, stops)
    try:
        for token in tokens:
            ids.append(token)
            text = tokenizer.decode(ids, skip_special_tokens=True)
            if text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                continue
            if len(text) > len(shown) and text.startswith(shown):
                yield text[len(shown):]
                shown = text
        text = tokenizer.decode(ids, skip_special_tokens=True)
        if len(text) > len(shown) and text.startswith(shown):  # what was held back: the output ended there
            yield text[len(shown):]
    finally:
        tokens.close()  # the reader went away: the engine stops generating
