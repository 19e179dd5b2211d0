"""Unit tests for textune.labels: inferring the problem type and label list, and encoding labels."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from textune.errors import TextuneError
from textune.labels import MULTI, REGRESSION, SINGLE, LabelSpec


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
