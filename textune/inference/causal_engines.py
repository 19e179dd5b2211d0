"""Engines that generate token ids with a causal language model folder, behind one small interface: transformers'
`generate` ("torch", the reference) or CTranslate2 ("ctranslate2", converted once into textune's cache).

Engines take and return token ids, never text: the tokenizer and the chat template stay with the caller, so every
engine sees exactly the same prompt. `stop_ids` end an output (they are not part of it); by default they are the
model's end-of-sequence ids from generation_config.json.

Built in (see `ENGINES`): `torch` (float32), `torch-bf16` (fast only on CPUs with native bf16), `ctranslate2`
(float32) and `ctranslate2-int8` (int8 weights and matmuls). `--backend auto` (`choose_engine`) is `ctranslate2`
where it is installed, runs the model and gives torch's greedy output on every parity prompt, else `torch`.
`benchmarks/generation_engines.py` measures them.

Example:
    >>> from textune.inference.causal_engines import load_engine
    >>> from textune.inference.generation import GenerationSettings
    >>> engine = load_engine("ctranslate2", "path/to/model")
    >>> engine.generate([prompt_ids], GenerationSettings(max_new_tokens=64))   # -> [[new ids]]
    >>> for token_id in engine.stream(prompt_ids, GenerationSettings(max_new_tokens=64)): ...
"""

from __future__ import annotations

import importlib.util
import json
import logging
import queue
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from ..cache import cached_folder, file_identity
from ..errors import TextuneError
from .generation import GenerationSettings, seed_sampling

logger = logging.getLogger(__name__)

AUTO = "auto"
INSTALL_CTRANSLATE2 = "pip install 'textune[fast-generation]' (or: pip install ctranslate2)"


# What an engine generates where the settings say nothing: greedy decoding of up to 128 new tokens.
ENGINE_DEFAULTS = GenerationSettings(max_new_tokens=128, num_beams=1, do_sample=False, temperature=1.0, top_p=1.0,
                                     repetition_penalty=1.0)


def _resolved(settings: GenerationSettings) -> GenerationSettings:
    """`settings` over ENGINE_DEFAULTS (top_k None stays: no top-k cut).

    Raises:
        TextuneError: Beam search is asked for: the engines decode one hypothesis.
    """
    if (settings.num_beams or 1) > 1:
        raise TextuneError("--num_beams above 1 needs --backend torch (the other engines do not search beams)")
    return settings.over(ENGINE_DEFAULTS)


def pad_token_id(model, stop_ids: Sequence[int]) -> int:
    """The id a left-padded batch of `model` pads with: the model's own, else its first stop id (padding is
    masked out, so any id serves when the model names none)."""
    pad = getattr(model.generation_config, "pad_token_id", None)
    if pad is None:
        pad = getattr(getattr(model, "config", None), "pad_token_id", None)
    return pad if pad is not None else (tuple(stop_ids) or (0,))[0]


class CausalEngine(Protocol):
    """Generates new token ids after prompts of token ids (the prompt itself is never returned)."""

    name: str
    # the model's end-of-sequence ids: what `stop_ids=None` means
    default_stop_ids: tuple[int, ...]
    # whether a sample with a seed comes out the same each time
    repeats_seeded_samples: bool

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings = GenerationSettings(),
                 stop_ids: Sequence[int] | None = None) -> list[list[int]]:
        """One output per prompt, generated as one batch with `settings` (ENGINE_DEFAULTS where they say nothing);
        `stop_ids` end an output: None for `default_stop_ids`, () to never stop before max_new_tokens."""
        ...

    def stream(self, prompt: Sequence[int], settings: GenerationSettings = GenerationSettings(),
               stop_ids: Sequence[int] | None = None) -> Iterator[int]:
        """The new token ids of one prompt, each as soon as it is chosen; closing the iterator stops generating."""
        ...


@dataclass(frozen=True)
class EngineSpec:
    """A named engine: what `--backend` takes, a line for `--help`, and how to load it on a model folder."""

    name: str
    description: str
    load: Callable[[Path], CausalEngine]


ENGINES: dict[str, EngineSpec] = {}


def register_engine(spec: EngineSpec) -> None:
    """Make `spec.name` loadable with `load_engine`."""
    ENGINES[spec.name] = spec


def load_engine(name: str, model_dir: str | Path, flag: str = "--backend") -> CausalEngine:
    """Load the engine `name` on a causal language model folder (config.json, safetensors weights, tokenizer), as
    is: no parity check (`choose_engine` picks and checks the engine `--backend` names, `auto` included).

    Raises:
        TextuneError: The name is unknown, the engine's package is missing, or it cannot run this architecture.
    """
    if name not in ENGINES:
        raise TextuneError(f"{flag} {name!r} is not a generation engine; use one of {', '.join(ENGINES)}")
    return ENGINES[name].load(Path(model_dir))


def _model_stop_ids(model_dir: Path) -> tuple[int, ...]:
    """The end-of-sequence ids generation_config.json (else config.json) names."""
    for name in ("generation_config.json", "config.json"):
        path = model_dir / name
        if path.is_file():
            eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
            if eos is not None:
                return tuple(eos) if isinstance(eos, list) else (eos,)
    return ()


def model_files(folder: Path) -> list[Path]:
    """The files of `folder` that make its model and tokenizer (`textune.hub.MODEL_FILE_PATTERNS`, and
    generation_config.json): what a cache key of a folder derived from it depends on, so a report, an export or
    predictions written into a run folder later leave the key as it is."""
    from ..hub import MODEL_FILE_PATTERNS

    patterns = [pattern for pattern in MODEL_FILE_PATTERNS if pattern != "eval_results.json"]
    return sorted({path for pattern in (*patterns, "generation_config.json") for path in folder.glob(pattern)
                   if path.is_file()})


def _cut_at_stop(ids: list[int], stop_ids: tuple[int, ...]) -> list[int]:
    for position, token in enumerate(ids):
        if token in stop_ids:
            return ids[:position]
    return ids


def _check_prompts(prompts: Sequence[Sequence[int]]) -> None:
    if any(len(prompt) == 0 for prompt in prompts):
        raise TextuneError("a prompt has no tokens; give every prompt some text (or a chat message)")


# --- transformers' generate -------------------------------------------------------------------------------------

class TorchEngine:
    """transformers' `generate` with its KV cache: the reference every other engine is checked against."""

    repeats_seeded_samples = True

    def __init__(self, model_dir: Path, dtype: str = "float32", name: str = "torch"):
        import torch
        from transformers import AutoModelForCausalLM

        self.name = name
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
        self.default_stop_ids = _model_stop_ids(model_dir)
        self.pad_id = pad_token_id(self.model, self.default_stop_ids)

    def _generate_kwargs(self, settings: GenerationSettings, stop: tuple[int, ...]) -> dict:
        settings = _resolved(settings)
        kwargs = {"max_new_tokens": settings.max_new_tokens, "do_sample": settings.do_sample,
                  "repetition_penalty": settings.repetition_penalty, "pad_token_id": self.pad_id,
                  # None, not []: no stop id means generating max_new_tokens whatever comes
                  "eos_token_id": list(stop) or None}
        if settings.do_sample:  # passed only when sampling: transformers warns that they are unused otherwise
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k or 0)
        return kwargs

    def _stop_ids(self, stop_ids: Sequence[int] | None) -> tuple[int, ...]:
        return self.default_stop_ids if stop_ids is None else tuple(int(token) for token in stop_ids)

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings = GenerationSettings(),
                 stop_ids: Sequence[int] | None = None) -> list[list[int]]:
        import torch

        stop = self._stop_ids(stop_ids)
        kwargs = self._generate_kwargs(settings, stop)
        _check_prompts(prompts)
        if not prompts:
            return []
        width = max(len(prompt) for prompt in prompts)
        # left padding: every prompt ends where generation starts
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + list(p) for p in prompts])
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        seed_sampling(settings)
        with torch.inference_mode():
            output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return [_cut_at_stop(row[width:], stop) for row in output.tolist()]

    def stream(self, prompt: Sequence[int], settings: GenerationSettings = GenerationSettings(),
               stop_ids: Sequence[int] | None = None) -> Iterator[int]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        stop = self._stop_ids(stop_ids)
        kwargs = self._generate_kwargs(settings, stop)
        _check_prompts([prompt])
        tokens: queue.Queue = queue.Queue()
        done, closed, failure = object(), threading.Event(), []

        class TokenQueue(BaseStreamer):
            prompt_seen = False

            def put(self, value):
                if not self.prompt_seen:  # generate hands the prompt over first
                    self.prompt_seen = True
                    return
                for token in value.reshape(-1).tolist():
                    tokens.put(token)

            def end(self):
                tokens.put(done)

        class UntilClosed(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), closed.is_set(), dtype=torch.bool)

        seed_sampling(settings)  # here, not in the thread: the caller's seed, set before any other call moves on

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(input_ids=torch.tensor([list(prompt)]), streamer=TokenQueue(),
                                        stopping_criteria=StoppingCriteriaList([UntilClosed()]), **kwargs)
            except BaseException as error:  # handed to the reading thread below
                failure.append(error)
                tokens.put(done)

        thread = threading.Thread(target=run, daemon=True, name="textune-generate")
        thread.start()
        try:
            while (token := tokens.get()) is not done:
                if token in stop:
                    break
                yield token
            if failure:
                raise failure[0]
        finally:
            closed.set()  # the reader stopped (a stop id, or a client gone): generate ends at its next step
            thread.join()


# --- CTranslate2 ------------------------------------------------------------------------------------------------

def ctranslate2_folder(model_dir: Path, cache_dir: str | Path | None = None) -> Path:
    """`model_dir` converted to CTranslate2's format (float32 weights) in textune's cache, once per folder state.

    One conversion serves every precision: CTranslate2 quantizes the weights to int8 when it loads them.
    """
    try:
        import ctranslate2
    except ImportError:
        raise TextuneError(f"--backend ctranslate2 needs CTranslate2: {INSTALL_CTRANSLATE2}") from None
    key = file_identity(model_files(model_dir), "ctranslate2", ctranslate2.__version__.split(".")[0])

    def build(folder: Path) -> None:
        logger.info("converting %s for CTranslate2 (once; later loads read the cache)", model_dir.name)
        converter = ctranslate2.converters.TransformersConverter(str(model_dir), low_cpu_mem_usage=True)
        try:
            converter.convert(str(folder), force=True)  # force: the (empty) temporary folder exists
        except (NotImplementedError, ValueError) as error:
            model_type = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("model_type", "?")
            raise TextuneError(f"--backend ctranslate2 cannot run this {model_type} model "
                               f"({str(error).splitlines()[0]}); use --backend torch") from None

    return cached_folder("ctranslate2", model_dir.name, key, build, cache_dir)


class CTranslate2Engine:
    """CTranslate2's Generator on the CPU: fused kernels and a compact KV cache, float32 or int8."""

    # set_random_seed does not make its sampling repeat (OpenNMT/CTranslate2#1757)
    repeats_seeded_samples = False

    def __init__(self, model_dir: Path, compute_type: str = "float32", name: str = "ctranslate2"):
        import ctranslate2  # ctranslate2_folder below names the extra to install when it is missing
        import torch

        self.name = name
        folder = ctranslate2_folder(model_dir)
        # as many threads as torch uses, so the engines compare on the same cores
        self.generator = ctranslate2.Generator(str(folder), device="cpu", compute_type=compute_type,
                                               intra_threads=torch.get_num_threads())
        self.vocabulary = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
        self.default_stop_ids = _model_stop_ids(model_dir)

    def _options(self, settings: GenerationSettings, stop_ids: Sequence[int] | None) -> dict:
        stop = self.default_stop_ids if stop_ids is None else stop_ids
        settings = _resolved(settings)
        if settings.seed is not None:
            import ctranslate2

            ctranslate2.set_random_seed(settings.seed)
        sampling = settings.do_sample
        return {"max_length": settings.max_new_tokens, "end_token": [int(token) for token in stop],  # []: no stop
                "repetition_penalty": settings.repetition_penalty,
                # top-k 1 is greedy; 0 samples from the whole distribution
                "sampling_topk": (settings.top_k or 0) if sampling else 1,
                "sampling_topp": settings.top_p if sampling else 1.0,
                "sampling_temperature": settings.temperature if sampling else 1.0}

    def _tokens(self, prompt: Sequence[int]) -> list[str]:
        return [self.vocabulary[token] for token in prompt]

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings = GenerationSettings(),
                 stop_ids: Sequence[int] | None = None) -> list[list[int]]:
        options = self._options(settings, stop_ids)
        _check_prompts(prompts)
        if not prompts:
            return []
        results = self.generator.generate_batch([self._tokens(prompt) for prompt in prompts],
                                                include_prompt_in_result=False, **options)
        return [list(result.sequences_ids[0]) for result in results]

    def stream(self, prompt: Sequence[int], settings: GenerationSettings = GenerationSettings(),
               stop_ids: Sequence[int] | None = None) -> Iterator[int]:
        options = self._options(settings, stop_ids)
        _check_prompts([prompt])
        stop = set(options["end_token"])
        steps = self.generator.generate_tokens(self._tokens(prompt), **options)
        try:
            for step in steps:
                if step.token_id in stop:
                    break
                yield step.token_id
        finally:
            steps.close()  # stops the decoding loop when the reader goes away early


register_engine(EngineSpec("torch", "transformers' generate in float32 (the reference)", TorchEngine))
register_engine(EngineSpec("torch-bf16", "transformers' generate in bfloat16 (fast only on CPUs with AVX-512 "
                                         "BF16 or AMX)", lambda path: TorchEngine(path, "bfloat16", "torch-bf16")))
register_engine(EngineSpec("ctranslate2", "CTranslate2 in float32 (converted once into textune's cache)",
                           CTranslate2Engine))
register_engine(EngineSpec("ctranslate2-int8", "CTranslate2 with int8 weights and matmuls",
                           lambda path: CTranslate2Engine(path, "int8", "ctranslate2-int8")))


# --- parity -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parity:
    """How closely an engine's greedy outputs follow the reference's on the same prompts."""

    prompts: int
    identical: int  # prompts whose whole output is the same
    agreeing_tokens: float  # share of the reference's tokens before the first difference, over all prompts

    @property
    def share_identical(self) -> float:
        return self.identical / self.prompts if self.prompts else 1.0


def compare_outputs(reference: list[list[int]], outputs: list[list[int]]) -> Parity:
    """The parity of `outputs` with `reference` (one list of new token ids per prompt, in the same order)."""
    agreeing = total = 0
    for expected, got in zip(reference, outputs, strict=True):
        prefix = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
        agreeing += prefix
        total += len(expected)
    identical = sum(expected == got for expected, got in zip(reference, outputs))
    return Parity(len(reference), identical, agreeing / total if total else 1.0)


def greedy_parity(reference: CausalEngine, engine: CausalEngine, prompts: Sequence[Sequence[int]],
                  max_new_tokens: int = 32, stop_ids: Sequence[int] | None = None) -> Parity:
    """Greedy outputs of `engine` against `reference`'s (usually the `torch` engine) on the same prompts, each
    prompt generated alone so that no padding enters either side."""
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    expected = [reference.generate([prompt], settings, stop_ids)[0] for prompt in prompts]
    got = [engine.generate([prompt], settings, stop_ids)[0] for prompt in prompts]
    return compare_outputs(expected, got)


# --- choosing the engine a text-generation model generates with (`--backend`) ---------------------------------

# What the parity check generates from: short questions of the kinds users ask, rendered as the caller renders its
# prompts (chat template or not); greedy outputs of this many tokens each.
PARITY_PROMPTS = ("What is the capital of France?", "Write one sentence about a flood.",
                  "Translate to Spanish: good morning", "List three colors.")
PARITY_TOKENS = 24
REFERENCE = "torch"


def engine_names() -> list[str]:
    """What `--backend` takes for a text-generation model: auto and the registered engines."""
    return [AUTO, *ENGINES]


def check_engine_name(name: str) -> None:
    """Raise a one-line error unless `name` is what `--backend` takes for text generation."""
    if name not in ENGINES and name != AUTO:
        raise TextuneError(f"--backend {name!r} is not a generation engine; use one of {', '.join(engine_names())}")


def engine_folder(model, tokenizer, folder: str | Path | None) -> Path:
    """A folder holding exactly `model`'s weights for an engine to load: `folder` itself when it is a plain model
    folder, else (an adapter run, loaded merged; a hub model) the model and tokenizer saved once into the cache."""
    folder = Path(folder).expanduser() if folder is not None else None
    if (folder is not None and (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
            and not (folder / "adapter_config.json").is_file()):
        return folder
    if folder is not None and folder.is_dir():
        key = file_identity(model_files(folder), "merged")
        name = folder.name
    else:  # a hub id: its name and the revision transformers loaded
        name = str(getattr(model, "name_or_path", "") or "model")
        key = file_identity([], name, str(getattr(model.config, "_commit_hash", "")))

    def build(target: Path) -> None:
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)

    return cached_folder("merged", name, key, build)


def choose_engine(name: str, model, tokenizer, folder: str | Path | None, prompts: Sequence[Sequence[int]],
                  stop_ids: Sequence[int]) -> CausalEngine | None:
    """The engine `--backend name` generates with, None for the model in memory (`torch`).

    Any other engine is checked against the model in memory: greedy outputs on `prompts` (PARITY_PROMPTS as the
    caller renders them), the share of identical ones logged. `auto` keeps CTranslate2 (float32) only where it is
    installed and that share is 100%; int8 and bf16, which change outputs, only when asked for by name.

    Raises:
        TextuneError: The name is not an engine, or the engine asked for by name cannot run (package, model).
    """
    check_engine_name(name)
    if name == REFERENCE:
        return None
    if name == AUTO:
        if importlib.util.find_spec("ctranslate2") is None:
            logger.info("backend auto: torch (CTranslate2, faster on CPUs, is not installed: %s)", INSTALL_CTRANSLATE2)
            return None
        try:
            engine = ENGINES["ctranslate2"].load(engine_folder(model, tokenizer, folder))
        except TextuneError as error:
            logger.warning("backend auto: torch (%s)", error)
            return None
    else:
        engine = ENGINES[name].load(engine_folder(model, tokenizer, folder))
    parity = recorded_parity(engine_folder(model, tokenizer, folder), engine.name, prompts, stop_ids,
                             lambda: greedy_parity(ModelEngine(model, stop_ids), engine, prompts, PARITY_TOKENS,
                                                   stop_ids))
    summary = (f"{engine.name} gives torch's greedy output on {parity.identical} of {parity.prompts} prompts "
               f"({parity.share_identical:.0%}; {parity.agreeing_tokens:.0%} of the tokens agree)")
    if name == AUTO and parity.identical < parity.prompts:
        logger.warning("backend auto: torch, as %s", summary)
        return None
    (logger.info if parity.identical == parity.prompts else logger.warning)("backend %s: %s", engine.name, summary)
    return engine


def recorded_parity(folder: Path, engine: str, prompts, stop_ids, measure: Callable[[], Parity]) -> Parity:
    """`measure()`, recorded in textune's cache once per model folder state, engine, prompts and stop ids: the
    same weights give the same greedy outputs, so the next load skips generating with both engines."""
    from ..atomic import write_text_atomically
    from ..cache import cache_home

    key = file_identity(model_files(folder), engine, json.dumps([list(map(int, p)) for p in prompts]),
                        json.dumps(list(map(int, stop_ids))), str(PARITY_TOKENS))
    record = cache_home() / "parity" / f"{folder.name}-{key}.json"
    try:
        return Parity(**json.loads(record.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        pass
    parity = measure()
    record.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(record, json.dumps(asdict(parity)) + "\n")
    return parity


class ModelEngine(TorchEngine):
    """The torch engine on a model already in memory (the parity check's reference, with no second load)."""

    def __init__(self, model, stop_ids: Sequence[int]):
        self.name, self.model, self.default_stop_ids = REFERENCE, model, tuple(stop_ids)
        self.pad_id = pad_token_id(model, self.default_stop_ids)
