"""`python -m iras.infra.bake`: the export lands next to the weights, readable by any user."""

from __future__ import annotations

import stat

from iras.config import Settings
from iras.infra.bake import bake
from iras.model.registry import default_weights


def test_bake_leaves_a_readable_export_next_to_the_weights() -> None:
    export = bake(Settings())
    assert export.parent == default_weights("efficientnet_lite0").parent
    assert export.suffix == ".onnx" and export.stat().st_size > 1_000_000
    assert export.stat().st_mode & stat.S_IROTH  # the worker's user is not the builder
