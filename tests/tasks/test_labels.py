"""Unit tests for textune.tasks.classification.labels: inferring the problem type and label list, and encoding labels."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from textune.errors import TextuneError
from textune.tasks.classification.labels import MULTI, REGRESSION, SINGLE, LabelSpec


def test_infer_int_labels_is_binary_classification():
    spec = LabelSpec.infer(pd.Series([0, 1, 1, 0]))

    assert spec.problem_type == SINGLE
    assert spec.labels == ["0", "1"]
    assert spec.num_labels == 2


def test_infer_string_labels_is_multi_class_with_sorted_names():
    spec = LabelSpec.infer(pd.Series(["pos", "neg", "neutral", "pos"]))

    assert spec.problem_type == SINGLE
    assert spec.labels == ["neg", "neutral", "pos"]
    assert spec.num_labels == 3


def test_infer_sorts_numeric_label_names_by_value():
    assert LabelSpec.infer(pd.Series([10, 2, 1])).labels == ["1", "2", "10"]


def test_infer_lists_is_multi_label():
    spec = LabelSpec.infer(pd.Series([["sports", "politics"], ["tech"], []]))

    assert spec.problem_type == MULTI
    assert spec.labels == ["politics", "sports", "tech"]


def test_infer_list_literals_read_from_a_csv_is_multi_label():
    spec = LabelSpec.infer(pd.Series(["['b', 'a']", "['c']"]))

    assert spec.problem_type == MULTI
    assert spec.labels == ["a", "b", "c"]


def test_infer_delimited_strings_with_a_delimiter_is_multi_label():
    spec = LabelSpec.infer(pd.Series(["sports,politics", "tech", "politics, tech"]), delimiter=",")

    assert spec.problem_type == MULTI
    assert spec.labels == ["politics", "sports", "tech"]
    assert spec.delimiter == ","


def test_infer_fractional_floats_is_regression():
    spec = LabelSpec.infer(pd.Series([0.5, 1.25, 3.0]))

    assert spec.problem_type == REGRESSION
    assert spec.labels == []
    assert spec.num_labels == 1


def test_infer_whole_number_floats_from_a_csv_with_gaps_is_classification():
    frame = pd.read_csv(io.StringIO("text,label\nfire,1\ncalm,\nsunny,0\nflood,1\n"))
    labels = frame["label"].dropna()
    assert labels.dtype == np.float64  # the gap made pandas read 0/1 as 0.0/1.0

    spec = LabelSpec.infer(labels)

    assert spec.problem_type == SINGLE
    assert spec.labels == ["0", "1"]


def test_infer_with_do_regression_true_makes_integer_labels_regression():
    assert LabelSpec.infer(pd.Series([0, 1, 2, 1]), do_regression=True).problem_type == REGRESSION


def test_infer_with_do_regression_false_makes_fractional_floats_classes():
    spec = LabelSpec.infer(pd.Series([0.5, 1.5, 0.5]), do_regression=False)

    assert spec.problem_type == SINGLE
    assert spec.labels == ["0.5", "1.5"]


def test_infer_with_do_regression_false_accepts_fractional_floats_with_a_few_strings_as_classes():
    spec = LabelSpec.infer(pd.Series([0.5, 1.5, "oops", 2.5]), do_regression=False)

    assert spec.problem_type == SINGLE
    assert spec.labels == ["0.5", "1.5", "2.5", "oops"]


def test_infer_with_problem_type_single_label_makes_fractional_floats_classes():
    spec = LabelSpec.infer(pd.Series([0.5, 1.5, 0.5]), problem_type=SINGLE)

    assert spec.problem_type == SINGLE
    assert spec.labels == ["0.5", "1.5"]


def test_infer_with_problem_type_regression_makes_integer_labels_regression():
    assert LabelSpec.infer(pd.Series([1, 2, 3]), problem_type=REGRESSION).problem_type == REGRESSION


def test_infer_with_problem_type_multi_label_refuses_plain_strings_and_names_the_delimiter_flag():
    with pytest.raises(TextuneError, match="--label_delimiter"):
        LabelSpec.infer(pd.Series(["a", "b"]), problem_type=MULTI)


def test_infer_with_problem_type_regression_refuses_non_numbers_naming_one():
    with pytest.raises(TextuneError, match="'high'"):
        LabelSpec.infer(pd.Series([1.5, "high"]), problem_type=REGRESSION)


@pytest.mark.parametrize("labels", [[1, 1, 1], ["pos", "pos"], [1.0, 1.0]])
def test_infer_refuses_a_single_class(labels):
    with pytest.raises(TextuneError, match="single class"):
        LabelSpec.infer(pd.Series(labels))


def test_infer_refuses_no_labels():
    with pytest.raises(TextuneError, match="no rows with a label"):
        LabelSpec.infer(pd.Series([], dtype=object))


def test_infer_refuses_fractional_floats_with_a_few_strings_naming_the_bad_value():
    with pytest.raises(TextuneError) as caught:
        LabelSpec.infer(pd.Series([0.5, 1.5, "oops", 2.5, 0.25]), where="--train_file")

    message = str(caught.value)
    assert "'oops'" in message
    assert "1 row(s)" in message
    assert "--train_file" in message


def test_encode_single_label_gives_class_ids():
    spec = LabelSpec.infer(pd.Series(["pos", "neg", "neutral"]))

    assert spec.encode(pd.Series(["neutral", "pos", "neg", " pos "])) == [1, 2, 0, 2]


def test_encode_matches_whole_number_floats_to_integer_names():
    spec = LabelSpec.infer(pd.Series([0, 1]))

    assert spec.encode(pd.Series([1.0, 0.0, 1])) == [1, 0, 1]


def test_encode_multi_label_gives_multi_hot_rows():
    spec = LabelSpec.infer(pd.Series([["a", "b"], ["c"]]))

    assert spec.encode(pd.Series([["a"], ["b", "c"]])) == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]


def test_encode_delimited_multi_label_gives_multi_hot_rows():
    spec = LabelSpec.infer(pd.Series(["a,b", "c"]), delimiter=",")

    assert spec.encode(pd.Series(["a, c", "b"])) == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_encode_multi_label_row_with_no_labels_gives_all_zeros():
    spec = LabelSpec.infer(pd.Series([["a", "b"], ["c"], []]))

    assert spec.encode(pd.Series([[], ["a"]])) == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]


def test_encode_regression_gives_floats():
    spec = LabelSpec.infer(pd.Series([0.5, 1.25, 3.0]))

    encoded = spec.encode(pd.Series([0.5, 2, "1.5"]))

    assert encoded == [0.5, 2.0, 1.5]
    assert all(isinstance(value, float) for value in encoded)


def test_encode_regression_refuses_non_numbers():
    spec = LabelSpec(REGRESSION)

    with pytest.raises(TextuneError, match="1 are not"):
        spec.encode(pd.Series([0.5, "high"]))


@pytest.mark.parametrize(("train", "unseen"), [
    (["pos", "neg"], ["pos", "neutral"]),
    ([["a"], ["b"]], [["a", "neutral"]]),
])
def test_encode_of_an_unseen_label_names_it_and_the_known_labels(train, unseen):
    spec = LabelSpec.infer(pd.Series(train))

    with pytest.raises(TextuneError) as caught:
        spec.encode(pd.Series(unseen), where="--validation_file")

    message = str(caught.value)
    assert "'neutral'" in message
    assert "--validation_file" in message
    assert "known: " + ", ".join(spec.labels) in message


@pytest.mark.parametrize("spec", [
    LabelSpec(SINGLE, ["neg", "pos"]),
    LabelSpec(MULTI, ["a", "b", "c"], ","),
    LabelSpec(REGRESSION),
])
def test_to_dict_and_from_dict_round_trip(spec):
    assert LabelSpec.from_dict(spec.to_dict()) == spec


def test_from_dict_of_a_regression_spec_without_labels_has_no_labels():
    assert LabelSpec.from_dict({"problem_type": REGRESSION}) == LabelSpec(REGRESSION)


def test_id2label_and_label2id_follow_the_label_order():
    spec = LabelSpec(SINGLE, ["neg", "neutral", "pos"])

    assert spec.id2label == {0: "neg", 1: "neutral", 2: "pos"}
    assert spec.label2id == {"neg": 0, "neutral": 1, "pos": 2}


# --label_names: display names for the raw labels


BINARY = LabelSpec(SINGLE, ["0", "1"])


@pytest.mark.parametrize("given", [
    "0=not a disaster,1=disaster",                    # the flag's one word
    [" 0 = not a disaster ", "1=disaster"],           # several words, spaces around '=' ignored
    '{"0": "not a disaster", "1": "disaster"}',       # what --config passes for a YAML mapping
    {0: "not a disaster", 1.0: "disaster"},           # a YAML mapping read with int/float keys, or Python
    ["not a disaster", "disaster"],                   # names alone, in label order
    "not a disaster,disaster",
])
def test_label_names_in_every_accepted_form_name_the_classes_in_id2label(given):
    spec = BINARY.with_names(given)

    assert spec.id2label == {0: "not a disaster", 1: "disaster"}
    assert spec.label2id == {"not a disaster": 0, "disaster": 1}
    assert spec.labels == ["0", "1"]  # the raw labels stay what the data files hold


def test_label_names_split_a_name_on_its_first_equals_sign_only():
    assert BINARY.with_names("0=a=b,1=c").display_names == ["a=b", "c"]


def test_labels_without_a_name_keep_their_raw_value():
    spec = LabelSpec(SINGLE, ["neg", "neutral", "pos"]).with_names("neg=negative,pos=positive")

    assert spec.display_names == ["negative", "neutral", "positive"]


def test_no_label_names_leave_the_spec_and_its_saved_form_as_they_were():
    assert BINARY.with_names(None) is BINARY
    assert BINARY.with_names("0=0").to_dict() == BINARY.to_dict()
    assert "names" not in BINARY.to_dict()


def test_encode_maps_raw_labels_and_the_names_to_the_same_class_ids():
    spec = BINARY.with_names("0=not a disaster,1=disaster")

    assert spec.encode(pd.Series([1, 0, "1"])) == [1, 0, 1]
    assert spec.encode(pd.Series(["disaster", "not a disaster"])) == [1, 0]


def test_multi_label_names_apply_to_every_label_and_encode_keeps_raw_labels():
    spec = LabelSpec(MULTI, ["a", "b", "c"], ",").with_names("a=alpha,c=gamma")

    assert spec.display_names == ["alpha", "b", "gamma"]
    assert spec.encode(pd.Series(["a,c", "b"])) == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_a_multi_label_name_holding_the_label_delimiter_is_refused():
    with pytest.raises(TextuneError, match="--label_names: the name 'fire, flood' holds ','"):
        LabelSpec(MULTI, ["a", "b"], None).with_names(["fire, flood", "calm"])


def test_named_spec_round_trips_through_the_run_file():
    spec = LabelSpec(MULTI, ["a", "b"], ",").with_names("a=alpha,b=beta")

    assert LabelSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(("given", "expected"), [
    ("0=calm,2=disaster", "label '2' is not among the training labels (0, 1)"),
    ("0=same,1=same", "two labels would be called 'same'"),
    ("0=calm,0=quiet", "names label '0' twice"),
    ("0=1,1=0", "the name '1' is another label's raw value"),
    ("only one name", "gives 1 names for 2 labels (0, 1)"),
    ("0=calm,disaster", "mixes raw=name pairs and a bare name ('disaster')"),
    ("0=,1=disaster", "lacks a label or a name"),
    ("{not json", "is not valid JSON"),
])
def test_bad_label_names_are_one_line_errors_naming_the_flag(given, expected):
    with pytest.raises(TextuneError) as caught:
        BINARY.with_names(given)

    message = str(caught.value)
    assert message.startswith("--label_names")
    assert expected in message
    assert "\n" not in message


def test_label_names_on_a_regression_run_is_an_error():
    with pytest.raises(TextuneError, match="--label_names names classes, but this run is regression"):
        LabelSpec(REGRESSION).with_names("0=low,1=high")


def test_label_names_syntax_is_checked_when_the_arguments_are_built():
    from textune.tasks.classification.arguments import ClassificationArguments

    with pytest.raises(TextuneError, match="--label_names mixes"):
        ClassificationArguments(label_names=["0=calm", "disaster"])


def test_classification_outputs_use_the_names_and_raw_predictions_the_raw_labels():
    from textune.tasks.classification.columns import ColumnSpec
    from textune.tasks import ClassificationTask

    logits = np.array([[2.0, -1.0], [-1.0, 2.0]])
    task = ClassificationTask(ColumnSpec(text=["text"], label="target"), BINARY.with_names("0=calm,1=disaster"))

    decoded = task.decode(None, None, (logits,))
    assert decoded["prediction"].tolist() == ["calm", "disaster"]
    assert list(decoded.columns) == ["prediction", "prob_calm", "prob_disaster"]
    assert task.result_lines(logits) == ["0\tcalm", "1\tdisaster"]
    assert task.raw_predictions(logits) == ["0", "1"]


def test_multi_label_outputs_join_the_names():
    from textune.tasks.classification.columns import ColumnSpec
    from textune.tasks import ClassificationTask

    labels = LabelSpec(MULTI, ["a", "b", "c"], ",").with_names("a=alpha,c=gamma")
    task = ClassificationTask(ColumnSpec(text=["text"], label="tags"), labels)
    logits = np.array([[3.0, -3.0, 3.0]])

    assert task.decode(None, None, (logits,))["prediction"].tolist() == ["alpha,gamma"]
    assert task.result_lines(logits) == ["0\t['alpha', 'gamma']"]
    assert task.raw_predictions(logits) == ["a,c"]
