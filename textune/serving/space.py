"""Hugging Face Spaces: `export_space` writes a complete Gradio Space folder, `push_space` uploads one.

The folder holds `app.py` (which calls `textune.serving.serve`, the same server as `textune serve`),
`app_minimal.py` (a transformers pipeline and `gr.Interface`, to read and edit), a copy of the textune package,
`model/` (weights, tokenizer, task, metrics and demo examples), `requirements.txt` pinned to the versions
installed here (torch's CPU build), `README.md` with the Spaces YAML front matter, and `.textune-space.json`,
the manifest of those files: `--overwrite` removes and `push_space` uploads only what it lists.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..atomic import write_text_atomically
from ..errors import TextuneError
from ..hub import MODEL_FILE_PATTERNS, check_repo_id, connect, shareable_run_record, upload_files
from ..models.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS, is_adapter_run, save_standalone_model
from ..models.loading import hub_endpoint, model_display_name
from ..run_folder import RUN_FILE, read_run_file
from ..tasks import task_from_dict

if TYPE_CHECKING:  # service loads torch; `textune export-space --help` reads TEMPLATES without it
    from .service import ModelService

logger = logging.getLogger(__name__)

# What the Space installs, pinned to the versions used here: what serving imports (textune's own dependencies
# and the serving stack). torch comes first so pip resolves the rest against it.
SPACE_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pandas", "pyarrow",
                  "scikit-learn", "scipy", "datasets", "accelerate", "evaluate", "pyyaml", "huggingface_hub",
                  "gradio", "fastapi", "uvicorn", "httpx")
# textune dependencies a Space leaves out: only training and evaluation import them (lazily: plots, logs, text-to-text
# metrics), and a Space never trains or scores (peft also loads adapter runs and gguf reads GGUF
# files, but a Space gets an adapter run's merged model, converted to safetensors).
# tests/serving/test_space.py checks every dependency in pyproject.toml is in one of these two lists.
TRAINING_ONLY_PACKAGES = ("matplotlib", "tensorboard", "rouge-score", "sacrebleu", "peft", "gguf")
# PyTorch's CPU-only wheels. On Linux, PyPI's torch wheel depends on the CUDA libraries (gigabytes) that a CPU
# Space never uses; on this index the same version is `X+cpu`, which `torch==X` matches (PEP 440 ignores the local
# label) and pip prefers (X+cpu sorts above X). macOS and Windows wheels there are the usual CPU ones.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
MANIFEST_FILE = ".textune-space.json"
STAGING_DIR = ".textune-space-staging"
TEMPLATES = {"full": "app.py", "minimal": "app_minimal.py"}  # --template: the app the Space runs

APP_TEMPLATE = '''"""Gradio Space for {title}, written by `textune export-space`.

Run it anywhere: `pip install -r requirements.txt && python app.py`, then open http://127.0.0.1:7860
(demo at /, JSON API at POST /v1/predict, OpenAPI docs at /docs). On Hugging Face Spaces, which sets
GRADIO_SERVER_NAME=0.0.0.0, it listens on all interfaces; elsewhere on loopback only.
"""

import os
from pathlib import Path

from textune.serving import ServeConfig, serve

TITLE = {title!r}
MODEL_DIR = Path(__file__).resolve().parent / "model"

if __name__ == "__main__":
    config = ServeConfig(
        host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        title=TITLE,
    )
    raise SystemExit(serve(MODEL_DIR, config))
'''

README_TEMPLATE = '''{front_matter}
# {title}

{summary}

Exported by textune `export-space`; the model files are in `model/`.

## Run it locally

```
python -m venv .venv && .venv/bin/pip install -r requirements.txt
.venv/bin/python {app_file}          # http://127.0.0.1:7860 (GRADIO_SERVER_PORT changes the port)
```

`app.py` serves the demo and a JSON API with textune; `app_minimal.py` is a short transformers + Gradio
version to edit. The front matter's `app_file` names the one the Space runs.

## Call it from a program

JSON API (app.py):

```
curl -s http://127.0.0.1:7860/v1/predict -H 'content-type: application/json' -d '{body}'
```

With `gradio_client` (also works with the Space's id instead of the URL):

```python
from gradio_client import Client

client = Client("http://127.0.0.1:7860/")
print(client.predict({arguments}, api_name="/predict"))
```
'''


def export_space(run_dir: str | Path, to: str | Path, title: str | None = None, license: str = "apache-2.0",
                 overwrite: bool = False, template: str = "full") -> Path:
    """Write a Gradio Space folder serving the run: app.py, app_minimal.py, requirements.txt, README.md, model/,
    textune/, and the manifest of those files.

    Args:
        run_dir: A run folder written by `textune train`.
        to: The folder to write; it must be empty or absent unless `overwrite`.
        title: The Space's title (default: the run folder's name).
        license: The Space's license identifier, e.g. apache-2.0 or mit.
        overwrite: Replace what a previous export wrote in `to`, as its manifest lists it (other files are kept).
        template: The app the Space runs: `full` (app.py, textune's server) or `minimal` (app_minimal.py).

    Returns:
        The Space folder.

    Raises:
        TextuneError: The run folder is incomplete or has no safetensors weights; `to` is not empty, holds a file
            of the same name that export-space did not write, or one it wrote and you edited since.

    Example:
        >>> export_space("experiments/", "space/")
    """
    run_dir, to = Path(run_dir).expanduser(), Path(to).expanduser()
    record = read_run_file(run_dir)
    card = task_from_dict(record["task"]).card()
    if card.get("needs_code"):
        raise TextuneError(f"--model {run_dir} {card['needs_code']}; a Space does not carry that code: serve it "
                           "with `textune serve` after importing it")
    if not any(run_dir.glob("*.safetensors")):
        raise TextuneError(f"--model {run_dir} has no safetensors weights; a Space loads safetensors only "
                           "(retrain, or convert the weights)")
    if template not in TEMPLATES:
        raise TextuneError(f"--template {template!r}: use one of {', '.join(TEMPLATES)}")
    no_minimal_app = None if card.get("minimal_app") else (
        card.get("minimal_app_problem") or f"the {card['kind']} has no minimal app")
    if template == "minimal" and no_minimal_app:
        raise TextuneError(f"--template minimal: {no_minimal_app}; use --template full")
    title = title or run_dir.resolve().name
    check_license(license)
    previous = check_space_dir(to, overwrite)
    from .service import ModelService

    service = ModelService.from_run(run_dir)  # also proves the run loads before anything is written

    staging = to / STAGING_DIR
    if staging.exists():
        shutil.rmtree(staging)  # left by an export that was interrupted; only export-space writes this name
    try:
        write_space_files(staging, run_dir, service, title, license, TEMPLATES[template])
        written = sorted(path.relative_to(staging).as_posix() for path in staging.rglob("*") if path.is_file())
        check_no_foreign_files(to, written, previous)
        remove_previous_export(to, previous)
        for name in written:
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, to / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_manifest(to, {name: file_digest(to / name) for name in written})
    logger.info("wrote the Space folder %s", to)
    return to


def write_space_files(folder: Path, run_dir: Path, service: ModelService, title: str, license: str,
                      app_file: str) -> None:
    model_dir = folder / "model"
    model_dir.mkdir(parents=True)
    for pattern in MODEL_FILE_PATTERNS:
        for path in sorted(run_dir.glob(pattern)):
            shutil.copy2(path, model_dir / path.name)
    if is_adapter_run(run_dir):  # a Space has no base model to put the adapter on: it gets the merged model
        for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            (model_dir / name).unlink(missing_ok=True)
        save_standalone_model(service.predictor.model, model_dir)
    # UTF-8 always: Windows' locale encoding (cp1252, GBK) cannot write the README's emoji or many tweets,
    # and the Space reads these files as UTF-8
    (model_dir / RUN_FILE).write_text(json.dumps(shareable_run_record(run_dir), indent=2, default=str) + "\n",
                                      encoding="utf-8")
    from .service import EXAMPLES_FILE, examples_json

    examples = examples_json(service.info.examples)
    (model_dir / EXAMPLES_FILE).write_text(json.dumps(examples, indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    copy_package(folder / "textune")
    (folder / "requirements.txt").write_text(requirements_text(), encoding="utf-8")
    (folder / "app.py").write_text(APP_TEMPLATE.format(title=title), encoding="utf-8")
    minimal_app = service.task.card().get("minimal_app")
    if minimal_app:  # else it is left out rather than written broken
        shown = json.dumps(examples[:3], indent=4, ensure_ascii=False)  # JSON lists of str: valid Python
        (folder / "app_minimal.py").write_text(minimal_app.format(title=title, examples=shown), encoding="utf-8")
    (folder / "README.md").write_text(readme_text(service, title, license, app_file), encoding="utf-8")


def check_license(license: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", license):
        raise TextuneError(f"--license {license!r}: use a Hub license identifier such as apache-2.0, mit or other")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict[str, str] | None:
    """The files a previous export wrote in `folder` (relative path -> sha256), or None without a manifest."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise TextuneError(f"{path} is not a valid export-space manifest; delete it and export again") from None
    # a manifest names files inside the folder only: never follow one out of it
    return {name: digest for name, digest in files.items()
            if not Path(name).is_absolute() and ".." not in Path(name).parts}


def write_manifest(folder: Path, files: dict[str, str]) -> None:
    write_text_atomically(folder / MANIFEST_FILE,
                          json.dumps({"written_by": "textune export-space", "files": files}, indent=2) + "\n")


def check_space_dir(to: Path, overwrite: bool) -> dict[str, str]:
    """Check `to` can take an export; returns the previous export's manifest ({} when there is none)."""
    if to.exists() and not to.is_dir():
        raise TextuneError(f"--to {to} is a file; pass a folder")
    if to.exists() and any(path.name != STAGING_DIR for path in to.iterdir()) and not overwrite:
        raise TextuneError(f"--to {to} is not empty; pass --overwrite to replace a previous export there "
                           "(only the files it wrote are replaced)")
    to.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(to) or {}
    edited = [name for name, digest in previous.items() if (to / name).is_file() and file_digest(to / name) != digest]
    if edited:
        raise TextuneError(f"--overwrite would replace {', '.join(edited[:3])} in {to}, edited since the last export; "
                           "move your version elsewhere (or delete it) and export again")
    return previous


def check_no_foreign_files(to: Path, written: list[str], previous: dict[str, str]) -> None:
    """Refuse to replace a file of the same name that export-space did not write (e.g. your README.md)."""
    for name in written:
        if name in previous:
            continue
        path = to / name
        clash = path if path.exists() else next((parent for parent in path.parents
                                                  if parent != to and parent.exists() and not parent.is_dir()), None)
        if clash is not None:
            raise TextuneError(f"--to {to} already has {clash.relative_to(to).as_posix()}, which export-space did "
                               "not write; move it, or export to another folder")


def remove_previous_export(to: Path, previous: dict[str, str]) -> None:
    """Delete the files the previous export wrote, and the folders that leaves empty; nothing else."""
    for name in previous:
        if (to / name).is_file() or (to / name).is_symlink():  # a folder now at that name is not the file it wrote
            (to / name).unlink()
    folders = {parent for name in previous for parent in (to / name).parents if parent != to and to in parent.parents}
    for folder in sorted(folders, key=lambda path: len(path.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    (to / MANIFEST_FILE).unlink(missing_ok=True)


def copy_package(target: Path) -> None:
    """Copy textune's source and data files so the Space runs the same code without installing it."""
    source = Path(__file__).resolve().parents[1]
    for path in sorted(source.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def pinned_version(package: str) -> str | None:
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    return version.split("+")[0]  # torch 2.13.0+cpu: the local tag is not on PyPI


def requirements_text() -> str:
    lines = ["# Pinned to the versions textune used when exporting this Space (Python "
             f"{sys.version_info.major}.{sys.version_info.minor}).",
             "# torch comes from PyTorch's CPU-only index: PyPI's Linux wheel pulls gigabytes of CUDA libraries.",
             f"--extra-index-url {TORCH_CPU_INDEX}"]
    for package in SPACE_PACKAGES:
        version = pinned_version(package)
        if version is None:
            logger.warning("%s is not installed here; requirements.txt leaves it unpinned", package)
        lines.append(f"{package}=={version}" if version else package)
    return "\n".join(lines) + "\n"


def readme_text(service: ModelService, title: str, license: str, app_file: str = "app.py") -> str:
    info, card = service.info, service.task.card()
    description = f"{card['kind']} fine-tuned with textune"
    front = {
        "title": title, "emoji": "🏷️", "colorFrom": "blue", "colorTo": "indigo", "sdk": "gradio",
        "sdk_version": pinned_version("gradio") or "6.0.0",
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "app_file": app_file, "pinned": False, "license": license,
        "short_description": description[:60],
    }
    front_matter = "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n"
    summary = f"A {description}"
    if info.base_model:
        summary += f" from `{model_display_name(str(info.base_model))}`"
    summary += "."
    if card.get("outputs"):
        summary += f" {card['outputs'][0].upper()}{card['outputs'][1:]}."
    if info.headline_metrics:
        summary += " Validation: " + ", ".join(f"{k} {v:.3f}" for k, v in info.headline_metrics.items()) + "."
    demo = service.task.demo()
    example = info.examples[0] if info.examples else None
    if example is None:  # no validation rows (hub data, --large_data, moved files): the task's built-in example
        rows = service.task.example_rows(1)
        example = next(iter(demo.examples(rows, 1)), None) if rows is not None and len(rows) else None
    if example is not None:
        # quotes, backslashes and newlines would break the shell and Python lines the README shows
        example = [safe_example(value) for value in example]
        api_input = demo.to_input(*example)
    else:  # the card's example is one API input, not the demo's values
        api_input = card["example"]
        example = [api_input]
    from .api import inputs_field

    body = json.dumps({inputs_field(service.api): [api_input]}, ensure_ascii=False)
    return README_TEMPLATE.format(front_matter=front_matter, title=title, summary=summary, body=body,
                                  arguments=", ".join(repr(value) for value in example), app_file=app_file)


def safe_example(value):
    """An example value cut to 80 characters, without the characters that would break the README's commands."""
    if not isinstance(value, str):
        return value
    return value[:80].replace("'", "").replace('"', "").replace("\\", "").replace("\n", " ")


def push_space(folder: str | Path, repo_id: str, token: str | None = None, private: bool = False,
               timeout: float = 10.0) -> str:
    """Upload the files export-space wrote in a Space folder (or export a run folder first); returns its URL.

    Only the files its manifest lists go up: anything else in the folder (a virtualenv, notes, a `.env`) stays.
    Fails within `timeout` seconds, with the way out, when the Hub cannot be reached or no token is found.

    Raises:
        TextuneError: Not a Space or run folder, a bad repo id, offline, not logged in, `private` asked of an
            existing public Space, or the Hub refused.

    Example:
        >>> push_space("space/", "me/disaster-tweets")
    """
    folder = Path(folder).expanduser()
    check_repo_id(repo_id)
    manifest = read_manifest(folder) if folder.is_dir() else None
    if manifest is None and (folder / RUN_FILE).exists():
        with tempfile.TemporaryDirectory(prefix="textune-space-") as tmp:
            export_space(folder, Path(tmp) / "space", title=repo_id.split("/")[1])
            return push_space(Path(tmp) / "space", repo_id, token, private, timeout)
    if manifest is None:
        raise TextuneError(f"{folder} has no {MANIFEST_FILE} (the list of files to upload); write the Space with "
                           f"`textune export-space RUN --to {folder}`")
    missing = [name for name in manifest if not (folder / name).is_file()]
    if missing:
        raise TextuneError(f"{folder} lacks {', '.join(missing[:3])}, written by export-space; export again")
    api = connect(token, f"The Space folder {folder} is ready: upload it when online, or by hand in the Hub's web UI",
                  timeout)
    repo_id = upload_files(api, repo_id, {name: folder / name for name in manifest}, repo_type="space",
                           private=private, commit_message="Upload from textune export-space", space_sdk="gradio")
    return f"{hub_endpoint()}/spaces/{repo_id}"
