"""GGUF files (llama.cpp's one-file format) as ordinary transformers model folders: dequantized once, then cached.

transformers can load a GGUF file, but dequantizes it on every load (about 15 s for SmolLM2-135M on a laptop CPU)
and cannot save the result with `save_pretrained`. `gguf_model_folder` converts a file once into a folder in
textune's cache (`textune/cache.py`: `TEXTUNE_CACHE`, default `~/.cache/textune`, subfolder `gguf/`) holding
config.json, model.safetensors (float32), generation_config.json and the tokenizer with its chat template; later
loads read that folder in well under a second. The entry is keyed by the file's path, size and modification time,
so a replaced file is converted again.

Example:
    >>> from transformers import AutoModelForCausalLM
    >>> from textune.models.gguf import gguf_model_folder
    >>> folder = gguf_model_folder("SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> model = AutoModelForCausalLM.from_pretrained(folder)
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..cache import cached_folder, file_identity
from ..errors import TextuneError

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
# bumped when the folder's contents change, so entries written by an older textune are not reused
FORMAT_VERSION = "1"
SOURCE_RECORD = "textune_gguf.json"


def is_gguf_path(name: str | Path) -> bool:
    """Whether `name` names a GGUF file by its extension (it may not exist)."""
    return str(name).lower().endswith(".gguf")


def check_gguf_file(path: Path, flag: str = "--model_name_or_path") -> None:
    """Raise a one-line error unless `path` is a readable GGUF file."""
    if not path.is_file():
        raise TextuneError(f"{flag} {path}: no such GGUF file; check the path")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise TextuneError(f"{flag} {path} is not a GGUF file (it does not start with {GGUF_MAGIC!r}); "
                           "pass a .gguf file written by llama.cpp or the gguf package, or a model folder")


def gguf_model_folder(path: str | Path, cache_dir: str | Path | None = None,
                      flag: str = "--model_name_or_path") -> Path:
    """The transformers model folder of a GGUF file, converted on the first call and read from the cache after.

    Args:
        path: The .gguf file.
        cache_dir: The cache root (default: textune's cache, see `textune/cache.py`).
        flag: The flag to name in error messages.

    Returns:
        A folder `AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained` load offline.

    Raises:
        TextuneError: The file is missing, is not GGUF, or holds an architecture transformers cannot read.
    """
    path = Path(path).expanduser().resolve()
    check_gguf_file(path, flag)
    key = file_identity([path], FORMAT_VERSION)

    def build(folder: Path) -> None:
        logger.info("converting %s into a transformers folder (once; later loads read the cache)", path.name)
        started = time.perf_counter()
        convert_gguf(path, folder, flag)
        logger.info("converted %s in %.0f s", path.name, time.perf_counter() - started)

    return cached_folder("gguf", path.stem, key, build, cache_dir)


def convert_gguf(path: Path, folder: Path, flag: str = "--model_name_or_path") -> None:
    """Write `path`'s model, dequantized to float32, and its tokenizer into the empty `folder`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = dict(pretrained_model_name_or_path=str(path.parent), gguf_file=path.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(**source)
        loaded = AutoModelForCausalLM.from_pretrained(**source, dtype=torch.float32)
    except (ValueError, NotImplementedError, KeyError) as error:
        # transformers names the unsupported architecture or tensor type; keep its first line
        raise TextuneError(f"{flag} {path}: transformers cannot read this GGUF file: "
                           f"{str(error).splitlines()[0]}") from None
    # A GGUF-loaded model refuses save_pretrained (its weights count as quantized), so the plain model of the
    # same config takes the dequantized weights and is the one saved.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    stat = path.stat()
    record = {"source": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "format": FORMAT_VERSION,
              "dtype": "float32"}
    (folder / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
