"""TF Serving's REST bodies ↔ a signature's tensors, without a model."""

import base64

import pytest
import tensorflow as tf

from pipeline.server import rest

SPECS = {"user_id": tf.TensorSpec([None], tf.string, "user_id"),
         "k": tf.TensorSpec([], tf.int32, "k")}


def test_the_row_and_columnar_forms_give_the_same_tensors():
    rows, row_form = rest.request_tensors(
        {"instances": [{"user_id": "1", "k": 5}, {"user_id": "2", "k": 5}]}, SPECS)
    columns, columnar = rest.request_tensors({"inputs": {"user_id": ["1", "2"], "k": 5}}, SPECS)
    assert row_form and not columnar
    for inputs in (rows, columns):
        assert inputs["user_id"].numpy().tolist() == [b"1", b"2"]
        assert int(inputs["k"]) == 5 and inputs["k"].shape == ()


def test_b64_values_are_bytes():
    specs = {"examples": tf.TensorSpec([None], tf.string, "examples")}
    raw = b"\x00\xffbytes"
    inputs, _ = rest.request_tensors(
        {"instances": [{"b64": base64.b64encode(raw).decode()}]}, specs)
    assert inputs["examples"].numpy().tolist() == [raw]


@pytest.mark.parametrize("body, message", [
    ([1, 2], "JSON object with either"),
    ({"instances": [], "inputs": {}}, "either"),
    ({"inputs": {"user_id": ["1"]}}, "missing input 'k'"),
    ({"inputs": {"user_id": ["1"], "k": 5, "x": 1}}, "unknown input 'x'"),
    ({"inputs": {"user_id": ["1"], "k": "five"}}, "'k' must hold int32"),
    ({"inputs": {"user_id": ["1"], "k": 2.5}}, "'k' must hold integers"),
    ({"inputs": {"user_id": [1], "k": 5}}, "'user_id' must hold strings"),
    ({"inputs": {"user_id": ["1"], "k": [5]}}, "'k' must have shape []"),
    ({"inputs": {"user_id": "1", "k": 5}}, "'user_id' must have shape [-1]"),
    ({"instances": [{"user_id": "1", "k": 5}, {"user_id": "2", "k": 6}]}, "same value"),
    ({"instances": [{"b64": "!!"}]}, "not base64"),
])
def test_a_body_the_signature_cannot_take_is_refused_by_name(body, message):
    specs = ({"examples": tf.TensorSpec([None], tf.string, "examples")}
             if "b64" in str(body) else SPECS)
    with pytest.raises(rest.BadRequestError) as error:
        rest.request_tensors(body, specs)
    assert message in str(error.value)


def test_an_oversized_batch_is_its_own_error():
    too_many = {"inputs": {"user_id": ["1"] * (rest.MAX_BATCH + 1), "k": 5}}
    with pytest.raises(rest.TooLargeError):
        rest.request_tensors(too_many, SPECS)


def test_responses_take_tf_servings_shapes():
    outputs = {"item_ids": tf.constant([[b"7", b"8"]]), "scores": tf.constant([[0.5, 0.25]])}
    assert rest.response_body(outputs, row_form=True) == {
        "predictions": [{"item_ids": ["7", "8"], "scores": [0.5, 0.25]}]}
    assert rest.response_body(outputs, row_form=False) == {
        "outputs": {"item_ids": [["7", "8"]], "scores": [[0.5, 0.25]]}}
    single = {"rating": tf.constant([3.5, 4.0])}
    assert rest.response_body(single, row_form=True) == {"predictions": [3.5, 4.0]}
    assert rest.response_body({"raw": tf.constant([b"\xff"])}, row_form=False) == {
        "outputs": [{"b64": "/w=="}]}
