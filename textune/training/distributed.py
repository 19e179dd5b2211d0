"""One run, several processes (torchrun, accelerate launch): which process writes shared files, and waiting for the rest.

Trainer already shards the training data, all-reduces gradients, gathers evaluation over the whole validation set
and writes checkpoints from the main process only. These helpers cover textune's own steps around it: emptying
the output folder, moving the final model into place, stopping on a signal at the same step everywhere. With one
process (or before torch.distributed is set up) every helper is a no-op that answers as the only process would.

Example:
    >>> from textune.training.distributed import barrier, is_main_process
    >>> if is_main_process():
    ...     write_shared_file()
    >>> barrier()                     # the others read the file only once it is there
"""

from __future__ import annotations

import os
import sys


def launched_on_several_processes() -> bool:
    """True when a launcher (torchrun, accelerate launch) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _process_group():
    """torch.distributed if a process group of several processes is set up, else None."""
    # no group can exist before torch.distributed is imported, and importing torch only to learn that would
    # cost every CLI command a second or two
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist
    return None


def is_main_process() -> bool:
    """True on the process that writes the run's shared files and logs: global rank 0, or the only process.

    Before the process group exists (e.g. while the CLI sets up logging) the launcher's RANK variable decides.
    """
    dist = _process_group()
    if dist is not None:
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def barrier() -> None:
    """Wait until every process gets here (no-op with one process)."""
    dist = _process_group()
    if dist is not None:
        dist.barrier()


def max_over_processes(value: int, device=None) -> int:
    """The largest `value` any process holds, so that all processes take the same decision (e.g. to stop).

    Args:
        value: This process's value.
        device: Where the collective runs: the training device (NCCL only reduces GPU tensors).
    """
    dist = _process_group()
    if dist is None:
        return value
    import torch

    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())
