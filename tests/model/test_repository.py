"""The model repository: a team's ONNX model with its card and labels, served like a built-in.

Tiny random-weight graphs of both layouts (`tests.model.tiny_models`) are loaded through
the one path every model takes (`load_classifier`), and IRAS's answers are compared with
ONNX Runtime's own on the same crops, prepared here by hand from the card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from iras.config import Settings
from iras.model import Classifier, ModelError, Prediction, UnknownModel
from iras.model.builtin import BUILTIN_CARDS
from iras.model.card import CardError
from iras.model.card_engine import CardEngine, preprocess_spec
from iras.model.labels import imagenet_labels
from iras.model.preprocess import EFFICIENTNET_LITE_SPEC, TORCHVISION_SPEC, crop, to_pixels
from iras.model.registry import load_classifier, load_configured
from iras.model.repository import resolve_model, weights_version
from tests.model.tiny_models import LABELS, card_for, model_folder, tiny_graph
from tests.support import image_bytes

IMAGES = [image_bytes(size=(60 + 7 * i, 45 + 3 * i), seed=i) for i in range(6)]


def reference(folder: Path, card: dict[str, Any], top_k: int) -> list[list[tuple[str, float]]]:
    """What ONNX Runtime answers on the card's input, built here without IRAS's engine."""
    loaded = resolve_model(str(folder))
    crops = to_pixels([crop(blob, preprocess_spec(loaded.card)) for blob in IMAGES])
    batch: np.ndarray = crops
    if card["dtype"] == "float32":
        batch = crops.astype(np.float32) / 255.0
        if card.get("mean") is not None:
            batch = (batch - np.float32(card["mean"])) / np.float32(card["std"])
        batch = batch.astype(np.float32)
    if card["layout"] == "NCHW":
        batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    (scores,) = session.run(None, {session.get_inputs()[0].name: batch})
    if card["output"] == "logits":
        exps = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores = exps / exps.sum(axis=1, keepdims=True)
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    return [
        [(LABELS[i], float(row[i])) for i in order]
        for row, order in zip(scores, ranked, strict=True)
    ]


def answers(classifier: Classifier, top_k: int) -> list[list[tuple[str, float]]]:
    outcomes = classifier.classify(IMAGES, top_k=top_k)
    assert all(isinstance(outcome, Prediction) for outcome in outcomes)
    return [
        [(scored.label, scored.score) for scored in outcome.top]
        for outcome in outcomes
        if isinstance(outcome, Prediction)
    ]


def assert_same(ours: list[list[tuple[str, float]]], theirs: list[list[tuple[str, float]]]) -> None:
    assert [[label for label, _ in row] for row in ours] == [
        [label for label, _ in row] for row in theirs
    ]
    np.testing.assert_allclose(
        [[score for _, score in row] for row in ours],
        [[score for _, score in row] for row in theirs],
        rtol=1e-5,
        atol=1e-6,
    )


NCHW_FLOAT_LOGITS = card_for()
NHWC_UINT8_PROBABILITIES = card_for(
    name="tiny-nhwc", layout="NHWC", dtype="uint8", mean=None, std=None, output="probabilities"
)


@pytest.mark.parametrize(
    ("card", "graph"),
    [
        (NCHW_FLOAT_LOGITS, {}),
        (
            NHWC_UINT8_PROBABILITIES,
            {"layout": "NHWC", "dtype": "uint8", "output": "probabilities"},
        ),
        ({**NCHW_FLOAT_LOGITS, "mean": None, "std": None, "resample": "bicubic"}, {}),
    ],
    ids=["nchw-float32-logits", "nhwc-uint8-probabilities", "nchw-unnormalised-bicubic"],
)
def test_answers_equal_onnxruntimes_on_the_same_input(
    tmp_path: Path, card: dict[str, Any], graph: dict[str, Any]
) -> None:
    folder = model_folder(tmp_path / "model", card, **graph)
    classifier = load_classifier(str(folder), threads=1)
    assert (classifier.name, classifier.version, classifier.labels) == (
        card["name"],
        "1",
        LABELS,
    )
    assert_same(answers(classifier, 5), reference(folder, card, 5))
    assert_same(answers(classifier, 2), reference(folder, card, 2))


def test_logits_and_probabilities_graphs_agree(tmp_path: Path) -> None:
    """The same network with the softmax outside (card: logits) and inside (probabilities)."""
    logits = load_classifier(str(model_folder(tmp_path / "a", card_for())), threads=1)
    inside = model_folder(tmp_path / "b", card_for(output="probabilities"), output="probabilities")
    probabilities = load_classifier(str(inside), threads=1)
    assert_same(answers(logits, 5), answers(probabilities, 5))
    assert isinstance(logits.engine, CardEngine)
    # Probabilities are not a softmax of themselves: the output kind is really obeyed.
    assert answers(probabilities, 1) != answers(
        load_classifier(
            str(model_folder(tmp_path / "c", card_for(), output="probabilities")), threads=1
        ),
        1,
    )


def test_a_onnx_file_with_its_card_and_labels_beside_it(tmp_path: Path) -> None:
    onnx.save(tiny_graph(), tmp_path / "defects.onnx")
    (tmp_path / "defects.toml").write_text(
        'name = "defects"\nversion = "2026.1"\nlayout = "NCHW"\ndtype = "float32"\n'
        'size = 32\nresize = 40\noutput = "logits"\n'
    )
    (tmp_path / "defects.labels.json").write_text(json.dumps(list(LABELS)))
    classifier = load_classifier(str(tmp_path / "defects.onnx"), threads=1)
    assert (classifier.name, classifier.version, classifier.labels) == ("defects", "2026.1", LABELS)
    assert len(answers(classifier, 3)) == len(IMAGES)


@pytest.mark.parametrize(
    ("card", "labels", "graph", "message"),
    [
        # (the card, the labels, the graph's arguments: what the refusal must say)
        (card_for(size=48, resize=48), LABELS, {}, r"'size' is 48 .*\[batch, 3, 32, 32\]"),
        (card_for(layout="NHWC"), LABELS, {}, r"'layout' is 'NHWC' .*\[batch, 3, 32, 32\]"),
        (card_for(), (*LABELS, "fox"), {}, r"6 labels .* 'scores' has 5 classes"),
        (card_for(input_name="pixels"), LABELS, {}, r"'input_name' is 'pixels' .*'image'"),
        (card_for(), LABELS, {"dtype": "uint8"}, r"'dtype' is 'float32' .*tensor\(uint8\)"),
        # A static size the declared shape hides (dynamic there): caught by the probe run.
        (card_for(), LABELS[:4], {"classes": 4, "size": "s"}, None),
    ],
)
def test_a_mismatch_is_refused_at_load_naming_the_field(
    tmp_path: Path,
    card: dict[str, Any],
    labels: tuple[str, ...],
    graph: dict[str, Any],
    message: str | None,
) -> None:
    folder = model_folder(tmp_path / "model", card, labels, **graph)
    if message is None:  # the control: a dynamic size the card fills in is fine
        assert load_classifier(str(folder), threads=1).labels == labels
        return
    with pytest.raises(CardError, match=message):
        load_classifier(str(folder), threads=1)


def test_an_output_width_only_a_run_shows_is_checked_by_the_probe(tmp_path: Path) -> None:
    model = tiny_graph()
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "classes"  # hide the 5
    folder = model_folder(tmp_path / "model", card_for(), (*LABELS, "fox"))
    onnx.save(model, folder / "model.onnx")
    with pytest.raises(CardError, match=r"6 labels .* 5 classes"):
        load_classifier(str(folder), threads=1)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"model.onnx": None}, "has no model.onnx"),
        ({"model.json": None}, r"needs a card: model.json or model.toml \(neither"),
        ({"model.toml": "x"}, r"model.json or model.toml \(both are there"),
        ({"labels.txt": None}, r"needs labels: labels.txt or labels.json \(neither"),
        ({"labels.txt": "ant\n\nbee\n"}, "line 2 is empty"),
        ({"labels.txt": None, "labels.json": '{"0": "ant"}'}, "JSON list of non-empty strings"),
    ],
)
def test_a_folder_that_is_not_a_model_says_what_is_wrong(
    tmp_path: Path, files: dict[str, str | None], message: str
) -> None:
    folder = model_folder(tmp_path / "model")
    for name, text in files.items():
        if text is None:
            (folder / name).unlink()
        else:
            (folder / name).write_text(text)
    with pytest.raises(ModelError, match=message):
        resolve_model(str(folder))


def test_an_unknown_reference_lists_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(UnknownModel, match=r"efficientnet_lite0, resnet18\), a folder .* \.onnx"):
        resolve_model(str(tmp_path / "nowhere"))


def test_torch_and_weights_are_for_built_in_models_only(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "model")
    with pytest.raises(ModelError, match="runs the built-in models only"):
        load_classifier(str(folder), threads=1, engine="torch")
    with pytest.raises(ModelError, match=r"IRAS_MODEL_WEIGHTS .* is not one"):
        load_classifier(str(folder), tmp_path / "w.pth", threads=1)


# --- the built-in models, entries of the same repository ----------------------------------


@pytest.mark.parametrize(
    ("name", "spec"),
    [("efficientnet_lite0", EFFICIENTNET_LITE_SPEC), ("resnet18", TORCHVISION_SPEC)],
)
def test_a_built_in_card_gives_the_pixels_of_its_preprocessing(name: str, spec: Any) -> None:
    card = BUILTIN_CARDS[name]
    from_card = preprocess_spec(card)
    assert (from_card.resize_px, from_card.crop_px, from_card.resample, from_card.jpeg_draft) == (
        spec.resize_px,
        spec.crop_px,
        spec.resample,
        spec.jpeg_draft,
    )
    for blob in (image_bytes(size=(640, 480), seed=3), image_bytes(size=(200, 900), seed=4)):
        assert crop(blob, from_card).tobytes() == crop(blob, spec).tobytes()
    assert (card.layout, card.dtype, card.output, card.mean) == (
        "NHWC",
        "uint8",
        "probabilities",
        None,
    )


def test_the_built_in_classifier_runs_on_its_card_unwrapped(classifier: Classifier) -> None:
    """The session's classifier (efficientnet_lite0) came through the repository: its card,
    ImageNet's labels, and its engine as it was (the graph takes pixels, gives probabilities)."""
    assert classifier.card == BUILTIN_CARDS["efficientnet_lite0"]
    assert classifier.version == "imagenet-1k"
    assert classifier.labels == imagenet_labels()
    assert classifier.spec == EFFICIENTNET_LITE_SPEC  # its graph's mean and std, as before
    assert not isinstance(classifier.engine, CardEngine)


def test_other_weights_are_another_version_of_a_built_in(tmp_path: Path) -> None:
    entry = resolve_model("resnet18", tmp_path / "resnet18 fine-tuned (v2).pth")
    assert entry.card.version == "weights-resnet18-fine-tuned-v2"
    assert weights_version(tmp_path / "...pth") == "weights-custom"
    assert entry.builtin and entry.labels_count == 1000


# --- settings ----------------------------------------------------------------------------


def test_iras_model_is_read_and_iras_model_name_still_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IRAS_MODEL_NAME", "resnet18")
    assert Settings().model_name == "resnet18"
    folder = model_folder(tmp_path / "mine")
    monkeypatch.setenv("IRAS_MODEL", str(folder))  # the new name wins over the old
    assert Settings().model_name == str(folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IRAS_MODEL", "mine")  # relative: made absolute for the workers
    assert Settings().model_name == str(folder.resolve())
    monkeypatch.setenv("IRAS_MODEL", "resnet18")  # a built-in name stays a name
    assert Settings().model_name == "resnet18"


def test_load_configured_serves_a_folder_named_in_the_settings(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "mine")
    classifier = load_configured(Settings(model_name=str(folder), inference_threads=1))
    assert (classifier.name, classifier.version) == ("tiny", "1")


# --- the commands ------------------------------------------------------------------------


def test_iras_predict_takes_the_model_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from iras.cli import main

    monkeypatch.setenv("IRAS_INFERENCE_THREADS", "1")
    folder = model_folder(tmp_path / "mine")
    (tmp_path / "one.png").write_bytes(IMAGES[0])
    (tmp_path / "two.png").write_bytes(IMAGES[1])
    expected = load_classifier(str(folder), threads=1).classify(IMAGES[:2])
    capsys.readouterr()
    paths = [str(tmp_path / "one.png"), str(tmp_path / "two.png")]
    assert main(["predict", "--model", str(folder), *paths]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{name}:{outcome.label}"
        for name, outcome in zip(("one", "two"), expected, strict=True)
        if isinstance(outcome, Prediction)
    ]
    assert main(["predict", "--model", str(folder), "--json", paths[0]]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["model"], line["model_version"], len(line["top"])) == ("tiny", "1", 5)


def test_iras_predict_refuses_a_card_that_does_not_fit_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from iras.cli import main

    folder = model_folder(tmp_path / "mine", card_for(layout="NHWC"))
    (tmp_path / "one.png").write_bytes(IMAGES[0])
    assert main(["predict", "--model", str(folder), str(tmp_path / "one.png")]) == 2
    assert "'layout' is 'NHWC'" in capsys.readouterr().err
