"""Shared fixtures and helpers: a tiny randomly initialised BERT with a tokenizer trained on the fixture text, toy
data, the tutorial's command, one tiny trained run, and fakes of a model service and of the Hub.

Test modules import helpers from here, never from each other; heavy imports stay inside the helpers.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

DISASTER_WORDS = ["fire", "flood", "earthquake", "storm", "explosion", "evacuate", "wildfire", "crash"]
CALM_WORDS = ["coffee", "sunny", "music", "lovely", "party", "garden", "movie", "happy"]
FILLER = ["the", "a", "today", "near", "my", "house", "we", "saw", "big", "in", "town", "and", "is", "so"]
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "disaster-tweets"


@pytest.fixture(scope="session", autouse=True)
def textune_cache(tmp_path_factory):
    """textune's cache (GGUF and CTranslate2 conversions, merged adapter runs) in a temporary folder: `--backend
    auto` converts a text-generation model there, and tests never write into the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("textune-cache")
    previous = os.environ.get("TEXTUNE_CACHE")
    os.environ["TEXTUNE_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("TEXTUNE_CACHE", None)
    else:
        os.environ["TEXTUNE_CACHE"] = previous


def toy_text(rng: random.Random, label: int) -> str:
    """A sentence whose class is given away by its topic words, so a tiny model can learn it in a few steps."""
    topic = DISASTER_WORDS if label == 1 else CALM_WORDS
    words = [rng.choice(FILLER) for _ in range(rng.randint(2, 6))] + rng.sample(topic, 2)
    rng.shuffle(words)
    return " ".join(words)


def toy_frame(n: int, seed: int = 0, with_label: bool = True) -> pd.DataFrame:
    """Disaster-tweet-shaped rows: id, keyword, location, text, target."""
    rng = random.Random(seed)
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    frame = pd.DataFrame({
        "id": range(seed * 10_000, seed * 10_000 + n),
        "keyword": [rng.choice(["", "fire", "sun"]) for _ in range(n)],
        "location": [rng.choice(["", "Paris", "Lagos"]) for _ in range(n)],
        "text": [toy_text(rng, label) for label in labels],
    })
    if with_label:
        frame["target"] = labels
    return frame


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer BERT (hidden 32) saved in safetensors, with a WordPiece tokenizer trained on the toy vocabulary."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    corpus = [" ".join(DISASTER_WORDS + CALM_WORDS + FILLER)] * 4 + [toy_text(random.Random(i), i % 2) for i in range(200)]
    corpus += ["hypothesis premise label positive negative neutral sports politics tech " * 2]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=128,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    config = BertConfig(vocab_size=backend.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=128, pad_token_id=0)
    # the same weights in every session: an unseeded draw made tests that train it pass or fail by the luck of it
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def tweets_dir(tmp_path) -> Path:
    """train/val/test CSVs shaped like the shared disaster tweets; test.csv has no label column."""
    folder = tmp_path / "data"
    folder.mkdir()
    toy_frame(64, seed=1).to_csv(folder / "train.csv", index=False)
    toy_frame(16, seed=2).to_csv(folder / "val.csv", index=False)
    toy_frame(12, seed=3, with_label=False).to_csv(folder / "test.csv", index=False)
    return folder


@pytest.fixture
def restore_registries():
    """Undo registrations a test makes (heads, metrics, losses, preprocessors), so tests stay independent."""
    from textune.tasks.classification import heads, losses, metrics, preprocess

    saved = [(registry, dict(registry)) for registry in
             (heads.HEADS, metrics.METRICS, losses.LOSSES, preprocess.PREPROCESSORS)]
    yield
    for registry, copy in saved:
        registry.clear()
        registry.update(copy)


def split_flags(**flags):
    """DataArguments and ClassificationArguments from one dict of `textune train` flags, each to the class that has
    it (as the CLI's parser sends them), for tests that call `train()` or `load_splits` directly."""
    from dataclasses import fields

    from textune import ClassificationArguments, DataArguments

    own = {item.name for item in fields(ClassificationArguments)}
    return (DataArguments(**{key: value for key, value in flags.items() if key not in own}),
            ClassificationArguments(**{key: value for key, value in flags.items() if key in own}))


def tutorial_argv(model_dir, data_dir, output_dir, *extra):
    """run_classification.py's command from the tutorial, with only the program name changed."""
    return [
        "train", "--model_name_or_path", str(model_dir), "--train_file", f"{data_dir}/train.csv",
        "--validation_file", f"{data_dir}/val.csv", "--test_file", f"{data_dir}/test.csv",
        "--shuffle_train_dataset", "true", "--metric_name", "accuracy", "--text_column_name", "text",
        "--text_column_delimiter", "\\n", "--label_column_name", "target", "--do_train", "yes", "--do_eval", "yes",
        "--do_predict", "yes", "--max_seq_length", "512", "--per_device_train_batch_size", "32",
        "--learning_rate", "2e-5", "--num_train_epochs", "1", "--output_dir", str(output_dir), *extra,
    ]


def train_tiny_run(model_dir, tmp_path_factory):
    """A real (2 s) textune run on toy tweets: model, metrics, and a validation file for the demo's examples.

    Trained once per test session and shared by the serving, Space and browser tests, which only read it.
    """
    from textune.cli import main

    folder = tmp_path_factory.getbasetemp() / "serving-tiny-run"
    if not (folder / "run" / "textune_run.json").exists():
        data = folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        toy_frame(64, seed=1).to_csv(data / "train.csv", index=False)
        toy_frame(16, seed=2).to_csv(data / "val.csv", index=False)
        toy_frame(12, seed=3, with_label=False).to_csv(data / "test.csv", index=False)
        assert main(tutorial_argv(model_dir, data, folder / "run", "--overwrite_output_dir")) == 0
    return folder / "run"


def save_untrained_run(model_dir, folder, labels):
    """A run folder for any problem type without training: the tiny model with a fresh head, and its task."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from textune.tasks.classification.columns import ColumnSpec
    from textune.tasks.classification.labels import REGRESSION
    from textune.run_folder import write_run_file
    from textune.tasks import ClassificationTask

    task = ClassificationTask(ColumnSpec(text=["text"], label="label"), labels, max_seq_length=64)
    extra = {} if labels.problem_type == REGRESSION else {"id2label": labels.id2label, "label2id": labels.label2id}
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=labels.num_labels, problem_type=labels.problem_type, ignore_mismatched_sizes=True,
        **extra)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(folder)
    write_run_file(folder, {"task": task.to_dict(), "base_model": "tiny-bert"})
    return folder


def save_untrained_qa_run(model_dir, folder, max_seq_length: int = 32, doc_stride: int = 8):
    """A question-answering run folder without training: the tiny encoder with a fresh span head, and its task."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, BertForQuestionAnswering

    from textune.run_folder import write_run_file
    from textune.tasks import QuestionAnsweringTask
    from textune.tasks.question_answering.arguments import QuestionAnsweringArguments

    torch.manual_seed(0)
    BertForQuestionAnswering(AutoConfig.from_pretrained(model_dir)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(folder)
    task = QuestionAnsweringTask(QuestionAnsweringArguments(max_seq_length=max_seq_length, doc_stride=doc_stride))
    write_run_file(folder, {"task": task.to_dict(), "base_model": "tiny-bert"})
    return folder


class FakeService:
    """What build_app needs of a ModelService: `task`, `api`, `info` and `predict`, with a hook to fail or hang on a
    text."""

    def __init__(self, on_text=None):
        from textune.tasks.classification.columns import ColumnSpec
        from textune.serving.service import ModelInfo
        from textune.tasks import ClassificationTask
        from textune.tasks.classification.labels import SINGLE, LabelSpec

        self.task = ClassificationTask(ColumnSpec(text=["text"], label="label"), LabelSpec(SINGLE, ["calm", "disaster"]))
        self.api = self.task.api()
        self.info = ModelInfo(name="toy", headline_names=self.task.headline_metrics)
        self.on_text = on_text or (lambda text: None)
        self.calls: list[list[str]] = []

    def predict(self, texts: list[str]) -> list[dict]:
        self.calls.append(list(texts))
        for text in texts:
            self.on_text(text)
        hot = [0.9 if "fire" in text else 0.1 for text in texts]
        return [{"label": "disaster" if p > 0.5 else "calm", "scores": {"calm": 1 - p, "disaster": p}} for p in hot]


def fake_client(service=None, raise_server_exceptions=True, **config):
    """An in-process client of the real app around `service` (a FakeService by default); demo off unless asked."""
    from fastapi.testclient import TestClient

    from textune.serving import ServeConfig, build_app

    config = {"ui": False, **config}
    return TestClient(build_app(service or FakeService(), ServeConfig(**config)),
                      raise_server_exceptions=raise_server_exceptions)


class FakeHub:
    """Stands in for `huggingface_hub.HfApi`: records repos and commits; `existing` maps repo id -> private."""

    def __init__(self, existing: dict[str, bool] | None = None, on_commit=None):
        self.existing = dict(existing or {})
        self.created: list[dict] = []
        self.commits: list[dict] = []
        self.tokens: list[str] = []
        self.on_commit = on_commit

    def __call__(self, endpoint=None, token=None):  # HfApi(endpoint=..., token=...)
        self.tokens.append(token)
        return self

    def create_repo(self, repo_id, repo_type=None, private=False, exist_ok=False, **kwargs):
        repo_id = repo_id if "/" in repo_id else f"me/{repo_id}"  # the token's namespace
        self.created.append(dict(kwargs, repo_id=repo_id, repo_type=repo_type, private=private, exist_ok=exist_ok))
        self.existing.setdefault(repo_id, bool(private))
        return SimpleNamespace(repo_id=repo_id)

    def whoami(self):
        return {"name": "me"}

    def repo_info(self, repo_id, repo_type=None):
        return SimpleNamespace(private=self.existing[repo_id])

    def create_commit(self, repo_id, repo_type, operations, commit_message):
        files = {op.path_in_repo: Path(op.path_or_fileobj) for op in operations}
        small = {name: path.read_bytes() for name, path in files.items() if path.suffix in (".json", ".md")}
        commit = {"repo_id": repo_id, "repo_type": repo_type, "files": files, "contents": small}
        if self.on_commit:
            commit.update(self.on_commit())
        self.commits.append(commit)


@pytest.fixture
def fake_hub(monkeypatch):
    """A Hub that is reachable, with HF_TOKEN set, recording what would be uploaded."""
    import huggingface_hub

    from textune import hub

    fake = FakeHub()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # scripts/test.sh sets it; these tests fake the Hub
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    monkeypatch.setattr(huggingface_hub, "HfApi", fake)
    monkeypatch.setattr(hub, "check_reachable", lambda *args: None)
    return fake


@contextlib.contextmanager
def running_space(space_dir: Path, title: str):
    """Start an exported Space's app.py on a free port, wait until it is ready, yield (url, process), stop it.

    Only the Space folder is on the path: the app must run from its own copy of textune. After the block,
    `process.rest` holds what it printed while shutting down.
    """
    import httpx

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(GRADIO_SERVER_PORT="0", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=space_dir, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = read_line_with(process, rf"Serving {re.escape(title)} on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.rest, _ = process.communicate(timeout=30)


def read_line_with(process, pattern: str, timeout: float) -> re.Match:
    """Read the process's output until a line matches `pattern` (fail with what it printed otherwise)."""
    import selectors

    seen, deadline = [], time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                if process.poll() is not None:
                    break
                continue
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if match := re.search(pattern, line):
                return match
    pytest.fail(f"no line matching {pattern!r} within {timeout} s; output:\n{''.join(seen)[-3000:]}")


# -- text to text: tiny T5 and BART ---------------------------------------------------------------------------------

SPANISH = {"fire": "fuego", "flood": "inundación", "earthquake": "terremoto", "storm": "tormenta",
           "explosion": "explosión", "evacuate": "evacuar", "wildfire": "incendio", "crash": "choque",
           "coffee": "café", "sunny": "soleado", "music": "música", "lovely": "precioso", "party": "fiesta",
           "garden": "jardín", "movie": "película", "happy": "feliz", "the": "el", "a": "un", "today": "hoy",
           "near": "cerca", "my": "mi", "house": "casa", "we": "nosotros", "saw": "vimos", "big": "grande",
           "in": "en", "town": "pueblo", "and": "y", "is": "es", "so": "tan"}


def seq2seq_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """Toy pairs: a short English sentence of the toy words, its word-by-word Spanish, and a one-word summary (the
    sentence's disaster word), so a tiny model learns either in a few steps."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 5))]
        topic = rng.choice(DISASTER_WORDS)
        words.insert(rng.randint(0, len(words)), topic)
        text = " ".join(words)
        rows.append({"id": f"s{seed}-{i}", "text": text, "summary": topic,
                     "spanish": " ".join(SPANISH[word] for word in words)})
    return pd.DataFrame(rows)


def _tiny_seq2seq(path: Path, family: str) -> Path:
    """A 2-layer random T5 or BART (d_model 32) in safetensors, with a word-level tokenizer of the toy words and
    their Spanish, specials as the family has them (T5: pad 0, eos 1; BART: <s> 0, pad 1, </s> 2)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast, T5Config
    from transformers import T5ForConditionalGeneration

    words = DISASTER_WORDS + CALM_WORDS + FILLER + list(SPANISH.values()) + ["summarize:", "translate:"]
    specials = ["<pad>", "</s>", "<unk>"] if family == "t5" else ["<s>", "<pad>", "</s>", "<unk>"]
    backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.train_from_iterator([" ".join(words)] * 2, trainers.WordLevelTrainer(special_tokens=specials))
    eos = backend.token_to_id("</s>")
    if family == "t5":
        backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos)])
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                            unk_token="<unk>", model_max_length=128)
        config = T5Config(vocab_size=backend.get_vocab_size(), d_model=32, d_kv=16, d_ff=37, num_layers=2,
                          num_heads=2, pad_token_id=0, eos_token_id=eos, decoder_start_token_id=0)
        model_class = T5ForConditionalGeneration
    else:
        bos = backend.token_to_id("<s>")
        backend.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                               special_tokens=[("<s>", bos), ("</s>", eos)])
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", pad_token="<pad>",
                                            eos_token="</s>", unk_token="<unk>", model_max_length=128)
        config = BartConfig(vocab_size=backend.get_vocab_size(), d_model=32, encoder_layers=2, decoder_layers=2,
                            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=37,
                            decoder_ffn_dim=37, max_position_embeddings=128, pad_token_id=1, bos_token_id=0,
                            eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=None)
        model_class = BartForConditionalGeneration
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    torch.manual_seed(0)  # the same weights in every session
    model_class(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory) -> Path:
    return _tiny_seq2seq(tmp_path_factory.mktemp("tiny-t5"), "t5")


@pytest.fixture(scope="session")
def tiny_bart_dir(tmp_path_factory) -> Path:
    return _tiny_seq2seq(tmp_path_factory.mktemp("tiny-bart"), "bart")


def seq2seq_run(model_dir: Path, folder: Path, **settings) -> Path:
    """A run folder of an untrained tiny seq2seq model with a summarization task (prefix "summarize: ", 3 new tokens
    unless told), for prediction and serving tests that need no training."""
    import shutil

    from textune.run_folder import write_run_file
    from textune.tasks.text_to_text import SummarizationArguments, SummarizationTask

    shutil.copytree(model_dir, folder)
    settings = {"source_prefix": "summarize: ", "generation_max_length": 3} | settings
    task = SummarizationTask.from_arguments(SummarizationArguments(text_column="text", summary_column="summary",
                                                                   **settings), seq2seq_rows(8), "x")
    write_run_file(folder, {"task": task.to_dict(), "base_model": "tiny"})
    return folder


# --- Tiny causal language model (Llama family), for generation, chat, GGUF and engine tests ------------------------

TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama (hidden 32, 4 heads, 2 key/value heads) saved in safetensors, with a byte-level BPE tokenizer
    trained on the toy text and SmolLM2's ChatML chat template. Special tokens: 0 `<|endoftext|>` (padding),
    1 `<|im_start|>` (bos), 2 `<|im_end|>` (eos: ends an answer); generation_config.json names them.

    Its weights are drawn with a wide spread (initializer_range 0.5), so greedy choices are clear-cut and two
    engines computing in float32 pick the same tokens.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    corpus = [" ".join(DISASTER_WORDS + CALM_WORDS + FILLER)] * 4
    corpus += [toy_text(random.Random(i), i % 2) for i in range(200)]
    corpus += ["user assistant system: what happened? Tell me about the fire. Hello, how are you today?"] * 4
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    backend.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", model_max_length=256)
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=backend.get_vocab_size(), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, initializer_range=0.5, tie_word_embeddings=False,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(pad_token_id=0, bos_token_id=1, eos_token_id=2)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def llama_run(model_dir: Path, folder: Path, **settings) -> Path:
    """A run folder of the untrained tiny Llama with a text-generation task trained (as it were) on chat messages,
    8 new tokens unless told, for serving tests that need no training (as `seq2seq_run` is for seq2seq)."""
    import shutil

    from textune.run_folder import write_run_file
    from textune.tasks.text_generation.arguments import TextGenerationArguments
    from textune.tasks.text_generation.task import TextGenerationTask

    shutil.copytree(model_dir, folder)
    task = TextGenerationTask(TextGenerationArguments(**{"max_new_tokens": 8} | settings), data_format="messages")
    write_run_file(folder, {"task": task.to_dict(), "base_model": "tiny"})
    return folder
