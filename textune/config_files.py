"""Run configuration files (`textune train --config run.yaml`): YAML or JSON mapping flag names to values.

File values act as if typed before the command-line flags, so flags given on the command line win.
Every default still lives in the argument dataclasses; a file only overrides.
"""

from __future__ import annotations

import argparse
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


def flag_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every long flag the parser accepts, aliases and --no_ forms included, without its dashes."""
    return {option[2:]: action for action in parser._actions for option in action.option_strings
            if option.startswith("--") and action.dest != "help"}


def resolve_flag(key, parser: argparse.ArgumentParser, source: str) -> tuple[str, argparse.Action]:
    """The flag a config key names, found as argparse finds a command-line flag: exact, else a unique prefix.

    So `text_column_name: text` in a file means what `--text_column_name text` means on the command line
    (an abbreviation of --text_column_names), and a key the command line would refuse is refused here too.
    """
    actions = flag_actions(parser)
    name = str(key).lstrip("-")
    if name in actions:
        return name, actions[name]
    matches = sorted(option for option in actions if option.startswith(name)) if name and parser.allow_abbrev else []
    if len(matches) == 1:
        return matches[0], actions[matches[0]]
    if matches:  # argparse refuses an abbreviation of several flags the same way
        raise TextuneError(f"{source}: {name!r} is ambiguous; it could be {', '.join(matches)}")
    primary = sorted(option for option, action in actions.items() if option == action.dest)
    match = difflib.get_close_matches(name, primary, n=1)
    hint = f"; did you mean {match[0]!r}?" if match else ""
    raise TextuneError(f"{source}: {name!r} is not a flag of {parser.prog}{hint}")


def resolve_config_keys(values: dict, parser: argparse.ArgumentParser, source: str) -> dict:
    """{key as written: value} to {argument name: value}, keys resolved as the command line resolves flags.

    A switch without a value (`--no_use_fast_tokenizer`) takes true or false: true sets it, false leaves the default.
    """
    resolved: dict = {}
    given_as: dict[str, str] = {}
    for key, value in values.items():
        option, action = resolve_flag(key, parser, source)
        if action.nargs == 0:
            if not isinstance(value, bool):
                raise TextuneError(f"{source}: {key} takes true or false, not {value!r}")
            if not value:
                continue
            value = action.const
        if action.dest in resolved:
            raise TextuneError(f"{source}: {key!r} and {given_as[action.dest]!r} both set {action.dest}; keep one")
        resolved[action.dest] = value
        given_as[action.dest] = str(key)
    return resolved


def config_to_argv(values: dict, parser: argparse.ArgumentParser, source: str) -> list[str]:
    """Turn {flag: value} into argv words, rejecting keys the command line would refuse."""
    argv: list[str] = []
    for key, value in resolve_config_keys(values, parser, source).items():
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


def expand_config_flag(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
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
        expanded += config_to_argv(read_config_file(path), parser, f"--config {path}")
    return expanded + rest
