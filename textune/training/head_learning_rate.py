"""A higher learning rate for the parameters a checkpoint did not provide: the task's new head.

A pretrained encoder wants a small learning rate (2e-5 is the usual BERT value); a randomly initialised head
at that rate barely moves from its initial 0.02-scale weights in a short run, and while its outputs stay near
zero it passes only small gradients to the encoder. So the head trains at `--head_learning_rate`
(default: `HEAD_LR_MULTIPLIER` x `--learning_rate`), the encoder at `--learning_rate`; the schedule (warmup,
decay) applies to both. The same split of rates is what setfit does (body 2e-5, head 1e-2) and what
"discriminative learning rates" (Howard & Ruder 2018) recommend.

BERT's pooler (a dense layer and tanh over the first token) counts as head when the head is new: sentence
encoders such as all-MiniLM-L6-v2 are trained through mean pooling, so their pooler weights are left from
pre-training and were never trained to summarise a text.

Which parameters are new is recorded on the model when it is built (`mark_new_parameters`), from what
`from_pretrained` reports as missing or resized, so a checkpoint that already has a trained head of the right
shape keeps one learning rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

HEAD_LR_MULTIPLIER = 50
_ATTRIBUTE = "textune_new_parameters"
# What wrappers applied before the optimizer is built (FSDP, activation checkpointing, torch.compile) insert into
# parameter names; DDP wraps only afterwards.
_WRAPPER_PARTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def mark_new_parameters(model: nn.Module, names) -> None:
    """Record which of `model`'s parameters are newly initialised (plus the pooler, when any are)."""
    names = set(names)
    if names:
        names |= {f"{module}.{param}" if module else param
                  for module, child in model.named_modules() if module.split(".")[-1] == "pooler"
                  for param, _ in child.named_parameters()}
    setattr(model, _ATTRIBUTE, tuple(sorted(names)))


def new_parameter_names(model: nn.Module) -> tuple[str, ...]:
    return getattr(model, _ATTRIBUTE, ())


def resolve_head_learning_rate(head_learning_rate: float | None, learning_rate: float) -> float:
    """The head's rate: as given, or `HEAD_LR_MULTIPLIER` x the encoder's."""
    return learning_rate * HEAD_LR_MULTIPLIER if head_learning_rate is None else head_learning_rate


def _plain_name(name: str) -> str:
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    return name


def split_head_parameters(optimizer, model: nn.Module, names, head_learning_rate: float) -> list[str]:
    """Move `names` of `model` out of `optimizer`'s groups into copies of those groups at `head_learning_rate`.

    Called on a fresh optimizer (no state yet), before the learning-rate scheduler records each group's rate.
    Weight decay and every other setting of a group carry over. Returns the names moved.
    """
    names = set(names)
    head = {id(p): n for n, p in model.named_parameters() if _plain_name(n) in names}
    if not head or not hasattr(optimizer, "param_groups"):
        return []
    moved_groups = []
    for group in optimizer.param_groups:
        moved = [p for p in group["params"] if id(p) in head]
        if moved:
            group["params"] = [p for p in group["params"] if id(p) not in head]
            moved_groups.append({**{k: v for k, v in group.items() if k not in ("params", "initial_lr")},
                                 "params": moved, "lr": head_learning_rate})
    optimizer.param_groups[:] = [group for group in optimizer.param_groups if group["params"]]
    for group in moved_groups:
        optimizer.add_param_group(group)
    return sorted(head.values())
