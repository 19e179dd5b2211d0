"""What the machine can do fast: which mixed precision to train in, decided once from the hardware.

bf16 autocast only pays where the chip computes in bf16 natively (AVX-512 BF16 or AMX on CPUs, Ampere or newer
on NVIDIA GPUs). Elsewhere PyTorch emulates bf16 matmuls by converting to fp32 and back, which is slower than
plain fp32 (measured 6-7x slower for MiniLM inference on an AVX2-only CPU), so `--bf16 auto` picks fp32 there.
"""

from __future__ import annotations

import logging

from ..errors import TextuneError

logger = logging.getLogger(__name__)

TRUE = ("true", "yes", "1", "on")
FALSE = ("false", "no", "0", "off")


def cpu_has_native_bf16() -> bool:
    """True if this CPU has bf16 matrix instructions (AVX-512 BF16 or AMX), so bf16 autocast is faster than fp32."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def accelerator_has_bf16() -> bool:
    """True if a CUDA GPU is present and computes bf16 natively (Ampere or newer)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_bf16(value: str | bool, fp16: bool, use_cpu: bool) -> bool:
    """Turn `--bf16 auto|true|false` into the bool TrainingArguments expects.

    `auto` means bf16 mixed precision where the hardware runs it natively: an Ampere+ GPU, or a CPU with
    AVX-512 BF16/AMX when training on the CPU. `--fp16` wins over `auto`.

    Raises:
        TextuneError: `value` is none of auto/true/false (or their yes/no/1/0 spellings).
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    if text != "auto":
        raise TextuneError(f"--bf16 {value!r} is not known: use auto, true or false")
    if fp16:
        return False
    import torch

    on_cpu = use_cpu or not torch.cuda.is_available()
    return cpu_has_native_bf16() if on_cpu else accelerator_has_bf16()


def describe_precision(bf16: bool, fp16: bool) -> str:
    """One line for the log: which precision a run uses and why, so a slow or fast run is explained."""
    import torch

    if fp16:
        return "fp16 mixed precision"
    if bf16:
        return "bf16 mixed precision (autocast)"
    if torch.cuda.is_available():
        return "fp32 (this GPU has no native bf16; pass --fp16 for mixed precision)"
    reason = "" if cpu_has_native_bf16() else " (this CPU has no native bf16, where bf16 would be slower)"
    return f"fp32 on {torch.get_num_threads()} CPU threads{reason}"


def accelerator_present() -> bool:
    """True if Trainer would train on an accelerator (CUDA, XPU or Apple MPS) rather than the CPU."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    xpu = getattr(torch, "xpu", None)
    return (torch.cuda.is_available() or (mps is not None and mps.is_available())
            or (xpu is not None and xpu.is_available()))
