"""The Hugging Face Hub: the token (never from the command line), failing fast offline, and uploading a file list.

`push_run` (`textune push`, and `train --push_to_hub` after the final save) and `push_space` both go through
`upload_files`, which uploads exactly the files it is given: nothing else that lies in the folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import TextIO
from urllib.parse import urlparse

from .errors import TextuneError
from .models.loading import hub_endpoint, model_display_name
from .run_folder import RUN_FILE, read_run_file

logger = logging.getLogger(__name__)

TOKEN_FROM_STDIN = "-"
# Files of a run folder a model repo or a Space needs; checkpoints, optimizer state, training_args.bin (a pickle),
# predictions and the report stay home.
MODEL_FILE_PATTERNS = ("config.json", "adapter_config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json",
                       "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
                       "vocab.json", "merges.txt", "spiece.model", "tokenizer.model", "sentencepiece.bpe.model",
                       "chat_template.jinja", "eval_results.json")
# What `textune push` adds for a model repo: the training metrics (and a card and record, made for the repo).
MODEL_REPO_EXTRAS = ("train_results.json", "all_results.json")
# Keys of textune_run.json that leave the machine: data and model paths of the training machine are left out.
SHAREABLE_RUN_KEYS = ("textune_version", "task", "base_model", "training_args")
# Under this key of its `to_dict` a task keeps what stays on the training machine (user data, such as the base
# model's generations for validation prompts); the shared record leaves it out.
LOCAL_TASK_KEY = "local"
TOKEN_HELP = "set HF_TOKEN, run `hf auth login`, or pass --token - and give the token on stdin"


def read_token(flag_value: str | None, stdin: TextIO | None = None) -> str | None:
    """The token `--token` names: `-` reads one line from stdin; None leaves it to HF_TOKEN or the stored login.

    Raises:
        TextuneError: A literal token (it would show in `ps` and the shell history), or nothing on stdin.
    """
    if flag_value is None:
        return None
    if flag_value != TOKEN_FROM_STDIN:
        # Refused rather than accepted with a warning: by the time a warning prints, the token is already in the
        # shell history and visible to every user's `ps`, and the three safe ways are as short to type.
        raise TextuneError(f"--token takes only '-' (read the token from stdin): a token on the command line shows "
                           f"in `ps` and the shell history; {TOKEN_HELP}")
    token = (stdin or sys.stdin).readline().strip()
    if not token:
        raise TextuneError("--token -: stdin gave no token; pipe one in (e.g. `textune push ... --token - < file`), "
                           "or set HF_TOKEN")
    return token


def shareable_run_record(run_dir: Path) -> dict:
    """textune_run.json without the training machine's paths and the task's local part: what a Space or a model
    repo gets."""
    record = read_run_file(run_dir)
    kept = {key: record[key] for key in SHAREABLE_RUN_KEYS if key in record}
    if isinstance(kept.get("task"), dict):
        kept["task"] = {key: value for key, value in kept["task"].items() if key != LOCAL_TASK_KEY}
    if kept.get("base_model"):
        # a local path (even one that no longer exists, or a Windows one) says nothing elsewhere and names the user
        kept["base_model"] = model_display_name(str(kept["base_model"]))
    return kept


def check_repo_id(repo_id: str, namespace_optional: bool = False) -> None:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+" + ("|[\w.-]+" if namespace_optional else ""), repo_id):
        raise TextuneError(f"--repo {repo_id!r}: use the form user/name (or org/name)")


def check_reachable(endpoint: str, timeout: float, hint: str) -> None:
    """Fail fast, naming the endpoint, when the Hub cannot be reached (rather than hang inside an upload)."""
    import httpx

    try:
        httpx.head(endpoint, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as error:
        host = urlparse(endpoint).netloc or endpoint
        raise TextuneError(f"cannot reach the Hugging Face Hub at {host} ({type(error).__name__}); check the "
                           f"network or HF_ENDPOINT. {hint}") from None


def connect(token: str | None, offline_hint: str, timeout: float = 10.0):
    """An `HfApi` with a token, or a one-line error within `timeout` seconds: offline, unreachable, no token."""
    from huggingface_hub import HfApi, get_token

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise TextuneError(f"HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it. {offline_hint}")
    endpoint = hub_endpoint()
    check_reachable(endpoint, timeout, offline_hint)
    token = token or get_token()  # HF_TOKEN, then the login stored by `hf auth login`
    if not token:
        raise TextuneError(f"no Hugging Face token: {TOKEN_HELP}")
    return HfApi(endpoint=endpoint, token=token)


def upload_files(api, repo_id: str, files: dict[str, Path], repo_type: str = "model", private: bool = False,
                 commit_message: str = "Upload from textune", **create_args) -> str:
    """Create the repo if needed and upload exactly `files` (path in the repo -> local file) in one commit.

    Returns:
        The repo's id as the Hub names it (with the user's namespace when `repo_id` had none).

    Raises:
        TextuneError: The Hub refused, or `private` was asked of an existing public repo.
    """
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    try:
        repo_id = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **create_args).repo_id
        # create_repo(exist_ok=True) leaves an existing repo's visibility as it is: uploading a model meant to be
        # private into a public repo would publish it, so that is refused; the other way round only noted.
        is_private = bool(api.repo_info(repo_id, repo_type=repo_type).private)
        if private and not is_private:
            raise TextuneError(f"--private: {repo_id} already exists and is public, and an upload does not change "
                               "that; make it private in its Settings on the Hub, or drop --private")
        if not private and is_private:
            logger.info("%s already exists and is private; it stays private", repo_id)
        operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path))
                      for name, path in sorted(files.items())]
        api.create_commit(repo_id=repo_id, repo_type=repo_type, operations=operations, commit_message=commit_message)
    except HfHubHTTPError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TextuneError(f"the Hub refused the upload to {repo_id}: {first}") from None
    return repo_id


def run_files_to_push(run_dir: Path) -> dict[str, Path]:
    """The model files textune wrote in a run folder, by name (its card and record are pushed as copies)."""
    return {path.name: path for pattern in MODEL_FILE_PATTERNS + MODEL_REPO_EXTRAS
            for path in sorted(run_dir.glob(pattern)) if path.is_file()}


def push_run(run_dir: str | Path, repo_id: str, token: str | None = None, private: bool = False,
             timeout: float = 10.0) -> str:
    """Upload a run's model, tokenizer, model card (README.md, naming the repo) and metrics to a model repo.

    Checkpoints, optimizer state, predictions, the report and the data never leave; textune_run.json goes
    without the training machine's paths. Fails within `timeout` seconds when offline.

    Args:
        run_dir: A run folder written by `textune train`.
        repo_id: `user/name` (or `name`, in the token's own namespace).
        token: A Hub token; default HF_TOKEN or the login stored by `hf auth login`.
        private: Create the repo private (an existing public repo is refused, not changed).

    Returns:
        The model's URL on the Hub.

    Raises:
        TextuneError: Not a run folder, offline, no token, or the Hub refused.

    Example:
        >>> push_run("experiments/", "me/disaster-tweets")
    """
    import tempfile

    from .report.model_card import CARD_FILE, build_model_card

    run_dir = Path(run_dir).expanduser()
    check_repo_id(repo_id, namespace_optional=True)
    record = shareable_run_record(run_dir)
    api = connect(token, f"The run folder {run_dir} is kept as it is: push it with `textune push {run_dir} "
                         f"--repo {repo_id}` when online", timeout)
    if "/" not in repo_id:
        repo_id = f"{api.whoami()['name']}/{repo_id}"  # Trainer's default: the token's namespace
    with tempfile.TemporaryDirectory(prefix="textune-push-") as tmp:
        # Copies go up for two files: the card's usage examples name the repo, the record leaves out local paths.
        files = run_files_to_push(run_dir)
        files[RUN_FILE] = Path(tmp) / RUN_FILE
        files[RUN_FILE].write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        files[CARD_FILE] = Path(tmp) / CARD_FILE
        files[CARD_FILE].write_text(str(build_model_card(run_dir, repo_id, repo_id.split("/")[1])), encoding="utf-8")
        local_card = run_dir / CARD_FILE
        if local_card.exists() and local_card.read_text(encoding="utf-8") != str(build_model_card(run_dir)):
            logger.info("%s was edited since textune wrote it: pushing it as it is", local_card)
            files[CARD_FILE] = local_card
        upload_files(api, repo_id, files, private=private, commit_message="Upload from textune push")
    return f"{hub_endpoint()}/{repo_id}"


def _training_repo(training_args, output_dir: Path) -> str:
    return training_args.hub_model_id or output_dir.resolve().name  # Trainer's default: the folder's name


def check_hub_before_training(training_args, output_dir: Path) -> None:
    """`train --push_to_hub` offline or without a token fails before training, within seconds."""
    connect(training_args.hub_token, f"Train without --push_to_hub, then `textune push {output_dir} --repo "
                                     f"{_training_repo(training_args, output_dir)}` when online")


def push_after_training(training_args, output_dir: Path) -> str:
    """`train --push_to_hub`: push the finished run folder once, as `textune push` does; returns the URL."""
    return push_run(output_dir, _training_repo(training_args, output_dir), token=training_args.hub_token,
                    private=bool(training_args.hub_private_repo))
