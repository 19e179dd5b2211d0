"""Finding a model (alias, local folder, .gguf file or hub id) without hanging offline, and loading it safely."""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path, PureWindowsPath
from urllib.parse import urlparse

from ..errors import TextuneError
from .gguf import gguf_model_folder, is_gguf_path
from .packaged import MODEL_ALIASES

logger = logging.getLogger(__name__)

HUB_PROBE_TIMEOUT_S = 3.0


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_is_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub endpoint opens within `timeout` seconds (DNS included)."""
    url = urlparse(hub_endpoint())
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    if host is None:
        return False
    outcome: list[bool] = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    # getaddrinfo ignores socket timeouts, so the probe runs in a daemon thread we stop waiting for.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(outcome and outcome[0])


def _looks_like_path(name: str) -> bool:
    # hub ids are "name" or "org/name"; anything else that is not an existing folder is a mistyped path.
    # Windows spellings count on every OS: a run record or a README command may come from a Windows machine.
    return (name.startswith((".", "/", "~")) or name.endswith(("/", "\\")) or name.count("/") > 1 or "\\" in name
            or PureWindowsPath(name).drive != "")


def model_display_name(name: str) -> str:
    """How to show a base model: an alias or hub id as it is, a folder by its last component (`C:\\models\\bert`,
    `./my-model/` -> `bert`, `my-model`), so no path of the training machine reaches a page or a Space."""
    if name in MODEL_ALIASES or not (_looks_like_path(name) or Path(name).expanduser().is_dir()):
        return name
    # PureWindowsPath splits on both separators, so a Windows path reads the same on Linux (a Space) and back
    return PureWindowsPath(name.rstrip("/\\")).name or name


def _offline_message(name: str, reason: str) -> str:
    aliases = ", ".join(sorted(MODEL_ALIASES))
    return (
        f"model {name!r} is not in the local cache and {reason}; use a local model folder, "
        f"a packaged alias ({aliases}), a mirror via HF_ENDPOINT=<url>, or set HF_HUB_OFFLINE=1 "
        "to use only cached models"
    )


def resolve_model(name: str, cache_dir: str | None = None, revision: str = "main",
                  flag: str = "--model_name_or_path") -> tuple[str, bool]:
    """Turn a model alias, folder, .gguf file or hub id into what `from_pretrained` takes, failing fast offline.

    A GGUF file (or an alias of one, like `smollm2`) becomes its converted folder in textune's cache, converted
    on first use (textune/models/gguf.py).

    Returns:
        (name_or_path, local_files_only): a folder path, or a hub id and whether to stay off the network.

    Raises:
        TextuneError: The folder is missing, or the hub id is neither cached nor downloadable now.
    """
    if name in MODEL_ALIASES:
        path = MODEL_ALIASES[name].locate()
        if is_gguf_path(path):
            path = gguf_model_folder(path, flag=flag)
        return str(path), True
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), True
    if is_gguf_path(name):
        return str(gguf_model_folder(path, flag=flag)), True
    if path.exists():
        raise TextuneError(f"{flag} {name} is a file; pass the folder that holds config.json and the weights, "
                           "or a .gguf file")
    if _looks_like_path(name):
        raise TextuneError(f"{flag} {name}: no such folder; check the path or use an alias ({', '.join(MODEL_ALIASES)})")
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json", cache_dir=cache_dir, revision=revision)
    except Exception:  # an id that is not a valid repo name
        cached = None
    cached = isinstance(cached, str)
    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
        if not cached:
            raise TextuneError(_offline_message(name, "HF_HUB_OFFLINE is set"))
        return name, True
    if hub_is_reachable():
        return name, False
    if cached:
        logger.warning("the hub (%s) is unreachable: using the cached copy of %s", hub_endpoint(), name)
        return name, True
    raise TextuneError(_offline_message(name, f"the hub ({hub_endpoint()}) cannot be reached"))


def check_model_folder(path: str | Path, allow_pickle: bool = False, flag: str = "--model_name_or_path") -> None:
    """Raise a one-line error if a local folder is not a loadable model (or holds only pickle weights)."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise TextuneError(f"{flag} {path} is not a model folder: it has no config.json")
    has_safetensors = any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").exists()
    has_pickle = any(path.glob("pytorch_model*.bin"))
    if not has_safetensors and has_pickle and not allow_pickle:
        raise TextuneError(
            f"{flag} {path} holds only pickle weights (pytorch_model.bin), which can run code when loaded; "
            "convert them to safetensors or pass --allow_pickle if you trust the source"
        )
    if not has_safetensors and not has_pickle:
        raise TextuneError(f"{flag} {path} has no model weights (*.safetensors)")
