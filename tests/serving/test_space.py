"""export-space writes a complete Gradio Space that runs on its own; push-space uploads it or fails fast offline."""

from __future__ import annotations

import importlib.metadata
import json
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from textune.cli import main
from textune.serving import space

from conftest import running_space, save_untrained_qa_run, save_untrained_run, train_tiny_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    return train_tiny_run(tiny_model_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def space_dir(tiny_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "space"
    assert main(["export-space", str(tiny_run), "--to", str(folder), "--title", "Tiny tweets"]) == 0
    return folder


def front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_export_writes_app_requirements_readme_and_only_the_model_files(space_dir, tiny_run):
    assert {p.name for p in space_dir.iterdir()} == {"app.py", "app_minimal.py", "requirements.txt", "README.md",
                                                     "model", "textune", space.MANIFEST_FILE}
    model_files = {p.name for p in (space_dir / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "textune_run.json", "eval_results.json",
            "textune_examples.json"} <= model_files
    assert not any(name.startswith("checkpoint") or name.endswith(".bin") for name in model_files)
    record = json.loads((space_dir / "model" / "textune_run.json").read_text())
    assert "data_args" not in record and str(tiny_run.parent) not in json.dumps(record)  # no training-machine paths
    examples = json.loads((space_dir / "model" / "textune_examples.json").read_text())
    assert 1 <= len(examples) <= 6 and all(isinstance(text, str) for text in examples)
    assert (space_dir / "textune" / "serving" / "api.py").exists()
    compile((space_dir / "app.py").read_text(), "app.py", "exec")


def test_readme_front_matter_is_valid_spaces_yaml(space_dir):
    from huggingface_hub import SpaceCard

    meta = front_matter(space_dir / "README.md")
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == importlib.metadata.version("gradio")
    assert meta["app_file"] == "app.py" and (space_dir / meta["app_file"]).exists()
    assert meta["title"] == "Tiny tweets" and meta["license"] == "apache-2.0"
    assert len(meta["short_description"]) <= 60
    assert meta["colorFrom"] in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    card = SpaceCard.load(space_dir / "README.md")
    assert card.data.sdk == "gradio" and card.data.title == "Tiny tweets"
    assert "gradio_client" in card.text and "/v1/predict" in card.text


def test_requirements_pin_every_package_to_the_installed_version(space_dir):
    lines = [line for line in (space_dir / "requirements.txt").read_text().splitlines()
             if not line.startswith(("#", "--"))]
    pins = dict(line.split("==") for line in lines)
    assert list(pins) == list(space.SPACE_PACKAGES)
    for package, version in pins.items():
        assert version == importlib.metadata.version(package).split("+")[0]


def fake_wheel(folder: Path, name: str, version: str) -> Path:
    """An installable wheel that holds nothing but its metadata: enough for pip to resolve it."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel.writestr(f"{info}/WHEEL",
                       "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", f"{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")
    return path


def simple_index(root: Path, wheel: Path) -> str:
    """A PEP 503 index on disk serving one wheel, as a file:// URL pip accepts for --index-url."""
    project = root / "torch"
    project.mkdir(parents=True)
    (project / "index.html").write_text(f'<html><body><a href="{wheel.as_uri()}">{wheel.name}</a></body></html>\n')
    return root.as_uri()


def pip_picks_torch(requirements: str, pypi: str, tmp_path: Path) -> str:
    """The torch version pip would install from these requirements, with `pypi` standing in for PyPI."""
    path = tmp_path / "requirements.txt"
    path.write_text(requirements)
    report = tmp_path / "report.json"
    # --isolated: no pip.conf or PIP_* variables may add a real index; --ignore-installed: the torch here counts not
    subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed",
                    "--no-deps", "--no-cache-dir", "--disable-pip-version-check", "-q", "--index-url", pypi,
                    "--report", str(report), "-r", str(path)], check=True, timeout=120)
    (install,) = json.loads(report.read_text())["install"]
    return install["metadata"]["version"]


def test_requirements_make_pip_take_torchs_cpu_build_from_pytorchs_index(space_dir, tmp_path):
    lines = (space_dir / "requirements.txt").read_text().splitlines()
    options = [line for line in lines if line.startswith("--")]
    assert options == [f"--extra-index-url {space.TORCH_CPU_INDEX}"] and lines.index(options[0]) < 3
    torch_line = next(line for line in lines if line.startswith("torch=="))
    version = torch_line.removeprefix("torch==")
    assert "+" not in version  # PyPI has no local versions: torch==X+cpu would not resolve on macOS/Windows
    # Stand-ins for PyPI (the CUDA build, plain X) and PyTorch's CPU index (X+cpu), both offline on disk.
    pypi = simple_index(tmp_path / "pypi", fake_wheel(tmp_path / "pypi-wheels", "torch", version))
    cpu = simple_index(tmp_path / "cpu", fake_wheel(tmp_path / "cpu-wheels", "torch", f"{version}+cpu"))
    as_exported = "\n".join([*(line for line in lines if line.startswith("#")),
                             options[0].replace(space.TORCH_CPU_INDEX, cpu), torch_line]) + "\n"
    assert pip_picks_torch(as_exported, pypi, tmp_path) == f"{version}+cpu"
    assert pip_picks_torch(torch_line + "\n", pypi, tmp_path) == version  # without the index line: the CUDA one


def test_every_declared_dependency_is_either_pinned_for_the_space_or_training_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["serve"]
    names = {re.split(r"[<>=!~\[ ;]", requirement)[0].lower().replace("_", "-") for requirement in declared}
    covered = {name.lower().replace("_", "-") for name in space.SPACE_PACKAGES + space.TRAINING_ONLY_PACKAGES}
    assert names <= covered, f"decide whether a Space needs {sorted(names - covered)}: add to a list in space.py"


def test_the_minimal_app_is_short_and_predicts_a_probability_per_label(space_dir, monkeypatch):
    import importlib.util

    source = (space_dir / "app_minimal.py").read_text()
    assert len(source.splitlines()) <= 45 and "gr.Interface" in source and "pipeline(" in source
    spec = importlib.util.spec_from_file_location("app_minimal_under_test", space_dir / "app_minimal.py")
    app = importlib.util.module_from_spec(spec)
    monkeypatch.setattr("gradio.Interface.launch", lambda *args, **kwargs: pytest.fail("importing launched it"))
    spec.loader.exec_module(app)
    scores = app.predict("fire near the town")
    labels = set(json.loads((space_dir / "model" / "config.json").read_text())["id2label"].values())
    assert set(scores) == labels and abs(sum(scores.values()) - 1) < 1e-5
    assert all(0 <= value <= 1 for value in scores.values())


def test_template_minimal_makes_the_space_run_app_minimal(tiny_run, tmp_path):
    folder = tmp_path / "space"
    assert main(["export-space", str(tiny_run), "--to", str(folder), "--template", "minimal"]) == 0
    meta = front_matter(folder / "README.md")
    assert meta["app_file"] == "app_minimal.py" and (folder / "app.py").exists()
    assert "python app_minimal.py" in (folder / "README.md").read_text()


def test_template_minimal_is_refused_for_a_regression_run_and_its_app_left_out(tiny_model_dir, tmp_path, capsys):
    from textune.tasks.classification.labels import REGRESSION, LabelSpec


    run = save_untrained_run(tiny_model_dir, tmp_path / "run", LabelSpec(REGRESSION, []))
    assert main(["export-space", str(run), "--to", str(tmp_path / "minimal"), "--template", "minimal"]) == 2
    assert "regression" in capsys.readouterr().err and not (tmp_path / "minimal" / "app.py").exists()
    assert main(["export-space", str(run), "--to", str(tmp_path / "full")]) == 0
    assert (tmp_path / "full" / "app.py").exists() and not (tmp_path / "full" / "app_minimal.py").exists()


def write_decoys(folder: Path) -> dict[Path, str]:
    """Files of the user's own in a Space folder: export-space must neither remove nor upload them."""
    decoys = {folder / ".env": "HF_TOKEN=hf_secret_decoy\n", folder / "notes.txt": "mine",
              folder / ".venv" / "bin" / "python": "#!/bin/sh\n"}
    for path, text in decoys.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return decoys


def test_overwrite_replaces_only_the_files_export_space_wrote(tiny_run, tmp_path, capsys):
    folder = tmp_path / "space"
    folder.mkdir()
    decoys = write_decoys(folder)
    assert main(["export-space", str(tiny_run), "--to", str(folder)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export-space", str(tiny_run), "--to", str(folder), "--overwrite"]) == 0
    manifest = json.loads((folder / space.MANIFEST_FILE).read_text())["files"]
    assert "app.py" in manifest and "model/model.safetensors" in manifest
    assert not any(name.startswith((".env", "notes", ".venv")) for name in manifest)
    stale = folder / "textune" / "stale_module.py"  # as if an older textune had a module this one dropped
    stale.write_text("")
    manifest["textune/stale_module.py"] = space.file_digest(stale)
    (folder / space.MANIFEST_FILE).write_text(json.dumps({"files": manifest}))
    assert main(["export-space", str(tiny_run), "--to", str(folder), "--overwrite", "--title", "Again"]) == 0
    assert all(path.read_text() == text for path, text in decoys.items())
    assert not stale.exists() and "Again" in (folder / "app.py").read_text()
    assert not (folder / space.STAGING_DIR).exists()


def test_overwrite_refuses_to_replace_a_file_it_did_not_write_or_one_you_edited(tiny_run, tmp_path, capsys):
    folder = tmp_path / "project"  # `export-space --to . --overwrite` in a project with its own README.md
    folder.mkdir()
    (folder / "README.md").write_text("my project")
    assert main(["export-space", str(tiny_run), "--to", str(folder), "--overwrite"]) == 2
    assert "already has README.md, which export-space did not write" in capsys.readouterr().err
    assert (folder / "README.md").read_text() == "my project"
    assert {path.name for path in folder.iterdir()} == {"README.md"}  # nothing half-written

    exported = tmp_path / "space"
    assert main(["export-space", str(tiny_run), "--to", str(exported)]) == 0
    (exported / "app_minimal.py").write_text("# my edits\n")
    assert main(["export-space", str(tiny_run), "--to", str(exported), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "app_minimal.py" in err and "edited since the last export" in err
    assert (exported / "app_minimal.py").read_text() == "# my edits\n"


def test_the_exported_app_py_serves_the_demo_and_the_api_on_its_own(space_dir, tmp_path):
    from gradio_client import Client

    with running_space(space_dir, "Tiny tweets") as (url, process):
        answer = httpx.post(url + "/v1/predict", json={"texts": ["fire near the town"]}, timeout=30)
        assert answer.status_code == 200
        label = answer.json()["predictions"][0]["label"]
        assert answer.json()["model"] == "Tiny tweets" and label in ("0", "1")
        assert Client(url + "/", verbose=False).predict("fire near the town", api_name="/predict")["label"] == label
        assert "Tiny tweets" in httpx.get(url + "/", timeout=30).text
    # uvicorn drains, runs the app's shutdown, then re-raises SIGTERM so the exit status tells why it stopped
    assert process.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in process.rest


def test_push_space_fails_fast_offline_with_a_clear_message(space_dir, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    assert main(["push-space", str(space_dir), "--repo", "me/tiny"]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err

    monkeypatch.delenv("HF_HUB_OFFLINE")
    import socket

    with socket.socket() as unused:  # a port nothing listens on: the Hub "is down"
        unused.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{unused.getsockname()[1]}")
    assert main(["push-space", str(space_dir), "--repo", "me/tiny"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Hugging Face Hub" in err and str(space_dir) in err
    assert time.monotonic() - start < 10


def test_push_space_uploads_only_the_files_export_space_wrote(tiny_run, tmp_path, fake_hub):
    folder = tmp_path / "space"
    assert main(["export-space", str(tiny_run), "--to", str(folder)]) == 0
    write_decoys(folder)
    url = space.push_space(folder, "me/tiny")
    assert url == "https://huggingface.co/spaces/me/tiny"
    (created,) = fake_hub.created
    assert created["repo_type"] == "space" and created["space_sdk"] == "gradio" and created["private"] is False
    (commit,) = fake_hub.commits
    manifest = json.loads((folder / space.MANIFEST_FILE).read_text())["files"]
    assert set(commit["files"]) == set(manifest) and commit["repo_type"] == "space"
    assert {"app.py", "README.md", "requirements.txt", "model/model.safetensors"} <= set(commit["files"])


def test_push_space_refuses_a_folder_without_a_manifest(tmp_path, fake_hub, capsys):
    folder = tmp_path / "hand-made"
    folder.mkdir()
    (folder / "app.py").write_text("print('hi')\n")
    (folder / "README.md").write_text("---\nsdk: gradio\n---\n")
    write_decoys(folder)
    assert main(["push-space", str(folder), "--repo", "me/tiny"]) == 2
    err = capsys.readouterr().err
    assert "textune export-space" in err and len(err.strip().splitlines()) == 1
    assert fake_hub.commits == []


def test_push_space_without_a_token_says_how_to_log_in(space_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # scripts/test.sh sets it; this test fakes the Hub
    monkeypatch.setattr("textune.hub.check_reachable", lambda *args: None)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(Exception, match="hf auth login"):
        space.push_space(space_dir, "me/tiny")


def test_a_qa_run_without_validation_examples_exports_a_readme_with_the_tasks_built_in_example(tiny_model_dir,
                                                                                             tmp_path):
    # a run trained from a hub dataset or --large_data keeps no examples; QA's demo takes two values per example
    from textune.run_folder import read_run_file
    from textune.tasks import task_from_dict

    run = save_untrained_qa_run(tiny_model_dir, tmp_path / "qa")
    task = task_from_dict(read_run_file(run)["task"])
    assert main(["export-space", str(run), "--to", str(tmp_path / "space")]) == 0
    readme = (tmp_path / "space" / "README.md").read_text()
    body = json.loads(re.search(r"-d '(\{.*\})'", readme).group(1))
    assert body == {"inputs": [task.card()["example"]]}
    assert "client.predict('Forest fire near La Ronge Sask. Canada', 'Where was the fire?'" in readme
