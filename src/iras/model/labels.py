"""ImageNet-1k class names, index -> name, as torchvision spells them.

Both models are trained on the same 1000 classes in the same order, and the course's
reference answers use torchvision's names, so one list serves every model.

The list is read from the source file torchvision ships (`torchvision/models/_meta.py`)
without importing torchvision: that import costs about two seconds (it pulls in
`torch._dynamo`), paid by every worker start, which the autoscaler waits for. Should the
file ever change shape, the names come from torchvision's API instead.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

_CATEGORIES_NAME = "_IMAGENET_CATEGORIES"


@cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 class names (read once; no download)."""
    return _labels_from_source() or _labels_from_torchvision()


def _labels_from_source() -> tuple[str, ...] | None:
    spec = importlib.util.find_spec("torchvision")  # locates, does not import
    if spec is None or spec.origin is None:
        return None
    source = Path(spec.origin).parent / "models" / "_meta.py"
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == _CATEGORIES_NAME for t in node.targets
        ):
            names = ast.literal_eval(node.value)
            if isinstance(names, list) and len(names) == 1000:
                return tuple(str(name) for name in names)
    return None


def _labels_from_torchvision() -> tuple[str, ...]:
    from torchvision.models import ResNet18_Weights

    categories: list[str] = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    return tuple(categories)
