"""Inference backends for `Predictor`: each runs a padded batch of token ids and returns the model's outputs, one
float32 array per name in the task's `output_names`, in that order.

Built in: `torch` (fp32 PyTorch, the reference), `torch-int8` (dynamic int8 linear layers, no export step),
`torch-bf16` (bf16 autocast: only fast on chips with native bf16), `onnx` and `onnx-int8` (ONNX Runtime on the
files `textune export` writes into a run folder). `auto` uses what training measured and recorded in the run's
backend.json (textune/backend_choice.py); in a run without that record, an exported ONNX model whose parity
record shows it agrees with PyTorch, else `torch`.

Example:
    >>> from textune import Predictor
    >>> Predictor.from_run("runs/tweets", backend="onnx").predict(["Forest fire near La Ronge"])
    >>> from textune.inference.backends import BackendSpec, register_backend   # a backend of your own
    >>> register_backend(BackendSpec("my-backend", "what it is", lambda source: MyBackend(source.run_dir)))
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..errors import TextuneError
from ..training.hardware import cpu_has_native_bf16

logger = logging.getLogger(__name__)

AUTO = "auto"
# auto trusts an exported model only at this agreement with PyTorch's answers (records), whatever threshold it was
# exported with: a model kept with a lower `--min_agreement` is used only when asked for by name.
AUTO_MIN_AGREEMENT = 0.99
# Exported files inside a run folder, by quantization (None: fp32). Each has a parity record next to it.
ONNX_FILES = {None: "model.onnx", "int8": "model_int8.onnx"}
INSTALL_ONNX = "pip install 'textune[onnx]' (or: pip install onnxruntime onnx)"


class Backend(Protocol):
    """Runs one padded batch: int64 arrays (input_ids, attention_mask, token_type_ids when the model uses
    them), each (batch, sequence), to the model's outputs: a tuple of float32 arrays, batch first, in the order
    of the task's `output_names` (one (batch, classes) array, or a span task's (batch, sequence) pair)."""

    name: str

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]: ...


@dataclass
class BackendSource:
    """What a backend may be built from: the run folder (None for a model held in memory) and the PyTorch
    model, loaded only when a backend asks for it (an ONNX backend never does)."""

    run_dir: Path | None
    load_torch_model: Callable[[], object]
    # The task's `output_names`: the outputs a backend returns, in this order.
    output_names: tuple[str, ...]
    # A batch job (predict or evaluate on a file) owns the cores: a backend may keep its threads spinning between
    # runs, which ONNX Runtime does by default and which made `textune predict` ~12% faster. Elsewhere (a server,
    # a notebook, a benchmark timing several backends in one process) spinning threads take the cores from the
    # event loop, the tokenizer and other models, so it is off.
    batch_job: bool = False


@dataclass(frozen=True)
class BackendSpec:
    """A named backend and how to build it.

    Attributes:
        name: What `--backend` and `Predictor(backend=...)` take.
        description: One line for `--help`.
        build: `BackendSource -> Backend`; raises TextuneError when it cannot run (a missing file or package).
            It calls `source.load_torch_model()` only if it needs the PyTorch model, which is loaded only then.
    """

    name: str
    description: str
    build: Callable[[BackendSource], Backend]


BACKENDS: dict[str, BackendSpec] = {}


def register_backend(spec: BackendSpec) -> None:
    """Make `spec.name` usable as `--backend` and `Predictor(..., backend=name)`."""
    BACKENDS[spec.name] = spec


def backend_names() -> list[str]:
    return [AUTO, *BACKENDS]


def backend_spec(name: str) -> BackendSpec:
    if name not in BACKENDS:
        raise TextuneError(f"--backend {name!r} is not known; use one of {', '.join(backend_names())}")
    return BACKENDS[name]


# -- PyTorch ---------------------------------------------------------------------------------------------------


class TorchBackend:
    """The model itself, without autograd; optionally under bf16 autocast. Returns the model output's fields named
    by `output_names`."""

    def __init__(self, model, output_names: tuple[str, ...], bf16: bool = False):
        self.model = model.eval()
        self.bf16 = bf16
        self.output_names = tuple(output_names)
        self.name = "torch-bf16" if bf16 else "torch"

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        import torch

        device = next(self.model.parameters()).device
        inputs = {key: torch.from_numpy(value).to(device) for key, value in batch.items()}
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
            output = self.model(**inputs)
            return tuple(output[name].float().cpu().numpy() for name in self.output_names)


def _build_torch_bf16(source: BackendSource) -> Backend:
    import torch

    model = source.load_torch_model()
    on_cpu = next(model.parameters()).device.type == "cpu"
    if on_cpu and not cpu_has_native_bf16():
        # PyTorch emulates bf16 matmuls here (fp32 with conversions): 6-7x slower than fp32 for MiniLM inference
        # on an AVX2-only CPU (textune/hardware.py).
        logger.warning("--backend torch-bf16: this CPU has no native bf16 (AVX-512 BF16 or AMX), so bf16 runs "
                       "several times slower than --backend torch")
    elif not on_cpu and not torch.cuda.is_bf16_supported():
        logger.warning("--backend torch-bf16: this GPU has no native bf16; expect it to be slower than fp32")
    return TorchBackend(model, source.output_names, bf16=True)


def _build_torch_int8(source: BackendSource) -> Backend:
    model = source.load_torch_model()
    if next(model.parameters()).device.type != "cpu":
        raise TextuneError("--backend torch-int8 runs on the CPU only; use --backend torch on a GPU")
    backend = TorchBackend(quantize_linear_int8(model), source.output_names)
    backend.name = "torch-int8"
    return backend


def quantize_linear_int8(model):
    """A copy of `model` whose encoder Linear layers run in dynamic int8 (weights per output channel, activations
    quantized per batch at run time); `model` itself is left as it is.

    Only the Linear layers inside the numbered blocks of the encoder (`layer.N` / `layers.N`) are quantized, as the
    ONNX int8 export does (textune/inference/export.py `quantize_int8`). Kept in fp32: the first block, whose
    inputs straight out of the embeddings' LayerNorm have the outliers per-tensor activation scales handle
    worst, and every layer after the blocks (pooler, the task's output layers), small ones where int8 saves
    nothing and moves the outputs most.
    Needs no export step: PyTorch's eager dynamic quantization, deprecated in favour of torchao but still in
    torch 2.13 (its deprecation warnings say nothing a user can act on, so they are silenced here).

    Raises:
        TextuneError: This PyTorch has no eager dynamic quantization any more.
    """
    import re
    import warnings

    import torch

    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError:
        raise TextuneError(f"--backend torch-int8 needs torch.ao.quantization, which torch {torch.__version__} "
                           "no longer has; use --backend onnx-int8 (textune export RUN --quantize int8)") from None
    # Module paths: encoder.layer.N (BERT family), layers.N / layer.N elsewhere; only the encoder's blocks.
    names = {name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)
             and re.search(r"(^|\.)layers?\.\d+\.", name) and not re.search(r"(^|\.)layers?\.0\.", name)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model.eval(), {name: per_channel_dynamic_qconfig for name in names},
                                dtype=torch.qint8, inplace=False)


register_backend(BackendSpec("torch", "PyTorch fp32 (the reference every other backend is checked against)",
                             lambda source: TorchBackend(source.load_torch_model(), source.output_names)))
register_backend(BackendSpec("torch-int8", "PyTorch with dynamic int8 linear layers (CPU; no export step)",
                             _build_torch_int8))
register_backend(BackendSpec("torch-bf16", "PyTorch under bf16 autocast (fast only with native bf16)",
                             _build_torch_bf16))


# -- ONNX Runtime ----------------------------------------------------------------------------------------------


class OnnxBackend:
    """An ONNX Runtime session on an exported model, on the CPU, with every graph optimization on."""

    def __init__(self, path: str | Path, output_names: tuple[str, ...], threads: int | None = None, name: str = "onnx",
                 spinning: bool = False):
        ort = import_onnxruntime(f"--backend {name}")
        import torch

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # torch's default is one thread per physical core, and OMP_NUM_THREADS / torch.set_num_threads change
        # it: one knob for every backend. Hyperthreads only slow these matmul-bound kernels down.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Spinning threads wait for the next run without sleeping: faster for a batch job that owns the cores, but
        # they take the cores from the tokenizer, a server's threads and any other model in the process (which
        # made other backends look slower in turns). See BackendSource.batch_job.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        self.path = Path(path)
        self.name = name
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [node.name for node in self.session.get_inputs()]
        exported = [node.name for node in self.session.get_outputs()]
        missing = [name for name in output_names if name not in exported]
        if missing:
            raise TextuneError(f"{self.path} has no output {missing[0]!r} of this run's task (it has "
                               f"{', '.join(exported)}); export it again: textune export RUN_DIR --format onnx")
        self.output_names = list(output_names)

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        missing = [name for name in self.inputs if name not in batch]
        if missing:
            raise TextuneError(f"{self.path} expects inputs {missing} that the run's tokenizer does not produce; "
                               "export it again from this run: textune export RUN_DIR --format onnx")
        feed = {name: batch[name].astype(np.int64, copy=False) for name in self.inputs}
        return tuple(np.asarray(value, dtype=np.float32) for value in self.session.run(self.output_names, feed))


def import_onnxruntime(needed_by: str):
    try:
        import onnxruntime
    except ImportError:
        raise TextuneError(f"{needed_by} needs ONNX Runtime: {INSTALL_ONNX}") from None
    return onnxruntime


def _onnx_builder(quantize: str | None, name: str) -> Callable[[BackendSource], Backend]:
    def build(source: BackendSource) -> Backend:
        if source.run_dir is None:
            raise TextuneError(f"--backend {name} reads an exported model from a run folder; "
                               "use Predictor.from_run(run_dir, backend=...)")
        path = source.run_dir / ONNX_FILES[quantize]
        flag = " --quantize int8" if quantize else ""
        if not path.exists():
            raise TextuneError(f"{source.run_dir} has no {path.name}; export it first: "
                               f"textune export {source.run_dir} --format onnx{flag}")
        problem = parity_problem(source.run_dir, quantize)
        if problem:
            logger.warning("--backend %s: %s (re-export: textune export %s --format onnx%s)",
                           name, problem, source.run_dir, flag)
        return OnnxBackend(path, source.output_names, name=name, spinning=source.batch_job)

    return build


register_backend(BackendSpec("onnx", "ONNX Runtime, fp32 (textune export RUN --format onnx)",
                             _onnx_builder(None, "onnx")))
register_backend(BackendSpec("onnx-int8", "ONNX Runtime, dynamic int8 (textune export RUN --format onnx "
                             "--quantize int8)", _onnx_builder("int8", "onnx-int8")))


# -- parity records and auto -----------------------------------------------------------------------------------


def parity_path(model_path: Path) -> Path:
    """The parity record of an exported model: model.onnx -> model.parity.json."""
    return model_path.with_name(model_path.name.removesuffix(".onnx") + ".parity.json")


def weights_fingerprint(run_dir: Path) -> str:
    """Identifies the run's weights cheaply: sizes plus a hash of the first and last MiB of each weights file.

    Retraining rewrites every tensor, so the sampled bytes change; hashing whole files would cost seconds at
    each load of a large model, and modification times change with an ordinary copy of the folder.
    """
    digest = hashlib.sha256()
    files = sorted([*run_dir.glob("*.safetensors"), *run_dir.glob("pytorch_model*.bin")])
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, size - (1 << 20)))
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]


def read_parity(model_path: Path) -> dict | None:
    path = parity_path(model_path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def parity_problem(run_dir: Path, quantize: str | None, min_agreement: float | None = None) -> str | None:
    """Why the exported model in `run_dir` should not be trusted (None: its parity record vouches for it).

    Args:
        run_dir: The run folder holding the export.
        quantize: None for model.onnx, "int8" for model_int8.onnx.
        min_agreement: Agreement of the answers required on top of the record passing its own export minimum.
    """
    path = run_dir / ONNX_FILES[quantize]
    record = read_parity(path)
    if record is None:
        return f"{path.name} has no readable parity record ({parity_path(path).name})"
    if not record.get("passed"):
        return f"{path.name} failed its parity check with PyTorch"
    if record.get("model_bytes") != path.stat().st_size:
        return f"{path.name} is not the file its parity record describes"
    if record.get("weights") != weights_fingerprint(run_dir):
        return f"{path.name} was exported from other weights than the run's current ones"
    agreement = record_agreement(record)
    if min_agreement is not None and agreement < min_agreement:
        return f"{path.name} agrees with PyTorch on {agreement:.1%} of answers, below {min_agreement:.0%}"
    return None


def record_agreement(record: dict) -> float:
    """A parity record's agreement with PyTorch (0 when it has none)."""
    # records written before tasks other than classification named it after labels
    return record.get("agreement", record.get("label_agreement", 0.0))


def choose_backend(run_dir: Path | None) -> str:
    """What `auto` means for this run folder on this machine.

    The backend training chose and recorded in backend.json (textune/backend_choice.py), while the run's weights
    are the ones it measured, else fp32. Where the record chose fp32 without measuring an ONNX export that
    `textune export` wrote since (or where there is no record: a run trained before it existed), the fastest
    exported model whose parity record passed (int8, then fp32) when ONNX Runtime is installed; else fp32.
    """
    if run_dir is None:
        return "torch"
    from .backend_choice import measured_backends, recorded_backend

    recorded = recorded_backend(run_dir)
    if recorded in ("onnx", "onnx-int8"):
        quantize = "int8" if recorded == "onnx-int8" else None
        problem = (f"{ONNX_FILES[quantize]} is missing" if not (run_dir / ONNX_FILES[quantize]).exists()
                   else parity_problem(run_dir, quantize, AUTO_MIN_AGREEMENT))
        try:
            import_onnxruntime(recorded)
        except TextuneError as error:
            problem = problem or str(error)
        if problem:
            logger.warning("backend auto: not using the recorded %s: %s; using torch fp32", recorded, problem)
            return "torch"
    if recorded not in (None, "torch"):
        return recorded
    measured = measured_backends(run_dir) if recorded else set()  # the record's verdict on these stands
    for quantize, name in (("int8", "onnx-int8"), (None, "onnx")):
        if name in measured or not (run_dir / ONNX_FILES[quantize]).exists():
            continue
        problem = parity_problem(run_dir, quantize, AUTO_MIN_AGREEMENT)
        if problem:
            logger.info("backend auto: not using %s: %s", ONNX_FILES[quantize], problem)
            continue
        try:
            import_onnxruntime(name)
        except TextuneError as error:
            logger.info("backend auto: %s; using PyTorch", error)
            return "torch"
        return name
    return "torch"


def build_backend(name: str, source: BackendSource) -> Backend:
    """Build backend `name` (or what `auto` means for `source.run_dir`).

    Raises:
        TextuneError: The name is not registered, or the backend cannot run (missing export or package).
    """
    resolved = choose_backend(source.run_dir) if name == AUTO else name
    backend = backend_spec(resolved).build(source)
    logger.info("inference backend: %s%s", resolved, " (auto)" if name == AUTO else "")
    return backend
