"""Export a network to ONNX once, check it against PyTorch, and cache it by its weights.

The export needs torch and takes about a second; loading a cached export needs neither.
So the file is kept next to the weights (a container image or AMI bakes it in by
loading the classifier once at build time), or in the user's cache directory when that
folder is read-only. Its name carries a digest of the weights and of `EXPORT_FORMAT`, so new
weights or a changed graph never meet a stale export. Files are written to a temporary
name and renamed, so workers starting together never read half a file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from iras.model.errors import ModelError
from iras.model.onnx_engine import INPUT_NAME, OUTPUT_NAME, OnnxEngine

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

# Bump when the exported graph changes (network.py, efficientnet_lite.py, the opset).
EXPORT_FORMAT = "iras-onnx-1"
OPSET = 17
# An export whose probabilities differ from PyTorch's by more than this is refused.
AGREEMENT_TOLERANCE = 1e-4


def cache_candidates(name: str, weights: Path) -> list[Path]:
    """Where the export of `name` with `weights` may be: next to them, then the user cache."""
    file_name = f"{weights.stem}.{name}.{_digest(weights)}.onnx"
    return [weights.parent / file_name, user_cache_dir() / file_name]


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "iras" / "onnx"


def find_cached(candidates: list[Path]) -> Path | None:
    return next((path for path in candidates if path.is_file()), None)


def export_to_cache(network: nn.Module, candidates: list[Path]) -> Path:
    """Export `network`, check it agrees with PyTorch, store it at the first writable
    candidate, and return that path."""
    for target in candidates:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _export_atomically(network, target)
        except OSError as exc:
            log.info("cannot write the ONNX export to %s (%s); trying the next place", target, exc)
            continue
        log.info("exported the network to ONNX at %s", target)
        return target
    raise ModelError(f"cannot write an ONNX export to any of {candidates}")


def _export_atomically(network: nn.Module, target: Path) -> None:
    import torch

    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
    os.close(handle)
    # mkstemp makes the file private; the export is for every user of the weights (a
    # worker image bakes it as root and runs as another user).
    os.chmod(temporary, 0o644)
    try:
        example = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
        with warnings.catch_warnings():
            # The exporter's notes (constant folding, deprecations) are not ours to act
            # on; the agreement check below is what tells whether the export is right.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                network,
                (example,),
                temporary,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,  # the TorchScript exporter: 0.6 s here, the dynamo one 11 s
            )
        check_agreement(network, Path(temporary))
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def check_agreement(network: nn.Module, exported: Path) -> None:
    """Refuse an export whose outputs differ from PyTorch's on a fixed batch of noise."""
    import numpy as np
    import torch

    pixels = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = network(torch.from_numpy(pixels.copy())).numpy()
    actual = OnnxEngine(exported, threads=1).run(pixels)
    difference = float(np.abs(actual - expected).max())
    if difference > AGREEMENT_TOLERANCE or not (actual.argmax(1) == expected.argmax(1)).all():
        raise ModelError(
            f"the ONNX export disagrees with PyTorch (max difference {difference:.2g})"
        )


def _digest(weights: Path) -> str:
    digest = hashlib.sha256(EXPORT_FORMAT.encode())
    with weights.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
