"""`python -m iras.infra.bake`: put the model's ONNX export where workers look first, or fail.

A container image or AMI runs this once at build time, as the user that owns the
installation, so that every worker started from it loads the export next to the weights
and needs neither torch nor a network at start-up. Loading the classifier would fall back
to PyTorch (or to the user's cache directory) without complaint; a build must not, so this
checks that the export landed next to the weights (readable by the unprivileged user the
worker runs as: `onnx_export` writes it world-readable).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from iras.config import Settings
from iras.config.loading import load_settings


def bake(settings: Settings) -> Path:
    """Export the configured model next to its weights; return the export's path."""
    from iras.model import load_classifier, onnx_export
    from iras.model.registry import default_weights

    weights = settings.model_weights or default_weights(settings.model_name)
    load_classifier(settings.model_name, weights, threads=1, engine="onnx")
    export = onnx_export.cache_candidates(settings.model_name, weights)[0]
    if not export.is_file():
        raise SystemExit(
            f"iras.infra.bake: no ONNX export at {export} after loading {settings.model_name}: "
            f"is {export.parent} writable by this user? (see the log above)"
        )
    return export


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    print(bake(load_settings()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
