"""Model module: which pretrained encoder to start from, and which head sits on top of it.

`minilm` is the packaged all-MiniLM-L6-v2; any hub id or local folder works. Heads: linear (transformers'
own), mlp, mean_pool, multisample_dropout, or one you register (see ../custom_head_and_metric.py).
"""

from __future__ import annotations

from textune import ClassificationArguments, ModelArguments

BACKBONE = "minilm"
HEAD = "mean_pool"  # MiniLM was trained to be read through the mean of its token vectors


def model_arguments(backbone: str | None = None) -> ModelArguments:
    return ModelArguments(model_name_or_path=backbone or BACKBONE)


def task_arguments(**columns) -> ClassificationArguments:
    """The classification task's flags: the head, and the columns and token cap the data module names."""
    return ClassificationArguments(head=HEAD, **columns)
