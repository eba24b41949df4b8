"""Small ONNX classifiers with random weights, in either layout, and their model folders.

Built with `onnx.helper` (no torch: milliseconds per model): a 3 x 3 convolution, ReLU,
global average pooling and a dense layer to `classes` outputs, as logits or softmaxed.
An NHWC graph takes uint8 pixels and casts them itself, as the built-in models do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LABELS = ("ant", "bee", "cat", "dog", "eel")


def tiny_graph(
    *,
    layout: str = "NCHW",
    dtype: str = "float32",
    size: int | str = 32,
    classes: int = len(LABELS),
    output: str = "logits",
    input_name: str = "image",
    output_name: str = "scores",
    seed: int = 0,
) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 1, (4, 3, 3, 3)).astype(np.float32)
    if dtype == "uint8":  # 0..255 inputs: keep the logits in a range softmax tells apart
        conv_w /= 255.0
    dense_w = rng.normal(0, 1, (4, classes)).astype(np.float32)
    dense_b = rng.normal(0, 0.1, (classes,)).astype(np.float32)
    elem = TensorProto.UINT8 if dtype == "uint8" else TensorProto.FLOAT
    shape: list[Any] = ["batch", size, size, 3] if layout == "NHWC" else ["batch", 3, size, size]
    nodes = []
    current = input_name
    if dtype == "uint8":
        nodes.append(helper.make_node("Cast", [current], ["as_float"], to=TensorProto.FLOAT))
        current = "as_float"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [current], ["nchw"], perm=[0, 3, 1, 2]))
        current = "nchw"
    logits = "logits" if output == "probabilities" else output_name
    nodes += [
        helper.make_node(
            "Conv", [current, "conv_w"], ["conv"], kernel_shape=[3, 3], strides=[2, 2]
        ),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "dense_w", "dense_b"], [logits]),
    ]
    if output == "probabilities":
        nodes.append(helper.make_node("Softmax", [logits], [output_name], axis=1))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, elem, shape)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", classes])],
        initializer=[
            numpy_helper.from_array(conv_w, "conv_w"),
            numpy_helper.from_array(dense_w, "dense_w"),
            numpy_helper.from_array(dense_b, "dense_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def card_for(**overrides: Any) -> dict[str, Any]:
    """The card of `tiny_graph()`'s defaults, with `overrides`."""
    card: dict[str, Any] = {
        "name": "tiny",
        "version": "1",
        "layout": "NCHW",
        "dtype": "float32",
        "size": 32,
        "resize": 36,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "output": "logits",
    }
    card.update(overrides)
    return card


def model_folder(
    folder: Path,
    card: dict[str, Any] | None = None,
    labels: tuple[str, ...] = LABELS,
    **graph: Any,
) -> Path:
    """A model folder (model.onnx, model.json, labels.txt) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(tiny_graph(**graph), folder / "model.onnx")
    (folder / "model.json").write_text(json.dumps(card if card is not None else card_for()))
    (folder / "labels.txt").write_text("".join(f"{label}\n" for label in labels))
    return folder
