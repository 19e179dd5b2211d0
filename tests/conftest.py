"""Shared fixtures: a tiny randomly initialised BERT with a tokenizer trained on the fixture text, and toy data."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

DISASTER_WORDS = ["fire", "flood", "earthquake", "storm", "explosion", "evacuate", "wildfire", "crash"]
CALM_WORDS = ["coffee", "sunny", "music", "lovely", "party", "garden", "movie", "happy"]
FILLER = ["the", "a", "today", "near", "my", "house", "we", "saw", "big", "in", "town", "and", "is", "so"]
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "disaster-tweets"


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
    from textune import heads, losses, metrics, preprocess

    saved = [(registry, dict(registry)) for registry in
             (heads.HEADS, metrics.METRICS, losses.LOSSES, preprocess.PREPROCESSORS)]
    yield
    for registry, copy in saved:
        registry.clear()
        registry.update(copy)
