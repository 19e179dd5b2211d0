"""Text to text (summarization, translation, text2text) on tiny random T5 and BART models built in fixtures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from textune.errors import TextuneError
from textune.tasks import TASKS, detect_task, task_from_dict
from textune.tasks.text_to_text import (SummarizationArguments, SummarizationTask, TextToTextArguments,
                                        TextToTextTask, TranslationArguments, TranslationTask)
from textune.tasks.text_to_text.metrics import split_sentences, text_metrics

from conftest import seq2seq_rows


def summarization(rows: pd.DataFrame | None = None, **settings) -> SummarizationTask:
    rows = seq2seq_rows(8) if rows is None else rows
    return SummarizationTask.from_arguments(SummarizationArguments(text_column="text", summary_column="summary",
                                                                   **settings), rows, "--train_file x")


# -- data ------------------------------------------------------------------------------------------------------------

def test_the_three_names_are_registered_and_columns_pick_summarization_and_translation():
    assert {"summarization", "translation", "text2text"} <= set(TASKS)
    assert detect_task(["id", "document", "summary"])[0] is SummarizationTask
    assert detect_task(["id", "translation", "en", "es"])[0] is TranslationTask
    assert detect_task(["text", "target"])[0] is not TextToTextTask  # text2text only by --task


def test_translation_json_rows_become_one_column_per_language_chosen_by_the_language_flags(tmp_path):
    path = tmp_path / "train.json"
    pairs = [{"translation": {"en": "the fire", "es": "el fuego"}}, {"translation": {"en": "a storm", "es": "una tormenta"}}]
    path.write_text("\n".join(json.dumps(pair) for pair in pairs), encoding="utf-8")
    rows = TranslationTask.read(path, None, "--train_file")
    assert rows["en"].tolist() == ["the fire", "a storm"] and rows["es"].tolist() == ["el fuego", "una tormenta"]
    assert detect_task(list(rows.columns))[0] is TranslationTask
    task = TranslationTask.from_arguments(TranslationArguments(source_lang="en", target_lang="es"), rows, "x")
    assert (task.text_column, task.summary_column) == ("en", "es")
    seq2seq_rows(2).to_csv(tmp_path / "plain.csv", index=False)
    assert TranslationTask.read(tmp_path / "plain.csv", None, "--train_file") is None  # the plain reader's


def test_a_missing_column_or_bad_flag_is_a_one_line_error_naming_the_flag():
    with pytest.raises(TextuneError, match="--summary_column"):
        summarization(seq2seq_rows(4).drop(columns=["summary"]))
    with pytest.raises(TextuneError, match="--max_target_length"):
        SummarizationArguments(max_target_length=0)
    with pytest.raises(TextuneError, match="--text_column and --summary_column"):
        TextToTextArguments(text_column="a", summary_column="a")


def test_to_dict_and_from_dict_round_trip_keeps_the_kind_and_the_settings():
    task = summarization(source_prefix="summarize: ", num_beams=2)
    again = task_from_dict(json.loads(json.dumps(task.to_dict())))
    assert type(again) is SummarizationTask and again.settings == task.settings


def test_encode_masks_reference_padding_with_minus_100_and_the_collator_pads_labels_with_it(tiny_t5_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5_dir)
    rows = pd.DataFrame({"text": ["the fire near my house", "a storm"], "summary": ["fire", "storm in town today"]})
    padded = summarization(rows, pad_to_max_length=True, max_source_length=12, max_target_length=8)
    labels = padded.encode(rows, tokenizer, for_training=True)["labels"]
    assert all(len(label) == 8 for label in labels)
    assert labels[0][2:] == [-100] * 6 and tokenizer.pad_token_id not in labels[0]
    kept = summarization(rows, pad_to_max_length=True, max_target_length=8, ignore_pad_token_for_loss=False)
    assert kept.encode(rows, tokenizer, for_training=True)["labels"][0][2:] == [tokenizer.pad_token_id] * 6

    per_batch = summarization(rows)
    features = per_batch.encode(rows, tokenizer, for_training=True)
    batch = per_batch.collator(tokenizer)([features[i] for i in range(2)])
    assert batch["labels"].shape == (2, 5) and batch["labels"][0, 2:].tolist() == [-100] * 3
    assert batch["input_ids"][1, 3:].tolist() == [tokenizer.pad_token_id] * 3


def test_the_source_prefix_is_put_before_every_input(tiny_t5_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5_dir)
    rows = seq2seq_rows(3)
    features = summarization(rows, source_prefix="summarize: ").encode(rows, tokenizer, for_training=False)
    prefix = tokenizer.convert_tokens_to_ids("summarize:")
    assert [ids[0] for ids in features["input_ids"]] == [prefix] * 3


# -- metrics ---------------------------------------------------------------------------------------------------------

PREDICTIONS = ["people left their homes. the fire spread near the town.", "a storm hit", "floods closed the roads"]
REFERENCES = ["a fire spread near town. residents left homes quickly.", "the storm hit hard", "roads were closed by floods"]


def test_rouge_bleu_and_chrf_agree_with_rouge_score_and_sacrebleu():
    import sacrebleu
    from rouge_score import rouge_scorer

    metrics = text_metrics(PREDICTIONS, REFERENCES, [5, 3, 4])
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    # rougeLsum reads one sentence a line: the references split by hand
    split = [(ref.replace(". ", ".\n"), pred.replace(". ", ".\n")) for ref, pred in zip(REFERENCES, PREDICTIONS)]
    expected = [scorer.score(ref, pred) for ref, pred in split]
    for name in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert metrics[name] == pytest.approx(100 * np.mean([score[name].fmeasure for score in expected]), abs=1e-3)
    assert metrics["rougeLsum"] != metrics["rougeL"]  # sentences in another order: only Lsum matches both
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score, abs=1e-3)
    assert metrics["chrf"] == pytest.approx(sacrebleu.corpus_chrf(PREDICTIONS, [REFERENCES]).score, abs=1e-3)
    assert metrics["gen_len"] == 4.0


def test_rouge_lsum_splits_sentences_without_nltk_data(monkeypatch):
    import nltk

    def no_download(*args, **kwargs):
        raise AssertionError("ROUGE-Lsum must not need NLTK's punkt data")

    monkeypatch.setattr(nltk, "download", no_download)
    monkeypatch.setattr(nltk, "sent_tokenize", no_download)
    assert split_sentences("It burned. Then it rained!  Why? no") == "It burned.\nThen it rained!\nWhy?\nno"
    assert text_metrics(PREDICTIONS, REFERENCES, [1, 1, 1])["rougeLsum"] > 0


# -- training and generating through the protocol ------------------------------------------------------------------

def test_a_tiny_t5_trained_through_the_protocol_lowers_its_loss_and_predicts_files(tiny_t5_dir, tmp_path):
    import torch
    from transformers import AutoTokenizer, Trainer, TrainingArguments

    from textune.inference.prediction import Predictor
    from textune.training.arguments import ModelArguments

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5_dir)
    rows = seq2seq_rows(48)
    task = summarization(rows, source_prefix="summarize: ", max_target_length=8, generation_max_length=4)
    rows = task.check_rows(rows, "--train_file x", with_targets=True)
    train = task.encode(rows, tokenizer, for_training=True)
    collate = task.collator(tokenizer)
    model = task.build_model(str(tiny_t5_dir), ModelArguments(model_name_or_path=str(tiny_t5_dir)),
                             local_files_only=True)

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(model(**collate([train[i] for i in range(len(train))])).loss)

    before = loss()
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=30, per_device_train_batch_size=16,
                             learning_rate=1e-2, report_to=[], save_strategy="no", use_cpu=True, seed=0)
    Trainer(model=model, args=args, train_dataset=train.select_columns(task.model_inputs(train)),
            data_collator=collate).train()
    after = loss()
    assert after < before * 0.7, (before, after)

    # predicting the way the engine does: Predictor.run calls the task's generate hook per batch
    predictor = Predictor(model, tokenizer, task, batch_size=8, backend="torch")
    records = predictor.records(rows)
    assert len(records) == len(rows) and records["prediction"].map(lambda text: isinstance(text, str)).all()
    assert records["generated_tokens"].between(0, 4).all()
    metrics = task.score(rows, records)
    assert set(task.headline_metrics) <= set(metrics)
    assert metrics["rougeL"] > 30, metrics  # the summary is the sentence's disaster word
    assert task.agreement(records, records) == 1.0
    written = task.write_predictions(tmp_path / "run", rows, records)
    table = pd.read_csv(written["predictions"], keep_default_na=False)
    assert list(table.columns) == ["id", "input", "reference", "prediction"]
    lines = written["generated_predictions"].read_text(encoding="utf-8").splitlines()
    assert lines == records["prediction"].tolist()
    no_references = rows.drop(columns=["summary"])
    assert "reference" not in task.prediction_table(no_references, records).columns
    model.save_pretrained(tmp_path / "run")
    assert type(task.load_model(tmp_path / "run")).__name__ == "T5ForConditionalGeneration"


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_beam_search_with_a_prefix_generates_what_model_generate_does(family, tiny_t5_dir, tiny_bart_dir):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from textune.inference.prediction import Predictor

    path = tiny_t5_dir if family == "t5" else tiny_bart_dir
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSeq2SeqLM.from_pretrained(path).eval()
    task = summarization(seq2seq_rows(4), source_prefix="summarize: ", num_beams=2, generation_max_length=6)
    texts = ["the fire near my house", "a storm in town today and so big"]
    records = Predictor(model, tokenizer, task, batch_size=2, backend="torch").predict(texts)
    expected = []
    for text in texts:  # one at a time: no padding, the reference behaviour
        with torch.no_grad():
            ids = model.generate(**tokenizer("summarize: " + text, return_tensors="pt"), num_beams=2,
                                 max_new_tokens=6)
        expected.append(tokenizer.decode(ids[0], skip_special_tokens=True).strip())
    assert records["prediction"].tolist() == expected
    assert task.api().to_records(records) == [{"generated_text": text} for text in expected]


# -- the training side: generating evaluation, T5's prefix, length caps, warm-starting from an encoder -------------

def train_run(model_dir, folder, task_args, rows=48, **training):
    """`train()` on toy pairs (the library call), with validation rows of their own; the result and the run."""
    from textune import train
    from textune.training.arguments import DataArguments, ModelArguments, TextuneTrainingArguments

    options = dict(output_dir=str(folder), do_train=True, do_eval=True, max_steps=4, per_device_train_batch_size=16,
                   per_device_eval_batch_size=8, learning_rate=1e-2, report_to=[], save_strategy="no", seed=0)
    result = train(ModelArguments(model_name_or_path=str(model_dir)), DataArguments(), TextuneTrainingArguments(
        **(options | training)), task_args, train_data=seq2seq_rows(rows), validation_data=seq2seq_rows(12, seed=1))
    return result, folder


def run_task(folder):
    from textune.run_folder import read_run_file

    return task_from_dict(read_run_file(folder)["task"])


def test_predict_with_generate_scores_generated_text_and_selects_the_best_model_by_it(tiny_t5_dir, tmp_path):
    from textune.inference.prediction import Predictor

    settings = SummarizationArguments(text_column="text", summary_column="summary", max_target_length=8,
                                      generation_max_length=4, num_beams=2, predict_with_generate=True)
    result, run = train_run(tiny_t5_dir, tmp_path / "run", settings, eval_strategy="steps", eval_steps=2,
                            save_strategy="steps", save_steps=2, metric_for_best_model="rougeL",
                            load_best_model_at_end=True)
    metrics = result.metrics["eval"]
    # what the saved model generates (beam search, 4 new tokens), scored: the numbers Trainer's evaluation gave
    predictor = Predictor.from_run(run, backend="torch")
    rows = seq2seq_rows(12, seed=1)
    expected = predictor.task.score(rows, predictor.records(rows))
    for name in ("rougeL", "bleu", "chrf", "gen_len"):
        assert metrics["eval_" + name] == pytest.approx(expected[name], abs=1e-6), name
    state = json.loads((run / "trainer_state.json").read_text(encoding="utf-8"))
    evaluated = [entry["eval_rougeL"] for entry in state["log_history"] if "eval_rougeL" in entry]
    assert len(evaluated) >= 2 and state["best_metric"] == pytest.approx(max(evaluated))
    # no --source_prefix with a T5: T5's own, saved with the run for predict and serve
    assert predictor.task.settings.source_prefix == "summarize: "


def test_without_predict_with_generate_evaluation_is_the_loss_alone(tiny_bart_dir, tmp_path):
    settings = TranslationArguments(text_column="text", summary_column="spanish", max_target_length=8,
                                    generation_max_length=4)
    result, run = train_run(tiny_bart_dir, tmp_path / "run", settings, rows=16, max_steps=1)
    metrics = result.metrics["eval"]
    assert "eval_loss" in metrics and not {"eval_bleu", "eval_rougeL", "eval_gen_len"} & set(metrics)
    assert run_task(run).settings.source_prefix is None  # BART reads no prefix


def test_metric_for_best_model_naming_a_text_score_generates_in_evaluation(tiny_bart_dir):
    from textune.training.arguments import TextuneTrainingArguments

    task = TranslationTask(TranslationArguments(text_column="text", summary_column="spanish"))
    plain = TextuneTrainingArguments(output_dir="unused", report_to=[])
    assert task.training_options(plain, None) == {} and plain.prediction_loss_only
    best_bleu = TextuneTrainingArguments(output_dir="unused", report_to=[], metric_for_best_model="bleu")
    assert task.training_options(best_bleu, None) == {"evaluation_outputs": task.evaluation_outputs}


def test_t5_models_get_the_tasks_prefix_when_none_is_given():
    from transformers import BartConfig, T5Config

    t5, mt5 = T5Config(), T5Config()
    mt5.model_type = "mt5"
    rows = seq2seq_rows(4)
    assert summarization(rows).for_model(t5).settings.source_prefix == "summarize: "
    assert summarization(rows).for_model(mt5).settings.source_prefix == "summarize: "
    assert summarization(rows, source_prefix="").for_model(t5).settings.source_prefix == ""  # the user's, kept
    assert summarization(rows).for_model(BartConfig()).settings.source_prefix is None
    translation = TranslationTask.from_arguments(TranslationArguments(source_lang="en", target_lang="es"),
                                                 rows.rename(columns={"text": "en", "spanish": "es"}), "x")
    assert translation.for_model(t5).settings.source_prefix == "translate English to Spanish: "
    text2text = TextToTextTask.from_arguments(TextToTextArguments(text_column="text", summary_column="summary"),
                                              rows, "x")
    assert text2text.for_model(t5).settings.source_prefix is None


def test_val_max_target_length_caps_the_validation_references_and_max_target_length_the_training_ones(tiny_t5_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5_dir)
    rows = pd.DataFrame({"text": ["the fire near my house"], "summary": ["fire storm flood near my house today"]})
    task = summarization(rows, max_target_length=3, val_max_target_length=6)
    assert len(task.encode(rows, tokenizer, True, "--train_file")["labels"][0]) == 3
    assert len(task.encode(rows, tokenizer, True, "--validation_file")["labels"][0]) == 6


def test_training_batches_are_grouped_by_input_length(tiny_t5_dir, tmp_path):
    from transformers import AutoTokenizer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from textune.training.arguments import ModelArguments, TextuneTrainingArguments
    from textune.training.trainer import TextuneTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5_dir)
    rows = pd.DataFrame({"text": [" ".join(["fire"] * (1 + i % 12)) for i in range(48)], "summary": ["fire"] * 48})
    task = summarization(rows)
    features = task.encode(rows, tokenizer, for_training=True)
    model = task.build_model(str(tiny_t5_dir), ModelArguments(model_name_or_path=str(tiny_t5_dir)), True)

    def padding(strategy: str) -> tuple[int, object]:
        args = TextuneTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, report_to=[],
                                        train_sampling_strategy=strategy, seed=0)
        trainer = TextuneTrainer(model=model, args=args, train_dataset=features,
                                 data_collator=task.collator(tokenizer), **task.training_options(args, features))
        batches = list(trainer.get_train_dataloader())
        assert all(batch["labels"].shape[0] == len(batch["input_ids"]) for batch in batches)
        return sum(int((batch["attention_mask"] == 0).sum()) for batch in batches), trainer._get_train_sampler()

    grouped, sampler = padding("group_by_length")
    assert isinstance(sampler, LengthGroupedSampler)
    assert grouped < 0.5 * padding("random")[0]  # inputs of 1-12 words: grouped batches pad far less


def test_an_encoder_warm_starts_an_encoder_decoder_that_is_saved_reloaded_and_predicts(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from textune.inference.prediction import Predictor

    settings = SummarizationArguments(text_column="text", summary_column="summary", max_target_length=8,
                                      generation_max_length=4, predict_with_generate=True)
    result, run = train_run(tiny_model_dir, tmp_path / "run", settings)
    assert "eval_rougeL" in result.metrics["eval"]
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert config["model_type"] == "encoder-decoder" and config["decoder"]["add_cross_attention"]
    assert (config["decoder_start_token_id"], config["eos_token_id"], config["pad_token_id"]) == (
        tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
    assert (run / "model.safetensors").is_file() and not list(run.glob("pytorch_model*.bin"))
    task = run_task(run)
    assert type(task.load_model(run)).__name__ == "EncoderDecoderModel"
    records = Predictor.from_run(run, backend="torch").predict(["the fire near my house"])
    assert isinstance(records["prediction"][0], str) and records["generated_tokens"][0] <= 4


def test_a_model_that_is_neither_seq2seq_nor_an_encoder_with_cross_attention_is_a_one_line_error(tiny_llama_dir):
    from textune.training.arguments import ModelArguments

    task = summarization()
    with pytest.raises(TextuneError, match="--model_name_or_path .* is neither a sequence-to-sequence model nor an encoder"):
        task.build_model(str(tiny_llama_dir), ModelArguments(model_name_or_path=str(tiny_llama_dir)), True)


def test_the_catalog_lists_seq2seq_checkpoints_by_task_and_language():
    from textune.models.catalog import load_catalog, select

    translation = [entry.id for entry in select(load_catalog(), "translation")]
    assert {"Helsinki-NLP/opus-mt-en-es", "facebook/nllb-200-distilled-600M", "google-t5/t5-small"} <= set(translation)
    chinese = [entry.id for entry in select(load_catalog(), "summarization", "zh")]
    assert "Langboat/mengzi-t5-base" in chinese and "google/mt5-small" in chinese
    english = [entry for entry in select(load_catalog(), "summarization", "en") if "multi" not in entry.languages]
    assert [entry.params_m for entry in english] == sorted(entry.params_m for entry in english)  # by size
