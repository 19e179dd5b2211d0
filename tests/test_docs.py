"""Every `textune ...` command in README.md and README.zh-CN.md parses with the real CLI, and both READMEs show the
same commands and flags.

Commands are parsed only: the handler runs until its parser returns, then stops, so nothing trains or loads.
Continuations are joined (bash `\\`, PowerShell backtick, CMD `^`); `...` means "some arguments left out" (after a
flag, a placeholder value); `[--flag value]` is an optional part, shown; `a|b|c` is a choice, the first is taken.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from textune import cli
from textune.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
READMES = ("README.md", "README.zh-CN.md")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.M | re.S)
CONTINUATION = re.compile(r"\s(\\|`|\^)\n")  # bash, PowerShell, CMD
COMMAND_ENDS = {";", "&&", "||", "|", "&"}


def logical_lines(block: str) -> list[str]:
    return CONTINUATION.sub(" ", block).splitlines()


def command_of(tokens: list[str]) -> tuple[list[str], bool] | None:
    """The argv after `textune` in one shell line (or None), and whether arguments were left out with `...`."""
    start = next((i for i, token in enumerate(tokens) if re.split(r"[\\/]", token)[-1] == "textune"), None)
    if start is None:
        return None
    argv, elided = [], False
    for token in tokens[start + 1:]:
        if token in COMMAND_ENDS or token.startswith(">"):
            break
        token = token.removeprefix("[").removesuffix("]")
        if token == "...":
            if argv and argv[-1].startswith("--") and "=" not in argv[-1] and len(argv) > 1:
                argv.append("x")  # `--title ...`: a value to fill in
            else:
                elided = True
            continue
        argv.append(token.split("|")[0] if "|" in token else token)
    return argv, elided


def readme_commands(name: str) -> list[tuple[list[str], bool]]:
    """Every textune command in the README's code blocks (Python blocks are code, not commands)."""
    found = []
    for language, block in FENCE.findall((ROOT / name).read_text(encoding="utf-8")):
        if language.strip() in ("python", "py", "json", "yaml"):
            continue
        for line in logical_lines(block):
            if not re.search(r"\btextune\b", line):  # program output, other tools
                continue
            try:
                # backslashes kept as typed: Windows paths (data\\train.csv), CMD's "\\n"
                tokens = shlex.split(line.replace("\\", "\\\\"), comments=True)
            except ValueError as error:
                raise AssertionError(f"{name}: cannot split {line!r}: {error}") from None
            command = command_of(tokens)
            if command:
                found.append(command)
    return found


class Parsed(BaseException):
    """Raised where the handler's parser returns: the command parsed, and nothing after it runs."""

    def __init__(self, prog: str, extras: list[str]):
        super().__init__(prog)
        self.prog, self.extras = prog, extras


def parse_only(argv: list[str], elided: bool, monkeypatch) -> Parsed:
    """Run `textune ARGV` up to its argument parser; fail with argparse's message if it does not parse."""
    original = argparse.ArgumentParser.parse_known_args

    def parse_and_stop(self, args=None, namespace=None):
        if elided:  # the README left arguments out, required ones maybe among them
            for action in self._actions:
                action.required = False
        namespace, extras = original(self, args, namespace)
        raise Parsed(self.prog, extras)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_and_stop)
    # `train` checks its data files before parsing (so bad input answers before transformers loads); a README's
    # data paths are examples, and only the parse is checked here
    monkeypatch.setattr(cli, "check_data_flags", lambda argv: None)
    try:
        status = main(argv)
    except Parsed as parsed:
        return parsed
    except SystemExit as error:  # argparse: unknown flag, bad choice, missing value
        raise AssertionError(f"`textune {' '.join(argv)}` does not parse (exit status {error.code})") from None
    raise AssertionError(f"`textune {' '.join(argv)}` stopped before parsing its arguments (status {status})")


def flags_used(commands) -> set[str]:
    """`train`, `train --output_dir`, ...: each command and each of its flags, as shown."""
    used = set()
    for argv, _ in commands:
        used |= {argv[0], *(f"{argv[0]} {token.split('=')[0]}" for token in argv[1:] if token.startswith("--"))}
    return used


CASES = [pytest.param(argv, elided, id=f"{name}:{' '.join(argv)[:60]}")
         for name in READMES for argv, elided in readme_commands(name)]


@pytest.mark.parametrize("argv, elided", CASES)
def test_every_readme_command_parses_with_the_real_cli(argv, elided, monkeypatch, capsys):
    assert argv and argv[0] in COMMANDS, f"`textune {' '.join(argv)}`: unknown command; use one of {list(COMMANDS)}"

    parsed = parse_only(argv, elided, monkeypatch)

    assert parsed.extras == [], f"`textune {' '.join(argv)}`: {parsed.prog} does not know {parsed.extras}"


def test_both_readmes_show_the_same_commands_and_flags():
    english, chinese = (flags_used(readme_commands(name)) for name in READMES)

    assert len(english) > 30  # the extraction found the commands, not nothing
    assert not english - chinese, f"README.zh-CN.md lacks what README.md shows: {sorted(english - chinese)}"
    assert not chinese - english, f"README.md lacks what README.zh-CN.md shows: {sorted(chinese - english)}"


@pytest.mark.parametrize("line", [
    "textune train --model_name_or_path minilm --no_such_flag 1",
    "textune predict --model run/ --input new.csv --outptu preds.csv",
    "textune serve run/ --prot 8000",
    "textune models --task classification ^\n  --no_such_flag",
])
def test_the_check_rejects_a_command_with_a_flag_that_does_not_exist(line, monkeypatch, capsys):
    (argv, elided), = [command_of(shlex.split(text)) for text in logical_lines(line)]

    with pytest.raises(AssertionError):
        parsed = parse_only(argv, elided, monkeypatch)
        assert parsed.extras == []


def test_continuations_placeholders_and_choices_are_read_as_a_shell_would():
    lines = logical_lines("textune export-space run/ --to space/ [--title ...] `\n  --license mit ...\n"
                          "$env:HF_HUB_OFFLINE=\"1\"; textune models [--task classification|chat] # comment\n")

    commands = [command_of(shlex.split(line, comments=True)) for line in lines]

    assert commands == [(["export-space", "run/", "--to", "space/", "--title", "x", "--license", "mit"], True),
                        (["models", "--task", "classification"], False)]


def test_each_readme_links_the_other_at_its_top():
    for name, other in (READMES, READMES[::-1]):
        top = (ROOT / name).read_text(encoding="utf-8").split("\n## ")[0]
        assert f"]({other})" in top, f"{name} should link {other} before its first section"
