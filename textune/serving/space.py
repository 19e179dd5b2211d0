"""Hugging Face Spaces: `export_space` writes a complete Gradio Space folder, `push_space` uploads one.

The folder holds `app.py` (which calls `textune.serving.serve`, the same server as `textune serve`), a copy of
the textune package, `model/` (weights, tokenizer, task, metrics and demo examples), `requirements.txt`
pinned to the versions installed here, and `README.md` with the Spaces YAML front matter.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import yaml

from ..errors import TextuneError
from ..run_folder import RUN_FILE, read_run_file
from .service import EXAMPLES_FILE, METRICS_FILE, ModelService

logger = logging.getLogger(__name__)

# What the Space installs, pinned to the versions used here: what serving imports (textune's own dependencies
# and the serving stack). torch comes first so pip resolves the rest against it.
SPACE_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pandas", "pyarrow",
                  "scikit-learn", "scipy", "datasets", "accelerate", "evaluate", "pyyaml", "huggingface_hub",
                  "gradio", "fastapi", "uvicorn", "httpx")
# textune dependencies a Space leaves out: only training imports them (lazily), and a Space never trains.
# tests/test_space.py checks every dependency in pyproject.toml is in one of these two lists.
TRAINING_ONLY_PACKAGES = ("matplotlib", "tensorboard")
# Files of a run folder the Space needs; checkpoints, optimizer state and training_args.bin (a pickle) stay home.
MODEL_FILE_PATTERNS = ("config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json",
                       "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
                       "vocab.json", "merges.txt", "spiece.model", "tokenizer.model", "sentencepiece.bpe.model",
                       METRICS_FILE)
# Keys of textune_run.json the Space keeps: data and model paths of the training machine are left out.
RUN_RECORD_KEYS = ("textune_version", "task", "base_model", "training_args")
WRITTEN = ("app.py", "requirements.txt", "README.md", "model", "textune")

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
.venv/bin/python app.py          # http://127.0.0.1:7860 (GRADIO_SERVER_PORT changes the port)
```

## Call it from a program

JSON API:

```
curl -s http://127.0.0.1:7860/v1/predict -H 'content-type: application/json' -d '{{"texts": ["{example}"]}}'
```

With `gradio_client` (also works with the Space's id instead of the URL):

```python
from gradio_client import Client

client = Client("http://127.0.0.1:7860/")
print(client.predict({example!r}, api_name="/predict"))
```
'''


def export_space(run_dir: str | Path, to: str | Path, title: str | None = None, license: str = "apache-2.0",
                 overwrite: bool = False) -> Path:
    """Write a Gradio Space folder serving the run: app.py, requirements.txt, README.md, model/ and textune/.

    Args:
        run_dir: A run folder written by `textune train`.
        to: The folder to write; it must be empty or absent unless `overwrite`.
        title: The Space's title (default: the run folder's name).
        license: The Space's license identifier, e.g. apache-2.0 or mit.
        overwrite: Replace what a previous export wrote in `to` (other files there are kept).

    Returns:
        The Space folder.

    Raises:
        TextuneError: The run folder is incomplete, has no safetensors weights, or `to` is not empty.

    Example:
        >>> export_space("experiments/", "space/")
    """
    run_dir, to = Path(run_dir).expanduser(), Path(to).expanduser()
    record = read_run_file(run_dir)
    check_space_can_carry(record, run_dir)
    if not any(run_dir.glob("*.safetensors")):
        raise TextuneError(f"--model {run_dir} has no safetensors weights; a Space loads safetensors only "
                           "(retrain, or convert the weights)")
    title = title or run_dir.resolve().name
    check_license(license)
    prepare_space_dir(to, overwrite)
    service = ModelService.from_run(run_dir)  # also proves the run loads before anything is written

    model_dir = to / "model"
    model_dir.mkdir()
    for pattern in MODEL_FILE_PATTERNS:
        for path in sorted(run_dir.glob(pattern)):
            shutil.copy2(path, model_dir / path.name)
    kept = {key: record[key] for key in RUN_RECORD_KEYS if key in record}
    if kept.get("base_model") and Path(str(kept["base_model"])).expanduser().exists():
        kept["base_model"] = Path(str(kept["base_model"])).name  # a local path says nothing on a Space
    (model_dir / RUN_FILE).write_text(json.dumps(kept, indent=2, default=str) + "\n")
    (model_dir / EXAMPLES_FILE).write_text(json.dumps(service.info.examples, indent=2, ensure_ascii=False) + "\n")

    copy_package(to / "textune")
    (to / "requirements.txt").write_text(requirements_text())
    (to / "app.py").write_text(APP_TEMPLATE.format(title=title))
    (to / "README.md").write_text(readme_text(service, title, license))
    logger.info("wrote the Space folder %s", to)
    return to


def check_space_can_carry(record: dict, run_dir: Path) -> None:
    """Refuse a run whose model needs code a Space does not get: a Space holds textune's code and the run's files.

    A metric script or registered metric needs nothing: a Space only predicts, and loading a run never resolves
    metrics. A head registered by the user's own module does: without it the model cannot be built.
    """
    from ..heads import DEFAULT_HEAD, head_code_outside_textune

    head = record.get("task", {}).get("head", DEFAULT_HEAD)
    module = head_code_outside_textune(head)
    if module is not None:
        where = "not registered in this process" if module == "unknown" else f"defined in {module}"
        raise TextuneError(f"--model {run_dir} uses the head {head!r} ({where}), whose code a Space does not carry; "
                           "serve it with `textune serve` after importing that code, or retrain with a built-in --head")


def check_license(license: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", license):
        raise TextuneError(f"--license {license!r}: use a Hub license identifier such as apache-2.0, mit or other")


def prepare_space_dir(to: Path, overwrite: bool) -> None:
    if to.exists() and not to.is_dir():
        raise TextuneError(f"--to {to} is a file; pass a folder")
    if to.exists() and any(to.iterdir()):
        if not overwrite:
            raise TextuneError(f"--to {to} is not empty; pass --overwrite to replace a previous export there")
        for name in WRITTEN:
            target = to / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    to.mkdir(parents=True, exist_ok=True)


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
             f"{sys.version_info.major}.{sys.version_info.minor})."]
    for package in SPACE_PACKAGES:
        version = pinned_version(package)
        if version is None:
            logger.warning("%s is not installed here; requirements.txt leaves it unpinned", package)
        lines.append(f"{package}=={version}" if version else package)
    return "\n".join(lines) + "\n"


def readme_text(service: ModelService, title: str, license: str) -> str:
    info = service.info
    kinds = {"single_label_classification": "text classifier", "multi_label_classification":
             "multi-label text classifier", "regression": "text regression model"}
    description = f"{kinds.get(info.problem_type, 'text model')} fine-tuned with textune"
    front = {
        "title": title, "emoji": "🏷️", "colorFrom": "blue", "colorTo": "indigo", "sdk": "gradio",
        "sdk_version": pinned_version("gradio") or "6.0.0",
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "app_file": "app.py", "pinned": False, "license": license,
        "short_description": description[:60],
    }
    front_matter = "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n"
    summary = f"A {description}"
    if info.base_model:
        summary += f" from `{Path(str(info.base_model)).name}`"
    summary += "."
    if info.labels:
        summary += " Labels: " + ", ".join(f"`{name}`" for name in info.labels) + "."
    if info.headline_metrics:
        summary += " Validation: " + ", ".join(f"{k} {v:.3f}" for k, v in info.headline_metrics.items()) + "."
    example = (info.examples[0] if info.examples else "Forest fire near La Ronge Sask. Canada")[:80]
    example = example.replace("'", "").replace('"', "").replace("\\", "").replace("\n", " ")
    return README_TEMPLATE.format(front_matter=front_matter, title=title, summary=summary, example=example)


def push_space(folder: str | Path, repo_id: str, token: str | None = None, private: bool = False,
               timeout: float = 10.0) -> str:
    """Upload a Space folder (or export a run folder first) to the Hub as a Gradio Space; returns its URL.

    Fails within `timeout` seconds, with the way out, when the Hub cannot be reached or no token is found.

    Raises:
        TextuneError: Not a Space or run folder, a bad repo id, offline, not logged in, or the Hub refused.

    Example:
        >>> push_space("space/", "me/disaster-tweets")
    """
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(folder).expanduser()
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id):
        raise TextuneError(f"--repo {repo_id!r}: use the form user/name (or org/name)")
    if (folder / RUN_FILE).exists() and not (folder / "app.py").exists():
        with tempfile.TemporaryDirectory(prefix="textune-space-") as tmp:
            export_space(folder, Path(tmp) / "space", title=repo_id.split("/")[1])
            return push_space(Path(tmp) / "space", repo_id, token, private, timeout)
    if not (folder / "app.py").exists() or not (folder / "README.md").exists():
        raise TextuneError(f"{folder} is not a Space folder (no app.py/README.md); "
                           "write one with `textune export-space RUN --to FOLDER`")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    offline_hint = (f"the Space folder {folder} is ready: upload it when online, or by hand in the Hub's web UI")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise TextuneError(f"HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it. {offline_hint}")
    check_reachable(endpoint, timeout, offline_hint)
    token = token or get_token()
    if not token:
        raise TextuneError("no Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --token")
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=folder,
                          commit_message="Upload from textune export-space",
                          ignore_patterns=["**/__pycache__/**", "*.pyc", ".git/**"])
    except HfHubHTTPError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TextuneError(f"the Hub refused the upload to {repo_id}: {first}") from None
    return f"{endpoint}/spaces/{repo_id}"


def check_reachable(endpoint: str, timeout: float, hint: str) -> None:
    """Fail fast, naming the endpoint, when the Hub cannot be reached (rather than hang inside an upload)."""
    import httpx

    try:
        httpx.head(endpoint, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as error:
        host = urlparse(endpoint).netloc or endpoint
        raise TextuneError(f"cannot reach the Hugging Face Hub at {host} ({type(error).__name__}); check the "
                           f"network or HF_ENDPOINT. {hint}") from None
