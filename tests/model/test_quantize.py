"""int8 quantization: a valid QDQ model cached next to the float one, reused, and close to it.

Most tests quantize a small ONNX graph built here (uint8 NHWC pixels, normalised inside,
two convolutions, a linear head and a softmax, like IRAS's own graphs); one quantizes a
copy of the real EfficientNet-Lite0 export (~10 s).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from iras.model import ModelError, load_classifier, quantize
from iras.model.calibration import calibration_pixels, photos
from iras.model.onnx_engine import OnnxEngine
from iras.model.preprocess import PreprocessSpec

SMALL_SPEC = PreprocessSpec(
    resize_px=40,
    crop_px=32,
    resample=Image.Resampling.BILINEAR,
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
)
CLASSES = 10


def small_model(path: Path, seed: int = 0) -> Path:
    """pixels (uint8 N x 32 x 32 x 3) -> probabilities (N x 10), random weights."""
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int, scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name)

    initialisers = [
        numpy_helper.from_array(np.full((1, 3, 1, 1), 127.5, np.float32), "mean"),
        numpy_helper.from_array(np.full((1, 3, 1, 1), 64.0, np.float32), "std"),
        weight("w1", 16, 3, 3, 3, scale=0.3),
        weight("b1", 16, scale=0.1),
        weight("w2", 32, 16, 3, 3, scale=0.1),
        weight("b2", 32, scale=0.1),
        weight("fc_w", CLASSES, 32, scale=0.5),
        weight("fc_b", CLASSES, scale=0.1),
    ]
    nodes = [
        helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Cast", ["nchw"], ["floats"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["floats", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["normalised"]),
        helper.make_node("Conv", ["normalised", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["batch", 32, 32, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", CLASSES])],
        initialisers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def run(path: Path, pixels: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"pixels": pixels})[0])


@pytest.fixture
def float_model(tmp_path: Path) -> Path:
    """A float export alone in its folder, as the export cache keeps them."""
    (tmp_path / "exports").mkdir()
    return small_model(tmp_path / "exports" / "small.onnx")


def test_quantizes_to_a_valid_int8_qdq_model_next_to_the_float_one(float_model: Path) -> None:
    path = quantize.int8_model(float_model, SMALL_SPEC)

    assert path == quantize.quantized_path(float_model, SMALL_SPEC)
    assert path.parent == float_model.parent
    assert path.name.startswith("small.int8.") and path.suffix == ".onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    weights = {tensor.name: tensor.data_type for tensor in model.graph.initializer}
    assert weights["w1_quantized"] == TensorProto.INT8  # per-channel: one scale per filter
    assert numpy_helper.to_array(_initialiser(model, "w1_scale")).shape == (16,)
    for name in ("w1_quantized", "w2_quantized"):  # 7 bits: no saturation without VNNI
        values = numpy_helper.to_array(_initialiser(model, name))
        assert np.abs(values.astype(int)).max() <= 64, name
    left = sorted(p.name for p in path.parent.iterdir())
    assert left == sorted(["small.onnx", path.name])  # no temporary file left behind


def _initialiser(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(tensor for tensor in model.graph.initializer if tensor.name == name)


def test_a_second_call_reuses_the_cached_file(float_model: Path) -> None:
    first = quantize.int8_model(float_model, SMALL_SPEC)
    written = first.stat()

    again = quantize.int8_model(float_model, SMALL_SPEC)

    assert again == first
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def test_its_probabilities_stay_close_to_the_float_model(float_model: Path) -> None:
    pixels = calibration_pixels(SMALL_SPEC, 16, seed=7)  # not the calibration images

    expected = run(float_model, pixels)
    actual = run(quantize.int8_model(float_model, SMALL_SPEC), pixels)

    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual.sum(axis=1), 1.0, atol=1e-5)  # softmax left in float
    assert np.abs(actual - expected).max() < 0.03


def test_a_new_float_file_or_preprocessing_gets_a_new_name(tmp_path: Path) -> None:
    one = small_model(tmp_path / "one.onnx", seed=0)
    other = small_model(tmp_path / "other.onnx", seed=1)
    name = quantize.quantized_name

    assert name(one, SMALL_SPEC).split(".")[2] != name(other, SMALL_SPEC).split(".")[2]
    resized = PreprocessSpec(48, 32, SMALL_SPEC.resample, SMALL_SPEC.mean, SMALL_SPEC.std)
    assert name(one, SMALL_SPEC) != name(one, resized)


def test_the_check_refuses_a_model_that_does_not_keep_the_top1(float_model: Path) -> None:
    unrelated = small_model(float_model.parent / "unrelated.onnx", seed=3)

    assert quantize.check_agreement(float_model, float_model, SMALL_SPEC) == 1.0
    with pytest.raises(ModelError, match="keeps the float model's top-1 on only"):
        quantize.check_agreement(float_model, unrelated, SMALL_SPEC)


def test_a_refused_model_is_remembered_and_not_quantized_again(
    float_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quantize, "MIN_CHECK_AGREEMENT", 1.01)  # nothing can pass
    with pytest.raises(ModelError, match="top-1 on only"):
        quantize.int8_model(float_model, SMALL_SPEC)
    target = quantize.quantized_path(float_model, SMALL_SPEC)
    assert not target.exists()
    assert "top-1 on only" in quantize.refusal_path(target).read_text()

    def quantize_again(*args: object) -> None:
        raise AssertionError("quantized again after a refusal")

    monkeypatch.setattr(quantize, "_quantize", quantize_again)
    with pytest.raises(ModelError, match="refused before"):
        quantize.int8_model(float_model, SMALL_SPEC)


def test_calibration_photos_are_the_same_bytes_every_time() -> None:
    assert list(photos(3, seed=0)) == list(photos(3, seed=0))
    assert list(photos(2, seed=0)) != list(photos(2, seed=1))


@pytest.mark.slow
def test_the_real_model_keeps_its_top1_on_generated_photos(tmp_path: Path) -> None:
    classifier = load_classifier("efficientnet_lite0", threads=1, precision="fp32")
    assert isinstance(classifier.engine, OnnxEngine)
    float_copy = tmp_path / classifier.engine.path.name
    float_copy.write_bytes(classifier.engine.path.read_bytes())
    # Held-out generated photos (neither the calibration's seed nor the check's); the
    # float network is unsure of most of them, so only the clear calls are compared.
    pixels = np.concatenate([calibration_pixels(classifier.spec, 32, seed) for seed in (2, 3, 4)])

    int8 = quantize.int8_model(float_copy, classifier.spec)

    expected, actual = run(float_copy, pixels), run(int8, pixels)
    second, first = np.sort(expected, axis=1)[:, -2:].T
    clear = first >= 3 * second
    assert clear.sum() >= 15
    # 20 of 23 measured (7-bit weights, AVX2); full-range weights on AVX2 kept 41% of
    # all the check's photos. On the 100 real sample photos: 96 of 100.
    assert (actual.argmax(1)[clear] == expected.argmax(1)[clear]).mean() >= 0.8
    assert os.path.getsize(int8) < os.path.getsize(float_copy) / 3
