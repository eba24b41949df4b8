"""Model cards: parsed strictly, and held against the graph they describe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iras.model.card import (
    CardError,
    GraphSignature,
    ModelCard,
    TensorSpec,
    check_against_graph,
    parse_card,
    read_card,
)
from tests.model.tiny_models import card_for


def test_the_issues_form_is_read_as_written() -> None:
    card = parse_card(card_for())
    assert card == ModelCard(
        name="tiny",
        version="1",
        layout="NCHW",
        dtype="float32",
        size=32,
        resize=36,
        output="logits",
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )
    assert card.resample == "bilinear" and card.channel_axis == 1


def test_a_card_in_toml_reads_the_same_as_in_json(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps(card_for()))
    (tmp_path / "model.toml").write_text(
        'name = "tiny"\nversion = "1"\nlayout = "NCHW"\ndtype = "float32"\nsize = 32\n'
        "resize = 36\nmean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]\n"
        'output = "logits"\n'
    )
    assert read_card(tmp_path / "model.toml") == read_card(tmp_path / "model.json")


@pytest.mark.parametrize(
    ("change", "named", "found"),
    [
        # (what is changed in a good card, the field the error names, what it found)
        ({"layout": "CHW"}, "'layout'", "'CHW'"),
        ({"dtype": "float16"}, "'dtype'", "'float16'"),
        ({"size": "224"}, "'size'", "'224'"),
        ({"size": 2}, "'size'", "2"),
        ({"size": True}, "'size'", "True"),
        ({"resize": 16}, "'resize'", "16"),  # below size: the crop would not fit
        ({"output": "softmax"}, "'output'", "'softmax'"),
        ({"mean": [0.5, 0.5]}, "'mean'", "[0.5, 0.5]"),
        ({"std": [0.2, 0.0, 0.2]}, "'std'", "[0.2, 0.0, 0.2]"),  # a division by zero
        ({"mean": ["a", 0, 0]}, "'mean'", "['a', 0, 0]"),
        ({"name": "../up"}, "'name'", "'../up'"),  # names become S3 keys
        ({"version": ""}, "'version'", "''"),
        ({"version": 3}, "'version'", "3"),
        ({"resample": "lanczos"}, "'resample'", "'lanczos'"),
        ({"meen": [0, 0, 0]}, "unknown field(s) meen", ""),  # a typo is not ignored
        ({"std": None}, "'mean' is given but 'std' is not", ""),
        ({"dtype": "uint8"}, "'dtype' is 'uint8'", ""),  # mean/std are for float inputs
    ],
)
def test_a_bad_field_is_refused_naming_it_and_what_was_found(
    change: dict[str, Any], named: str, found: str
) -> None:
    with pytest.raises(CardError) as refused:
        parse_card({**card_for(), **change}, source="m/model.json")
    message = str(refused.value)
    assert message.startswith("m/model.json: ") and named in message and found in message


def test_a_missing_field_is_named() -> None:
    data = card_for()
    del data["output"]
    with pytest.raises(CardError, match=r"missing field.*output"):
        parse_card(data)


def test_a_card_file_that_is_not_json_says_so(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text("{name: tiny}")
    with pytest.raises(CardError, match="not valid JSON"):
        read_card(tmp_path / "model.json")


# --- against the graph (the declared tensors, as ONNX Runtime reports them) ---------------

NCHW_FLOAT = GraphSignature(
    (TensorSpec("image", "tensor(float)", ("batch", 3, 32, 32)),),
    (TensorSpec("scores", "tensor(float)", ("batch", 5)),),
)


def test_a_fitting_card_binds_the_graphs_tensors() -> None:
    bound = check_against_graph(parse_card(card_for()), 5, NCHW_FLOAT)
    assert (bound.input_name, bound.output_name, bound.output_width) == ("image", "scores", 5)


def test_dynamic_sizes_fit_any_card() -> None:
    graph = GraphSignature(
        (TensorSpec("image", "tensor(float)", ("n", None, "h", "w")),),
        (TensorSpec("scores", "tensor(float)", ("n", "classes")),),
    )
    assert check_against_graph(parse_card(card_for()), 5, graph).output_width is None


@pytest.mark.parametrize(
    ("change", "labels", "named", "found"),
    [
        ({"size": 64, "resize": 64}, 5, "'size' is 64", "[batch, 3, 32, 32]"),
        ({"layout": "NHWC"}, 5, "'layout' is 'NHWC'", "[batch, 3, 32, 32]"),
        ({}, 4, "4 labels", "5 classes"),
        ({"input_name": "pixels"}, 5, "'input_name' is 'pixels'", "'image'"),
        ({"output_name": "logits"}, 5, "'output_name' is 'logits'", "'scores'"),
        ({"dtype": "uint8", "mean": None, "std": None}, 5, "'dtype' is 'uint8'", "tensor(float)"),
    ],
)
def test_a_card_that_does_not_fit_its_graph_is_refused(
    change: dict[str, Any], labels: int, named: str, found: str
) -> None:
    card = parse_card({**card_for(), **change})
    with pytest.raises(CardError) as refused:
        check_against_graph(card, labels, NCHW_FLOAT)
    message = str(refused.value)
    assert named in message and found in message, message


def test_a_graph_with_several_outputs_needs_output_name() -> None:
    graph = GraphSignature(
        NCHW_FLOAT.inputs,
        (
            TensorSpec("features", "tensor(float)", ("batch", 4)),
            TensorSpec("scores", "tensor(float)", ("batch", 5)),
        ),
    )
    with pytest.raises(CardError, match=r"2 outputs .*'features', 'scores'.*'output_name'"):
        check_against_graph(parse_card(card_for()), 5, graph)
    named = parse_card({**card_for(), "output_name": "scores"})
    assert check_against_graph(named, 5, graph).output_name == "scores"
