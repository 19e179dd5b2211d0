"""Run configuration files (`textune train --config run.yaml`): YAML or JSON mapping flag names to values.

File values act as if typed before the command-line flags, so flags given on the command line win.
Every default still lives in the argument dataclasses; a file only overrides.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from .errors import TextuneError


def read_config_file(path: str | Path) -> dict:
    """Load a YAML or JSON mapping of `textune train` flag names (without dashes) to values."""
    path = Path(path)
    if not path.is_file():
        raise TextuneError(f"--config {path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except (json.JSONDecodeError, ValueError) as error:
        raise TextuneError(f"--config {path} is not valid JSON: {error}") from None
    except Exception as error:  # yaml.YAMLError and its subclasses
        first = str(error).strip().splitlines()[0]
        raise TextuneError(f"--config {path} is not valid YAML: {first}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise TextuneError(f"--config {path} must be a mapping of flag names to values, not {type(values).__name__}")
    return values


def config_to_argv(values: dict, known: set[str], source: str) -> list[str]:
    """Turn {flag: value} into argv words, rejecting keys that are no flag of `textune train`."""
    argv: list[str] = []
    for key, value in values.items():
        key = str(key).lstrip("-")
        if key not in known:
            match = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {match[0]!r}?" if match else ""
            raise TextuneError(f"{source}: {key!r} is not a flag of textune train{hint}")
        if value is None:
            continue
        if isinstance(value, bool):
            argv += [f"--{key}", "true" if value else "false"]
        elif isinstance(value, (list, tuple)):
            argv += [f"--{key}", *[str(v) for v in value]]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def expand_config_flag(argv: list[str], known: set[str]) -> list[str]:
    """Replace `--config PATH` in argv by the file's flags, placed first so the command line overrides them."""
    if "--config" not in argv and not any(a.startswith("--config=") for a in argv):
        return argv
    rest, files = [], []
    words = iter(argv)
    for word in words:
        if word == "--config":
            path = next(words, None)
            if path is None:
                raise TextuneError("--config needs a file path")
            files.append(path)
        elif word.startswith("--config="):
            files.append(word.split("=", 1)[1])
        else:
            rest.append(word)
    expanded: list[str] = []
    for path in files:
        expanded += config_to_argv(read_config_file(path), known, f"--config {path}")
    return expanded + rest
