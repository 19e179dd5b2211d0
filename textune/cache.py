"""textune's cache of derived models (a GGUF file dequantized, a folder converted for CTranslate2): each built
once into a folder keyed by its source's identity, and published whole.

The cache lives in `TEXTUNE_CACHE`, else `$XDG_CACHE_HOME/textune` (`~/.cache/textune`). It is kept apart from
the Hugging Face hub cache on purpose: `hf cache scan/delete` manage that folder's layout and would not know ours.

A folder is built under a hidden temporary name beside its final one and renamed into place when complete, so
a crash or Ctrl-C leaves no entry (never a half one), and two processes building the same entry at once both
succeed: the first rename wins and the other process drops its copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable

from .atomic import fsync_file, fsync_folder

logger = logging.getLogger(__name__)

CACHE_ENV = "TEXTUNE_CACHE"
TEMP_PREFIX = ".tmp-"
# a temporary folder older than this was left by a killed process (SIGKILL, power loss): its builder is gone
STALE_TEMP_S = 24 * 3600


def cache_home() -> Path:
    """The textune cache folder, resolved now (tests and users may set TEXTUNE_CACHE late)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "textune"


def file_identity(paths: Iterable[str | Path], *extra: str) -> str:
    """A key that changes when any of `paths` is moved, resized or rewritten (path, size and mtime), or `extra`
    (a format version, a quantization) changes. Reading the size and mtime is instant, even for a 4 GB file."""
    digest = hashlib.sha256()
    for path in sorted(Path(p).resolve() for p in paths):
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    for item in extra:
        digest.update(f"{item}\0".encode())
    return digest.hexdigest()[:16]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def cached_folder(kind: str, name: str, key: str, build: Callable[[Path], None],
                  cache_dir: str | Path | None = None) -> Path:
    """The cache entry `<cache>/<kind>/<name>-<key>`, built by `build(folder)` the first time it is asked for.

    Args:
        kind: The sort of derived model ("gguf", "ctranslate2"), one subfolder each.
        name: A readable name for the entry (the source's name).
        key: The source's identity (see `file_identity`); a new key means a new entry.
        build: Writes the entry's files into the (empty, temporary) folder it is given.
        cache_dir: The cache root (default: `cache_home()`).

    Returns:
        The complete folder. Only complete folders ever carry the final name.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_home()
    target = root / kind / f"{_safe_name(name)}-{key}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target.parent)
    temp = target.with_name(f"{TEMP_PREFIX}{target.name}-{uuid.uuid4().hex[:8]}")
    temp.mkdir()
    try:
        build(temp)
        for file in temp.rglob("*"):
            if file.is_file():
                fsync_file(file)  # the data is on disk before the rename publishes the folder
        try:
            os.rename(temp, target)
        except OSError:
            if not target.is_dir():
                raise
            # another process published the same entry first: theirs is as good as ours
            shutil.rmtree(temp, ignore_errors=True)
    except BaseException:  # KeyboardInterrupt and SystemExit (SIGTERM) included
        shutil.rmtree(temp, ignore_errors=True)
        raise
    fsync_folder(target.parent)
    return target


def _remove_stale_temps(folder: Path) -> None:
    now = time.time()
    for temp in folder.glob(f"{TEMP_PREFIX}*"):
        try:
            if temp.is_dir() and now - temp.stat().st_mtime > STALE_TEMP_S:
                logger.info("removing %s, left by an interrupted conversion", temp)
                shutil.rmtree(temp, ignore_errors=True)
        except OSError:  # removed meanwhile by another process
            pass
