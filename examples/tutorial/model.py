"""Model module: which pretrained encoder to start from, and which head sits on top of it.

`minilm` is the packaged all-MiniLM-L6-v2; any hub id or local folder works. Heads: linear (transformers'
own), mlp, mean_pool, multisample_dropout, or one you register (see ../custom_head_and_metric.py).
"""

from __future__ import annotations

from textune import ModelArguments

BACKBONE = "minilm"
HEAD = "mean_pool"  # MiniLM was trained to be read through the mean of its token vectors


def model_arguments(backbone: str | None = None) -> ModelArguments:
    return ModelArguments(model_name_or_path=backbone or BACKBONE, head=HEAD)
