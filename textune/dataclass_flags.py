"""Command-line flags from a dataclass's fields, spelled as transformers' HfArgumentParser spells them.

For commands that must answer --help and reject bad values without importing transformers (about a second). The
train and compare commands keep HfArgumentParser: TrainingArguments needs transformers anyway.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing


def string_to_bool(value: str | bool) -> bool:
    """yes/no, true/false, t/f, y/n, 1/0 (any case), as HfArgumentParser reads a bool flag's value."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"truthy value expected: got {value}, expected one of yes/no, true/false, "
                                     "t/f, y/n, 1/0")


def add_dataclass_flags(parser: argparse.ArgumentParser, config_class: type,
                        helps: dict[str, str] | None = None, only: typing.Iterable[str] | None = None) -> None:
    """Add one `--field` flag per field of `config_class` (and `--no_field` for bools that default to True).

    Field metadata holds argparse's keywords (`help`, `choices`, `nargs`, `const`) and `aliases`; `helps` gives
    the help of fields without it (a class whose help lives beside it, e.g. GenerationSettings' HELP); `only`
    names the fields that get a flag (default: all).

    Raises:
        TypeError: A field's type is not str, int, float or bool (optionally `| None`).
    """
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if only is not None and field.name not in only:
            continue
        kind = hints[field.name]
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        if kind not in (str, int, float, bool):
            raise TypeError(f"{config_class.__name__}.{field.name}: flags of type {kind} are not supported")
        options = dict(field.metadata)
        if helps and field.name in helps:
            options.setdefault("help", helps[field.name])
        names = [f"--{field.name}", *options.pop("aliases", [])]
        if "_" in field.name:
            names.append(f"--{field.name.replace('_', '-')}")
        if field.default is dataclasses.MISSING:
            options["required"] = True
        else:
            options["default"] = field.default
        if kind is bool:
            # `--flag` alone means true, `--flag false` is accepted, as with HfArgumentParser
            options.update(type=string_to_bool, nargs="?", const=True)
        else:
            options["type"] = kind
        parser.add_argument(*names, **options)
        if kind is bool and field.default is True:
            parser.add_argument(f"--no_{field.name}", f"--no-{field.name.replace('_', '-')}", action="store_false",
                                dest=field.name, help=f"Same as --{field.name} false.")


def dataclass_from_flags(config_class: type, args: argparse.Namespace):
    """The `config_class` instance of the flags parsed into `args` (its own checks run in `__post_init__`)."""
    return config_class(**{field.name: getattr(args, field.name) for field in dataclasses.fields(config_class)})
