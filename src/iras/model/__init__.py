"""Image classification: bytes of images in, the model's labels out.

`load_classifier(name)` builds a `Classifier` for a built-in model or one of the model
repository (a folder or `.onnx` file with its card and labels: `iras.model.repository`);
`Classifier.classify(blobs)` returns one `Prediction` or `ImageError` per image, in order.

The names below load on first use (PEP 562): the result types and errors are light, the
classifier needs an inference engine (ONNX Runtime, or torch to export for it or run
instead of it). So `iras-worker --help`, the gateway and the CLI's other commands start
without importing either.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iras.model.classifier import Classifier
    from iras.model.errors import ModelError, ModelWeightsMissing, UnknownModel
    from iras.model.preprocess import ImageDecodeError
    from iras.model.registry import ENGINE_NAMES, MODEL_NAMES, load_classifier
    from iras.model.types import ImageError, Outcome, Prediction, Scored

_HOMES = {
    "Classifier": "iras.model.classifier",
    "ImageDecodeError": "iras.model.preprocess",
    "ENGINE_NAMES": "iras.model.registry",
    "MODEL_NAMES": "iras.model.registry",
    "load_classifier": "iras.model.registry",
    "ModelError": "iras.model.errors",
    "ModelWeightsMissing": "iras.model.errors",
    "UnknownModel": "iras.model.errors",
    "ImageError": "iras.model.types",
    "Outcome": "iras.model.types",
    "Prediction": "iras.model.types",
    "Scored": "iras.model.types",
}

__all__ = [
    "ENGINE_NAMES",
    "MODEL_NAMES",
    "Classifier",
    "ImageDecodeError",
    "ImageError",
    "ModelError",
    "ModelWeightsMissing",
    "Outcome",
    "Prediction",
    "Scored",
    "UnknownModel",
    "load_classifier",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'iras.model' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
