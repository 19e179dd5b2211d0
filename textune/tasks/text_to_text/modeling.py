"""The text-to-text model: a pretrained encoder-decoder, or one warm-started from an encoder (BERT) on both sides.

T5 reads its task from a prefix of the input ("summarize: "); `default_prefix` is what the example scripts tell a
user to pass, applied when the user passed none.
"""

from __future__ import annotations

import logging

from ...errors import TextuneError

logger = logging.getLogger(__name__)

T5_FAMILY = ("t5", "mt5", "umt5")  # FLAN-T5 and mengzi-t5 say "t5" in their config
# Language names T5's translation prefix spells out ("translate English to German: "), by ISO 639-1 code.
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "ro": "Romanian", "es": "Spanish",
                  "it": "Italian", "pt": "Portuguese", "nl": "Dutch", "zh": "Chinese", "ja": "Japanese",
                  "ru": "Russian", "ar": "Arabic", "ko": "Korean", "hi": "Hindi", "tr": "Turkish"}


def default_prefix(task_name: str, source: str | None, target: str | None) -> str | None:
    """T5's prefix for the task: "summarize: ", "translate English to Spanish: " (languages by code or name), or
    None (text2text, or languages it cannot name)."""
    if task_name == "summarization":
        return "summarize: "
    if task_name == "translation" and source and target:
        names = [LANGUAGE_NAMES.get(str(code).lower(), str(code).capitalize() if str(code).istitle() else None)
                 for code in (source, target)]
        if all(names):
            return f"translate {names[0]} to {names[1]}: "
    return None


def is_encoder_decoder(config) -> bool:
    return bool(getattr(config, "is_encoder_decoder", False)) or config.model_type == "encoder-decoder"


def warm_started_model(name_or_path: str, tokenizer, common: dict, use_safetensors: bool | None):
    """transformers' EncoderDecoderModel with both halves from the encoder's pretrained weights (the decoder's
    cross-attention is new), its special tokens set from the tokenizer: BERT's [CLS] starts an output, [SEP] ends it.

    Raises:
        TextuneError: The model cannot be a decoder (no causal-LM form with cross-attention), or the tokenizer has
            no start or end token to generate with.
    """
    from transformers import AutoConfig, EncoderDecoderModel

    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if start is None or end is None or tokenizer.pad_token_id is None:
        raise TextuneError(f"--model_name_or_path {name_or_path}: its tokenizer has no start, end or padding token "
                           "to generate with; use a sequence-to-sequence model (t5-small, facebook/bart-base)")
    try:
        # the configs loaded here, with the loading options: from_encoder_decoder_pretrained would drop those
        encoder_config = AutoConfig.from_pretrained(name_or_path, **common)
        decoder_config = AutoConfig.from_pretrained(name_or_path, is_decoder=True, add_cross_attention=True,
                                                    **common)
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(
            name_or_path, name_or_path, encoder_config=encoder_config, decoder_config=decoder_config,
            **_both(common | {"use_safetensors": use_safetensors}))
    except (ValueError, KeyError) as error:  # e.g. a Llama decoder: no cross-attention to read the input with
        raise TextuneError(f"--model_name_or_path {name_or_path} is neither a sequence-to-sequence model nor an "
                           f"encoder that can warm-start one ({error}); use t5-small or facebook/bart-base") from None
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id, config.bos_token_id = start, start
        config.eos_token_id, config.pad_token_id = end, tokenizer.pad_token_id
    model.config.vocab_size = model.config.decoder.vocab_size
    logger.info("%s is an encoder: warm-starting an encoder-decoder from it (both halves from its weights, the "
                "decoder's cross-attention new); outputs start with %s and end with %s",
                name_or_path, tokenizer.convert_ids_to_tokens(start), tokenizer.convert_ids_to_tokens(end))
    return model


def _both(common: dict) -> dict:
    """from_encoder_decoder_pretrained's keyword arguments: each loading option once per half."""
    return {f"{half}_{key}": value for half in ("encoder", "decoder") for key, value in common.items()}
