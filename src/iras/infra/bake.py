"""`python -m iras.infra.bake`: put the model's ONNX export (and its int8 file) where
workers look first, or fail.

A container image or AMI runs this once at build time, as the user that owns the
installation, so that every worker started from it loads the export next to the weights
and needs neither torch nor a network at start-up. Loading the classifier would fall back
to PyTorch (or to the user's cache directory) without complaint; a build must not, so this
checks that the export landed next to the weights (readable by the unprivileged user the
worker runs as: `onnx_export` writes it world-readable).
"""

from __future__ import annotations

import logging
from pathlib import Path

from iras.config import Settings
from iras.config.loading import load_settings
from iras.telemetry.logs import configure_logging

log = logging.getLogger(__name__)


def bake(settings: Settings) -> Path:
    """Export a built-in model next to its weights, and its int8 file beside the export
    (when `model_precision` is int8); return the export's path. A model of your own is
    an ONNX file already: it is only loaded, which checks its card against its graph."""
    from iras.model import load_classifier, onnx_export
    from iras.model.registry import default_weights, spec_of
    from iras.model.repository import resolve_model

    entry = resolve_model(settings.model_name, settings.model_weights)
    if not entry.builtin:
        load_classifier(settings.model_name, threads=1, engine="onnx")
        assert entry.onnx is not None
        return entry.onnx
    name = entry.card.name
    weights = settings.model_weights or default_weights(name)
    load_classifier(name, weights, threads=1, engine="onnx", precision=settings.model_precision)
    export = onnx_export.cache_candidates(name, weights)[0]
    if not export.is_file():
        raise SystemExit(
            f"iras.infra.bake: no ONNX export at {export} after loading {name}: "
            f"is {export.parent} writable by this user? (see the log above)"
        )
    if settings.model_precision == "int8":
        from iras.model import quantize

        int8 = quantize.quantized_path(export, spec_of(name))
        if not int8.is_file():
            raise SystemExit(
                f"iras.infra.bake: no int8 model at {int8} after loading {name} (see the log "
                "above), or set IRAS_MODEL_PRECISION=fp32"
            )
    return export


def prepare(settings: Settings) -> None:
    """Make the model's cached files (the export, the int8 file) if any is missing, once,
    before local workers start: `iras serve --course` starts 15 at once. Loading finds
    them in place, so when all are there this costs a digest of the weights, no load."""
    from iras.model import load_classifier, onnx_export, quantize
    from iras.model.registry import default_weights, spec_of
    from iras.model.repository import resolve_model

    entry = resolve_model(settings.model_name, settings.model_weights)
    if not entry.builtin or settings.model_engine != "onnx":
        return
    name = entry.card.name
    weights = settings.model_weights or default_weights(name)
    export = onnx_export.find_cached(onnx_export.cache_candidates(name, weights))
    int8_wanted = settings.model_precision == "int8"
    if export is not None and not (
        int8_wanted and quantize.find_quantized(export, spec_of(name)) is None
    ):
        return
    log.info("preparing the model's files once, before the workers start (~10 s)")
    load_classifier(
        name,
        weights,
        threads=1,
        precision=settings.model_precision,
        providers=settings.execution_providers,
    )


def main() -> int:
    configure_logging()
    print(bake(load_settings()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
