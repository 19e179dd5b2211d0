"""Files published whole: written to a hidden temporary file beside the target, synced, then renamed over it.

A crash, an error or Ctrl-C while writing leaves the previous file (if any) untouched and no temporary file;
readers never see a half-written result. The temporary file sits in the target's folder because a rename is
atomic only within one file system.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | Path, binary: bool = False, encoding: str = "utf-8",
                 newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it replaces `path`, on any exception it is removed.

    Args:
        path: The file to publish.
        binary: Open in binary mode instead of text.
        encoding: Text encoding (text mode only).
        newline: As for `open`; pass "" when the writer (pandas' to_csv, the csv module) writes line endings itself.

    Example:
        >>> with atomic_write("runs/x/predictions.csv", newline="") as handle:
        ...     table.to_csv(handle, index=False)
    """
    path = Path(path)
    # hidden and unique: two writers of the same file never share a temporary file, and listings skip it
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    handle = open(tmp, "xb") if binary else open(tmp, "x", encoding=encoding, newline=newline)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # the data is on disk before the rename makes it the result
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt and SystemExit (SIGTERM) included
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def write_text_atomically(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """`Path.write_text`, published whole (see `atomic_write`)."""
    with atomic_write(path, encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def fsync_file(path: str | Path) -> None:
    """Flush a file another library wrote (e.g. model weights) to disk before a rename publishes it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | Path) -> None:
    """Make a rename in `folder` durable. Windows cannot open a folder for syncing, and needs no such step."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (network mounts) refuse to sync a folder; the rename still happened
        pass
    finally:
        os.close(fd)
