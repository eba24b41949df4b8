"""The cards IRAS writes for its own networks, so they are entries of the model repository.

Both graphs (`iras.model.network`, exported by `iras.model.onnx_export`) take uint8
N x 224 x 224 x 3 pixels, normalise inside and end in a softmax: the cards say so, with
the resize and filter of each network's preprocessing (`iras.model.preprocess`'s
`EFFICIENTNET_LITE_SPEC` and `TORCHVISION_SPEC`; tests/model/test_repository.py holds
them equal). Plain data, importable by the settings without numpy or an engine.
"""

from __future__ import annotations

from iras.model.card import ModelCard, Resample

#: The version of a built-in model on the weights it ships with (or torchvision's).
DEFAULT_WEIGHTS_VERSION = "imagenet-1k"
#: How many classes the built-in models have (ImageNet-1k), known without reading labels.
IMAGENET_CLASSES = 1000


def _exported_network(name: str, resample: Resample) -> ModelCard:
    """The card of one of IRAS's exports: they differ only in name and resize filter."""
    return ModelCard(
        name=name,
        version=DEFAULT_WEIGHTS_VERSION,
        layout="NHWC",
        dtype="uint8",
        size=224,
        resize=256,
        output="probabilities",
        resample=resample,
        input_name="pixels",
        output_name="probabilities",
    )


BUILTIN_CARDS: dict[str, ModelCard] = {
    "efficientnet_lite0": _exported_network("efficientnet_lite0", "bicubic"),
    "resnet18": _exported_network("resnet18", "bilinear"),
}
BUILTIN_MODELS = tuple(BUILTIN_CARDS)
