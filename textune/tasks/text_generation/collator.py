"""Batches of causal-LM features: right-padded ids, labels padded with -100, and packed rows kept apart."""

from __future__ import annotations

from dataclasses import dataclass

from .formatting import IGNORE


@dataclass
class CausalCollator:
    """Pads a batch to its longest row: input ids with the pad token, labels with -100 (the loss skips them), the
    attention mask with 0. Packed rows (`position_ids`, no attention mask) pad their positions as one more short
    sequence, and run without the KV cache: transformers keeps packed examples apart only when there is neither an
    attention mask nor a cache."""

    pad_token_id: int

    def __call__(self, features: list[dict]):
        import torch

        width = max(len(feature["input_ids"]) for feature in features)
        batch: dict = {}
        fills = {"input_ids": self.pad_token_id, "labels": IGNORE, "attention_mask": 0}
        for name in features[0]:
            if name == "position_ids":
                rows = [list(f[name]) + list(range(width - len(f[name]))) for f in features]
            elif name in fills:
                rows = [list(f[name]) + [fills[name]] * (width - len(f[name])) for f in features]
            else:
                continue
            batch[name] = torch.tensor(rows, dtype=torch.long)
        if "position_ids" in batch:
            batch["use_cache"] = False
        return batch
