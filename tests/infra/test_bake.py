"""`python -m iras.infra.bake`: the export lands next to the weights, readable by any user."""

from __future__ import annotations

import stat
from pathlib import Path

from iras.config import Settings
from iras.infra.bake import bake, prepare
from iras.model.registry import default_weights


def test_bake_leaves_a_readable_export_next_to_the_weights() -> None:
    export = bake(Settings())
    assert export.parent == default_weights("efficientnet_lite0").parent
    assert export.suffix == ".onnx" and export.stat().st_size > 1_000_000
    assert export.stat().st_mode & stat.S_IROTH  # the worker's user is not the builder


def test_bake_leaves_the_int8_model_beside_the_export() -> None:
    """Workers start with both files in place: none quantizes at start-up (~10 s, ~1.6 GB)."""
    from iras.model import quantize
    from iras.model.registry import spec_of

    export = bake(Settings(model_precision="int8"))
    int8 = quantize.quantized_path(export, spec_of("efficientnet_lite0"))
    assert int8.is_file() and int8.parent == export.parent
    assert int8.stat().st_mode & stat.S_IROTH
    assert quantize.int8_model(export, spec_of("efficientnet_lite0")) == int8  # reused


def test_prepare_makes_what_is_missing_once(tmp_path: Path) -> None:
    """`iras serve` prepares the model before its workers start; with every file there
    it leaves them as they are (a worker would otherwise make them, each its own)."""
    weights = tmp_path / "lite0.pth"
    weights.write_bytes(default_weights("efficientnet_lite0").read_bytes())
    settings = Settings(model_weights=weights, model_precision="int8")
    prepare(settings)
    made = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.onnx")}
    assert len(made) == 2 and any(".int8." in name for name in made)  # float and int8
    prepare(settings)
    assert {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.onnx")} == made
