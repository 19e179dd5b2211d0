"""Plug your own head and metric into textune, train with them, and reload the run without loading code.

    python examples/custom_head_and_metric.py --train_file my.csv --label_column_name target

The head is any nn.Module from the pooled encoder output (batch, hidden) to logits (batch, labels);
the metric is any callable (predictions, references) -> dict. Both are registered by name, so the CLI
(`--head gated --metric_name error_rate`), config files and saved runs refer to them by that name.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from textune import (ClassificationArguments, DataArguments, ModelArguments, Predictor, TextuneTrainingArguments, register_head,
                     register_metric, train)


class GatedHead(nn.Module):
    """A learned gate decides, per feature, how much of the sentence vector reaches the classifier."""

    def __init__(self, hidden: int, num_labels: int, dropout: float):
        super().__init__()
        self.gate = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_labels)
        self.calls = 0  # so you (and the tests) can see the head really runs

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.classifier(self.dropout(pooled * torch.sigmoid(self.gate(pooled))))


def error_rate(predictions, references) -> dict:
    """Share of wrong predictions: 1 - accuracy, as a named metric."""
    return {"error_rate": float(np.mean(np.asarray(predictions) != np.asarray(references)))}


register_head("gated", GatedHead, pooling="mean")
register_metric("error_rate", error_rate)


def main(argv=None) -> Predictor:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_file", default=None, help="Default: the packaged disaster tweets.")
    parser.add_argument("--label_column_name", default=None)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--max_steps", type=int, default=-1)
    parser.add_argument("--output_dir", default="runs/custom-head")
    args = parser.parse_args(argv)

    result = train(
        ModelArguments(args.model),
        DataArguments(train_file=args.train_file),
        TextuneTrainingArguments(output_dir=args.output_dir, overwrite_output_dir=True, num_train_epochs=1,
                                 max_steps=args.max_steps, do_train=True, do_eval=True,
                                 metric_for_best_model="error_rate", greater_is_better=False),
        ClassificationArguments(label_column_name=args.label_column_name, metric_name="error_rate", head="gated"),
    )
    print("validation error rate:", round(result.metrics["eval"]["eval_error_rate"], 3))
    predictor = Predictor.from_run(args.output_dir)  # rebuilds the gated head from the run folder
    print(predictor.predict(["the river flooded the town", "a quiet evening at home"]))
    return predictor


if __name__ == "__main__":
    main()
