"""Extractive question answering: reading SQuAD's forms, windows over long contexts, answers back from logits,
SQuAD's metrics, the prediction files, the API and demo pieces, the report, and a tiny model that learns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from textune.data.tables import read_table
from textune.errors import TextuneError
from textune.tasks import TASKS, task_from_dict
from textune.tasks.question_answering import QuestionAnsweringArguments, QuestionAnsweringTask
from textune.tasks.question_answering.metrics import normalize_answer, question_scores, squad_metrics
from textune.tasks.question_answering.postprocess import postprocess_qa_predictions
from textune.tasks.question_answering.task import answer_column

# Contexts in the tiny tokenizer's vocabulary (tests/conftest.py), so every word is one or a few known tokens.
ARTICLES = [
    {"title": "storms", "paragraphs": [
        {"context": "we saw a big fire near my house today",
         "qas": [{"id": "q1", "question": "what did we see near the house",
                  "answers": [{"text": "a big fire", "answer_start": 7}, {"text": "big fire", "answer_start": 9}]},
                 {"id": "q2", "question": "where was the fire",
                  "answers": [{"text": "near my house", "answer_start": 20}]}]},
        {"context": "the storm is so big in town and we evacuate",
         "qas": [{"id": "q3", "question": "what do we do", "is_impossible": True, "answers": [],
                  "plausible_answers": [{"text": "evacuate", "answer_start": 35}]}]},
    ]},
]
FLAT = [
    {"id": "q1", "question": "what did we see near the house", "context": "we saw a big fire near my house today",
     "answers": {"text": ["a big fire", "big fire"], "answer_start": [7, 9]}},
    {"id": "q2", "question": "where was the fire", "context": "we saw a big fire near my house today",
     "answers": {"text": ["near my house"], "answer_start": [20]}},
    {"id": "q3", "question": "what do we do", "context": "the storm is so big in town and we evacuate",
     "answers": {"text": [], "answer_start": []}},
]


def qa_task(**settings) -> QuestionAnsweringTask:
    return QuestionAnsweringTask(QuestionAnsweringArguments(**settings))


def checked(task: QuestionAnsweringTask, rows: pd.DataFrame, where: str = "--train_file x") -> list[tuple]:
    rows = task.check_rows(rows, where, with_targets=True)
    column = answer_column(task.settings, rows, where)
    return [(r["id"], r["question"], r["context"], r[column]) for _, r in rows.iterrows()]


def window(features: dict, i: int) -> dict:
    """Window `i` of prediction features (a dict of lists), as a collator takes it."""
    return {name: values[i] for name, values in features.items()}


@pytest.fixture
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


# -- reading ---------------------------------------------------------------------------------------------------------

def test_squad_json_flattened_json_jsonl_parquet_and_csv_give_the_same_rows(tmp_path):
    task = qa_task()
    nested = tmp_path / "squad.json"
    nested.write_text(json.dumps({"version": "v2.0", "data": ARTICLES}))
    flat_json = tmp_path / "flat.json"
    flat_json.write_text(json.dumps({"data": FLAT}))
    jsonl = tmp_path / "flat.jsonl"
    jsonl.write_text("\n".join(json.dumps(row) for row in FLAT))
    parquet = tmp_path / "flat.parquet"
    pd.DataFrame(FLAT).to_parquet(parquet)
    csv_json = tmp_path / "answers_as_json.csv"
    pd.DataFrame([{**row, "answers": json.dumps(row["answers"])} for row in FLAT]).to_csv(csv_json, index=False)
    csv_repr = tmp_path / "answers_as_repr.csv"
    pd.DataFrame(FLAT).to_csv(csv_repr, index=False)  # pandas writes the dicts as Python's repr

    expected = checked(task, pd.DataFrame(FLAT))
    assert expected[0][3] == {"text": ["a big fire", "big fire"], "answer_start": [7, 9]}
    assert expected[2][3] == {"text": [], "answer_start": []}
    assert checked(task, task.read(nested, None, "--train_file")) == expected
    assert checked(task, task.read(flat_json, None, "--train_file")) == expected
    for path in (jsonl, parquet, csv_json, csv_repr):
        assert task.read(path, None, "--train_file") is None  # plain tables: the generic reader takes them
        assert checked(task, read_table(path)) == expected, path.name


def test_plain_csv_answer_text_is_found_in_the_context(tmp_path):
    path = tmp_path / "qa.csv"
    pd.DataFrame({"question": ["where was the fire", "what do we do"],
                  "context": ["we saw a big Fire near my house", "the storm is big"],
                  "answer": ["fire near my house", ""]}).to_csv(path, index=False)
    rows = checked(qa_task(), read_table(path))
    # found case-insensitively, and kept as the context spells it; an empty answer means none
    assert rows[0][3] == {"text": ["Fire near my house"], "answer_start": [13]}
    assert rows[1][3] == {"text": [], "answer_start": []}


def test_csv_answer_not_in_its_context_is_a_one_line_error_naming_the_row(tmp_path):
    path = tmp_path / "qa.csv"
    pd.DataFrame({"question": ["where", "what"], "context": ["fire near my house", "the storm is big"],
                  "answer": ["fire", "flood"]}).to_csv(path, index=False)
    with pytest.raises(TextuneError) as error:
        qa_task().check_rows(read_table(path), f"--train_file {path}", with_targets=True)
    message = str(error.value)
    assert "\n" not in message
    assert f"--train_file {path} row 2" in message and "'flood' is not in its context" in message


def test_a_wrong_answer_start_is_moved_to_the_nearest_occurrence_and_a_missing_answer_column_names_the_flag():
    rows = pd.DataFrame({"question": ["q"], "context": ["fire and fire again"],
                         "answers": [{"text": ["fire"], "answer_start": [7]}]})
    assert checked(qa_task(), rows)[0][3] == {"text": ["fire"], "answer_start": [9]}
    with pytest.raises(TextuneError, match="--answer_column_name"):
        qa_task().check_rows(rows.drop(columns="answers"), "--train_file x", with_targets=True)
    # predicting needs no answers, and ids are made when the rows have none
    assert qa_task().check_rows(rows.drop(columns="answers"), "--test_file x", with_targets=False)["id"].tolist() == ["0"]


def test_question_and_context_columns_pick_the_task_and_unanswerable_rows_turn_squad_v2_on(caplog):
    assert "question" in QuestionAnsweringTask.detect(["id", "question", "context", "answers"])
    assert QuestionAnsweringTask.detect(["text", "label"]) is None
    task = QuestionAnsweringTask.from_arguments(QuestionAnsweringArguments(), pd.DataFrame(FLAT), "--train_file x")
    assert task.version_2 and task.stratify_by(task.check_rows(pd.DataFrame(FLAT), "t", True)).tolist() == [1, 1, 0]
    # the answer column is each file's own: a run trained on SQuAD's `answers` scores a CSV's `answer`
    csv_rows = pd.DataFrame({"question": ["where"], "context": ["fire near my house"], "answer": ["my house"]})
    records = pd.DataFrame({"answer": ["my house"]})
    assert task.score(task.check_rows(csv_rows, "--validation_file v.csv", True), records)["exact_match"] == 100.0
    assert "1 of 3 questions have no answer" in caplog.text
    v1 = QuestionAnsweringTask.from_arguments(None, pd.DataFrame(FLAT[:2]), "--train_file x")
    assert not v1.version_2


@pytest.mark.parametrize("settings, flag", [
    ({"doc_stride": 384}, "--doc_stride"), ({"max_seq_length": 4}, "--max_seq_length"),
    ({"n_best_size": 0}, "--n_best_size"), ({"max_answer_length": 0}, "--max_answer_length"),
    ({"context_column_name": "question"}, "--context_column_name"), ({"answer_column_name": " "}, "--answer_column_name"),
])
def test_bad_flags_are_one_line_errors_naming_the_flag(settings, flag):
    with pytest.raises(TextuneError, match=flag):
        QuestionAnsweringArguments(**settings)


def test_to_dict_and_from_dict_round_trip():
    task = qa_task(answer_column_name="answers", max_seq_length=64, doc_stride=16, n_best_size=5,
                   version_2_with_negative=True, null_score_diff_threshold=1.5)
    data = json.loads(json.dumps(task.to_dict()))
    assert data["name"] == "question-answering" and TASKS["question-answering"] is QuestionAnsweringTask
    assert task_from_dict(data) == task


# -- windows and answers ---------------------------------------------------------------------------------------------

LONG_CONTEXT = " ".join(["we saw the big house in town"] * 4) + " and a wildfire near my garden"
ANSWER = "wildfire near my garden"


@pytest.mark.parametrize("padding_side, pad_to_max_length", [("right", False), ("left", False), ("right", True)])
def test_an_answer_in_the_second_window_is_found_there_and_recovered_from_its_logits(tokenizer, padding_side,
                                                                                      pad_to_max_length):
    tokenizer.padding_side = padding_side  # left: the context goes first, as run_qa.py does for XLNet
    task = qa_task(max_seq_length=32, doc_stride=8, version_2_with_negative=True, pad_to_max_length=pad_to_max_length)
    rows = task.check_rows(pd.DataFrame({"id": ["long"], "question": ["where is the fire"], "context": [LONG_CONTEXT],
                                         "answer": [ANSWER]}), "t", with_targets=True)
    train = task.encode(rows, tokenizer, for_training=True)
    assert len(train) == 2
    first, second = train[0], train[1]
    cls = tokenizer.cls_token_id
    assert first["start_positions"] == first["end_positions"] == first["input_ids"].index(cls)
    span = second["input_ids"][second["start_positions"]:second["end_positions"] + 1]
    assert tokenizer.decode(span) == ANSWER

    features = task.encode(rows, tokenizer, for_training=False)
    assert list(features["example_index"]) == [0, 0]
    # whatever side the tokenizer pads, windows are padded on the right, so output positions are token positions
    batch = task.collator(tokenizer)([window(features, 0), window(features, 1)])
    assert set(batch) == set(task.model_inputs(features)) and batch["attention_mask"][1].tolist()[-1] == 0
    assert batch["input_ids"][1].tolist()[:len(second["input_ids"])] == second["input_ids"]
    width = max(len(ids) for ids in features["input_ids"]) + 3  # outputs come padded past each window's end
    starts, ends = np.full((2, width), -5.0, np.float32), np.full((2, width), -5.0, np.float32)
    starts[1, second["start_positions"]], ends[1, second["end_positions"]] = 6.0, 6.0
    starts[:, width - 2:], ends[:, width - 2:] = 50.0, 50.0  # padding is never read, whatever it holds
    records = task.decode(rows, features, (starts, ends))
    assert records.loc[0, "answer"] == ANSWER
    assert LONG_CONTEXT[records.loc[0, "start"]:records.loc[0, "end"]] == ANSWER
    assert records.loc[0, "null_odds"] < 0 and 0.5 < records.loc[0, "score"] <= 1


def test_a_chinese_answer_is_mapped_to_its_characters_and_recovered_exactly(tokenizer):
    # BERT's normaliser splits Chinese into characters; the tiny vocabulary knows none of them ([UNK]), which is the
    # hard case: the answer's text can only come back through the character offsets, never from the tokens
    context, answer = "今天我们在城里看到了一场大火。", "一场大火"
    task = qa_task(max_seq_length=24, doc_stride=4)
    rows = task.check_rows(pd.DataFrame({"question": ["看到了什么"], "context": [context], "answer": [answer]}), "t",
                           with_targets=True)
    assert rows["answer"][0] == {"text": [answer], "answer_start": [10]}
    window = task.encode(rows, tokenizer, for_training=True)[0]
    assert window["end_positions"] - window["start_positions"] == len(answer) - 1  # one token per character
    features = task.encode(rows, tokenizer, for_training=False)
    width = len(features["input_ids"][0])
    starts, ends = np.zeros((1, width), np.float32), np.zeros((1, width), np.float32)
    starts[0, window["start_positions"]], ends[0, window["end_positions"]] = 9.0, 9.0
    records = task.decode(rows, features, (starts, ends))
    assert records.loc[0, "answer"] == answer and (records.loc[0, "start"], records.loc[0, "end"]) == (10, 14)


def test_squad_v2_answers_nothing_when_the_null_score_wins_by_more_than_the_threshold():
    # one window: CLS at 0, context tokens 3..5 spanning "big fire now"
    contexts = ["big fire now"]
    offset_start, offset_end = [np.array([-1, -1, -1, 0, 4, 9, -1])], [np.array([-1, -1, -1, 3, 8, 12, -1])]
    starts = np.array([[4.0, 0, 0, 1.0, 2.0, 0, 0]])
    ends = np.array([[4.0, 0, 0, 0, 2.5, 0, 0]])
    kwargs = dict(contexts=contexts, example_index=[0], offset_start=offset_start, offset_end=offset_end, cls_index=[0],
                  start_logits=starts, end_logits=ends)
    null = postprocess_qa_predictions(**kwargs, version_2_with_negative=True)[0]
    assert (null.text, null.start, null.end) == ("", None, None)
    assert null.null_odds == pytest.approx(8.0 - 4.5)  # null score minus the best span's
    answered = postprocess_qa_predictions(**kwargs, version_2_with_negative=True, null_score_diff_threshold=4.0)[0]
    assert (answered.text, answered.start, answered.end) == ("fire", 4, 8)
    v1 = postprocess_qa_predictions(**kwargs)[0]
    assert v1.text == "fire" and v1.null_odds is None
    # the score is the answer's probability among the n-best spans, a softmax of their start + end logits:
    # (fire, fire) 2+2.5, (big, fire) 1+2.5, (fire, now) 2+0, (big, big) 1+0, (big, now) 1+0, (now, now) 0+0
    spans = np.array([4.5, 3.5, 2.0, 1.0, 1.0, 0.0])
    assert v1.score == pytest.approx(np.exp(4.5) / np.exp(spans).sum())
    short = postprocess_qa_predictions(**kwargs, max_answer_length=1)[0]
    assert short.text == "fire"


def test_a_question_too_long_for_the_window_is_cut_instead_of_aborting_the_tokenizer(tokenizer, caplog):
    task = qa_task(max_seq_length=16, doc_stride=4)
    rows = task.check_rows(pd.DataFrame({"question": [" ".join(["fire"] * 40)], "context": [LONG_CONTEXT]}),
                           "t", with_targets=False)
    features = task.encode(rows, tokenizer, for_training=False)
    assert all(len(ids) <= 16 for ids in features["input_ids"]) and len(features["input_ids"]) > 1
    assert "were cut to it" in caplog.text
    with pytest.raises(TextuneError, match="--doc_stride"):
        qa_task(max_seq_length=16, doc_stride=13).encode(rows, tokenizer, for_training=False)


def test_a_slow_tokenizer_is_a_one_line_error_since_answers_need_character_offsets(tokenizer, monkeypatch):
    monkeypatch.setattr(type(tokenizer), "is_fast", property(lambda self: False))
    rows = qa_task().check_rows(pd.DataFrame({"question": ["q"], "context": ["fire"]}), "t", with_targets=False)
    with pytest.raises(TextuneError, match="fast \\(Rust\\) tokenizer.*--use_fast_tokenizer"):
        qa_task().encode(rows, tokenizer, for_training=False)


# -- metrics ---------------------------------------------------------------------------------------------------------

def test_metrics_follow_the_official_squad_normalisation():
    # lower case, punctuation, articles and spaces go: "The  Fire!" and "fire" are the same answer
    assert normalize_answer("The  Fire!") == "fire"
    assert normalize_answer("An apple, a pear.") == "apple pear"
    assert normalize_answer("theatre") == "theatre"  # an article only as a whole word
    # gold "big fire in town" (4 tokens) vs "the fire" (1 token after normalising): P=1, R=1/4, F1=0.4
    assert question_scores(["big fire in town"], "the fire") == (0, pytest.approx(0.4))
    # the best over the gold answers counts
    assert question_scores(["big fire in town", "Fire"], "the fire") == (1, 1.0)
    # unanswerable: only the empty prediction is right; golds that normalise to nothing count as none
    assert question_scores([], "") == (1, 1.0)
    assert question_scores(["the"], "fire") == (0, 0.0)

    golds = [["big fire in town", "Fire"], ["near my house"], [], []]
    predictions = ["fire", "my house!", "", "storm"]
    # F1: 1, 2*(1*2/3)/(1+2/3)=0.8, 1, 0
    metrics = squad_metrics(golds, predictions, version_2=True)
    assert metrics["exact_match"] == pytest.approx(100 * 2 / 4)
    assert metrics["f1"] == pytest.approx(100 * (1 + 0.8 + 1 + 0) / 4)
    assert (metrics["HasAns_exact"], metrics["HasAns_f1"], metrics["HasAns_total"]) == (50.0, pytest.approx(90.0), 2)
    assert (metrics["NoAns_exact"], metrics["NoAns_f1"], metrics["NoAns_total"]) == (50.0, 50.0, 2)
    assert set(squad_metrics(golds, predictions, version_2=False)) == {"exact_match", "f1"}
    assert set(QuestionAnsweringTask.headline_metrics) <= set(metrics)


# -- files, API, demo, report ----------------------------------------------------------------------------------------

def records_of(task, rows):
    return pd.DataFrame({"id": rows["id"], "question": rows["question"], "answer": ["a big fire", "", "evacuate"],
                         "score": [0.9, 0.6, 0.3], "start": pd.array([7, None, 35], dtype="Int64"),
                         "end": pd.array([17, None, 43], dtype="Int64"), "null_odds": [-2.0, 1.5, -0.5]})


def test_prediction_files_are_run_qa_s_json_plus_a_csv(tmp_path):
    task = qa_task(version_2_with_negative=True)
    rows = task.check_rows(pd.DataFrame(FLAT), "t", with_targets=True)
    written = task.write_predictions(tmp_path, rows, records_of(task, rows))
    assert set(written) == {"predictions", "predictions_json", "null_odds"}
    assert json.loads((tmp_path / "predictions.json").read_text()) == {"q1": "a big fire", "q2": "", "q3": "evacuate"}
    assert json.loads((tmp_path / "null_odds.json").read_text()) == {"q1": -2.0, "q2": 1.5, "q3": -0.5}
    table = pd.read_csv(tmp_path / "predictions.csv", keep_default_na=False)
    assert list(table.columns) == ["id", "question", "answer", "score", "start", "end"]
    assert table["answer"].tolist() == ["a big fire", "", "evacuate"] and table["start"].tolist() == ["7", "", "35"]
    assert not (tmp_path / "x").exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written.values())


def test_a_failure_while_writing_leaves_the_previous_files_and_no_temporary_file(tmp_path, monkeypatch):
    from textune.tasks.question_answering import task as task_module

    task = qa_task(version_2_with_negative=True)
    rows = task.check_rows(pd.DataFrame(FLAT), "t", with_targets=True)
    (tmp_path / "predictions.json").write_text("previous")

    def broken_dumps(*args, **kwargs):
        raise OSError("disk full")

    real_dumps = json.dumps
    monkeypatch.setattr(task_module.json, "dumps", broken_dumps)
    with pytest.raises(OSError):
        task.write_predictions(tmp_path, rows, records_of(task, rows))
    monkeypatch.setattr(task_module.json, "dumps", real_dumps)
    assert (tmp_path / "predictions.json").read_text() == "previous"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_api_takes_questions_with_contexts_and_answers_one_record_each():
    from pydantic import ValidationError

    task = qa_task()
    api = task.api()
    body = api.request.model_validate({"inputs": [{"question": "where", "context": "fire near my house"},
                                                  {"question": "what", "context": "storm"}]})
    rows = api.rows(api.inputs(body))
    assert rows[["question", "context"]].values.tolist() == [["where", "fire near my house"], ["what", "storm"]]
    records = pd.DataFrame({"id": ["0", "1"], "question": ["where", "what"], "answer": ["fire", ""],
                            "score": [0.8, 0.4], "start": pd.array([0, None], dtype="Int64"),
                            "end": pd.array([4, None], dtype="Int64")})
    answers = api.to_records(records)
    assert answers == [{"answer": "fire", "score": 0.8, "start": 0, "end": 4},
                       {"answer": "", "score": 0.4, "start": None, "end": None}]
    assert [api.record.model_validate(answer).model_dump() for answer in answers] == answers
    for bad in ({"inputs": [{"question": " ", "context": "storm"}]}, {"inputs": [{"question": "q", "context": ""}]},
                {"texts": ["fire"]}):
        with pytest.raises(ValidationError):
            api.request.model_validate(bad)
    with pytest.raises(ValidationError, match="question is empty"):
        api.request.model_validate({"inputs": [{"question": "", "context": "storm"}]})
    assert task.describe()["inputs"].keys() == {"question", "context"}


def test_the_demo_highlights_the_answer_in_its_context():
    demo = qa_task().demo()
    given = demo.to_input("we saw a big fire", "what did we see")
    assert given == {"question": "what did we see", "context": "we saw a big fire"}
    highlighted, score = demo.show({"answer": "big fire", "score": 0.7, "start": 9, "end": 17}, given)
    assert highlighted == [("we saw a ", None), ("big fire", "answer")] and score == 0.7
    nothing, _ = demo.show({"answer": "", "score": 0.9, "start": None, "end": None}, given)
    assert all(label is None for _, label in nothing)
    import gradio as gr

    with gr.Blocks():
        inputs, outputs = demo.inputs(), demo.outputs()
    assert [type(c).__name__ for c in inputs + outputs] == ["Textbox", "Textbox", "HighlightedText", "Number"]
    shown = outputs[0].postprocess(highlighted).root
    assert [(token.token, token.class_or_confidence) for token in shown] == highlighted
    rows = pd.DataFrame(FLAT)
    assert demo.examples(rows, 2) == [[FLAT[0]["context"], FLAT[0]["question"]], [FLAT[1]["context"], FLAT[1]["question"]]]


def test_the_report_shows_answer_lengths_scores_by_answerability_and_the_worst_answers(tmp_path):
    task = qa_task(version_2_with_negative=True)
    rows = task.check_rows(pd.DataFrame(FLAT), "t", with_targets=True)
    sections = task.report_sections(rows, records_of(task, rows), tmp_path / "plots")
    assert [section.title for section in sections] == ["Answer lengths", "Exact match and F1", "Worst answers"]
    assert sections[0].plots[0].read_bytes().startswith(b"\x89PNG")
    assert "| with an answer | 2 | 50.00 |" in sections[1].markdown
    assert "| without an answer | 1 | 0.00 |" in sections[1].markdown
    # q2 (an answer was expected) and q3 (none was) are wrong; q1 is right and not listed
    assert "| q2 |" in sections[2].markdown and "| q3 |" in sections[2].markdown and "| q1 |" not in sections[2].markdown
    assert task.report_sections(None, None, tmp_path) == []
    assert task.card()["pipeline_tag"] == "question-answering"


def test_models_lists_question_answering_backbones():
    from textune.models.catalog import load_catalog, select

    entries = select(load_catalog(), task="question-answering")
    names = {entry.name for entry in entries}
    assert {"minilm", "deepset/roberta-base-squad2", "distilbert/distilbert-base-cased-distilled-squad"} <= names
    assert any("zh" in entry.languages for entry in entries)


# -- training through the protocol ----------------------------------------------------------------------------------

def training_rows(n: int) -> pd.DataFrame:
    import random

    from conftest import CALM_WORDS, DISASTER_WORDS, FILLER

    rng = random.Random(0)
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER + CALM_WORDS) for _ in range(rng.randint(4, 10))]
        at = rng.randint(0, len(words))
        answer = rng.choice(DISASTER_WORDS)
        context = " ".join(words[:at] + [answer] + words[at:])
        rows.append({"id": f"q{i}", "question": "what happened", "context": context, "answer": answer})
    return pd.DataFrame(rows)


def test_a_tiny_model_trained_through_the_protocol_learns_to_point_at_the_answer(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoTokenizer, Trainer, TrainingArguments

    from textune.training.arguments import ModelArguments

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = training_rows(64)
    task = QuestionAnsweringTask.from_arguments(QuestionAnsweringArguments(max_seq_length=32, doc_stride=8),
                                                rows, "--train_file x")
    rows = task.check_rows(rows, "--train_file x", with_targets=True)
    train = task.encode(rows, tokenizer, for_training=True)
    collate = task.collator(tokenizer)
    model = task.build_model(str(tiny_model_dir), ModelArguments(model_name_or_path=str(tiny_model_dir)),
                             local_files_only=True)

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            batch = collate([train[i] for i in range(len(train))])
            return float(model(**batch).loss)

    before = loss()
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=40, per_device_train_batch_size=16,
                             learning_rate=5e-3, report_to=[], save_strategy="no", use_cpu=True, seed=0)
    Trainer(model=model, args=args, train_dataset=train.select_columns(task.model_inputs(train)),
            data_collator=collate).train()
    after = loss()
    assert after < before * 0.8, (before, after)

    # predicting the way the engine does: features -> model inputs -> outputs -> records -> metrics
    features = task.encode(rows, tokenizer, for_training=False)
    model.eval()
    outputs = []
    with torch.no_grad():
        count = len(features["input_ids"])
        for begin in range(0, count, 16):
            batch = collate([window(features, i) for i in range(begin, min(begin + 16, count))])
            out = model(**batch)
            outputs.append((out.start_logits.numpy(), out.end_logits.numpy()))
    width = max(part[0].shape[1] for part in outputs)
    padded = tuple(np.concatenate([np.pad(part[k], ((0, 0), (0, width - part[k].shape[1]))) for part in outputs])
                   for k in range(2))
    records = task.decode(rows, features, padded)
    assert len(records) == len(rows) and records["id"].tolist() == rows["id"].tolist()
    metrics = task.score(rows, records)
    assert set(task.headline_metrics) <= set(metrics)
    assert metrics["f1"] > 50, metrics  # the disaster word is the answer; a trained model finds most of them
    assert task.agreement(records, records) == 1.0
    model.save_pretrained(tmp_path / "run")
    reloaded = task.load_model(tmp_path / "run")
    assert type(reloaded).__name__ == "BertForQuestionAnswering"


def test_window_bookkeeping_reads_the_same_from_a_dataset_a_selection_of_it_and_plain_lists():
    from datasets import Dataset

    from textune.tasks.question_answering.task import flat_column, ragged_column

    plain = {"offset_start": [[-1, 0, 4], [-1, 9], [-1, 2, 5, 7]], "example_index": [0, 0, 1]}
    dataset = Dataset.from_dict(plain)
    for features, order in ((plain, [0, 1, 2]), (dataset, [0, 1, 2]), (dataset.select([2, 0]), [2, 0])):
        assert [row.tolist() for row in ragged_column(features, "offset_start")] == [plain["offset_start"][i] for i in order]
        assert flat_column(features, "example_index").tolist() == [plain["example_index"][i] for i in order]


def test_an_empty_question_or_context_is_answered_422_naming_the_field():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    api = qa_task().api()
    app = FastAPI()

    def predict(body) -> dict:
        return {"n": len(api.inputs(body))}

    predict.__annotations__["body"] = api.request  # a real class: this module's annotations are strings
    app.post("/v1/predict")(predict)

    client = TestClient(app)
    assert client.post("/v1/predict", json={"inputs": [{"question": "q", "context": "c"}]}).json() == {"n": 1}
    for field in ("question", "context"):
        item = {"question": "q", "context": "c", field: "  "}
        response = client.post("/v1/predict", json={"inputs": [item]})
        assert response.status_code == 422 and f"{field} is empty" in response.text


def test_qa_arguments_extend_the_shared_sequence_arguments_with_their_own_window():
    from textune.tasks.arguments import SequenceArguments
    from textune.tasks.classification.arguments import ClassificationArguments

    assert issubclass(QuestionAnsweringArguments, SequenceArguments)
    assert QuestionAnsweringArguments().max_seq_length == 384 and ClassificationArguments().max_seq_length == 128
    assert QuestionAnsweringArguments().pad_to_max_length is False
    with pytest.raises(TextuneError, match="--max_seq_length must be positive"):
        QuestionAnsweringArguments(max_seq_length=0)


def test_sample_counts_are_questions_not_their_windows(tiny_model_dir, tmp_path):
    from textune.cli import main
    from textune.serving.service import ModelInfo, read_metrics
    from textune.serving.ui import header_markdown

    rows = training_rows(20)
    rows["context"] = rows["context"] + " and then we saw the big town near my house so today"  # two windows or more
    rows.iloc[:12].to_csv(tmp_path / "train.csv", index=False)
    rows.iloc[12:].to_csv(tmp_path / "val.csv", index=False)
    assert main(["train", "--task", "question-answering", "--model_name_or_path", str(tiny_model_dir),
                 "--train_file", str(tmp_path / "train.csv"), "--validation_file", str(tmp_path / "val.csv"),
                 "--max_seq_length", "16", "--doc_stride", "4", "--max_steps", "1", "--do_train", "--do_eval",
                 "--inference_backends", "none", "--output_dir", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "all_results.json").read_text())
    assert (results["train_samples"], results["eval_samples"]) == (12, 8)
    metrics = read_metrics(tmp_path / "run")
    header = header_markdown(ModelInfo("qa", metrics=metrics, headline_names=("f1",)), "qa",
                             QuestionAnsweringTask(QuestionAnsweringArguments()).card())
    assert header.endswith("(on 8 rows)")
