"""`iras predict`: classify image files in this process, no AWS involved.

Its `name:label` lines are the reference the whole service must match: the same model,
preprocessing and labels the workers use, with nothing in between.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from iras.config.loading import load_settings
from iras.model import ImageError, ModelError, Outcome
from iras.model.errors import require_model_packages
from iras.model.pipeline import pipelined

if TYPE_CHECKING:
    from iras.model import Classifier

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify image files here and now (no AWS)",
        description=(
            "Classify images in this process and print one 'name:label' line per image, "
            "name being the file name without its extension. Undecodable files are "
            "reported on stderr ('name: error: reason') and make the exit code 1."
        ),
    )
    parser.add_argument(
        "images",
        nargs="+",
        type=Path,
        metavar="IMAGE",
        help=f"image files, or directories whose {'/'.join(IMAGE_SUFFIXES)} files to classify",
    )
    parser.add_argument(
        "--model",
        dest="model_name",
        metavar="NAME|DIR|FILE.onnx",
        help="built-in model name, model folder or .onnx file with its card (IRAS_MODEL)",
    )
    parser.add_argument("--engine", dest="model_engine", help="onnx or torch (IRAS_MODEL_ENGINE)")
    parser.add_argument(
        "--weights", dest="model_weights", type=Path, help="state dict file (IRAS_MODEL_WEIGHTS)"
    )
    parser.add_argument(
        "--batch-size", type=int, help="most images per forward pass (IRAS_BATCH_SIZE)"
    )
    parser.add_argument("--top-k", type=int, help="ranked labels per image with --json")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per image (name, label, top, model, model_version; or "
        "name, error) "
        "on stdout, errors included",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(
        model_name=args.model_name,
        model_engine=args.model_engine,
        model_weights=args.model_weights,
        batch_size=args.batch_size,
        top_k=args.top_k,
    )
    try:
        require_model_packages()
        from iras.model.registry import load_configured  # the engine loads here, not for --help

        classifier = load_configured(settings)
    except ModelError as exc:
        print(f"iras predict: {exc}", file=sys.stderr)
        return 2
    paths, failed = expand(args.images)
    chunks = list(_chunks(paths, settings.batch_size))
    classified = pipelined(lambda chunk: classify_files(classifier, chunk, settings.top_k), chunks)
    for chunk, outcomes in zip(chunks, classified, strict=True):
        for path, outcome in zip(chunk, outcomes, strict=True):
            failed |= isinstance(outcome, ImageError)
            report(
                path.stem, outcome, classifier.name, as_json=args.json, version=classifier.version
            )
    return 1 if failed else 0


def expand(paths: Sequence[Path]) -> tuple[list[Path], bool]:
    """Files to classify (directories replaced by their image files, sorted) and whether
    a directory had none, which counts as a failure: the caller expected images there."""
    files: list[Path] = []
    empty = False
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(
            p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not found:
            print(f"{path}: error: no {'/'.join(IMAGE_SUFFIXES)} files in it", file=sys.stderr)
            empty = True
        files.extend(found)
    return files, empty


def classify_files(classifier: Classifier, paths: Sequence[Path], top_k: int) -> list[Outcome]:
    """One outcome per path; a file that cannot be read is an `ImageError` like a bad image."""
    outcomes: list[Outcome] = []
    readable: list[tuple[int, bytes]] = []
    for position, path in enumerate(paths):
        try:
            readable.append((position, path.read_bytes()))
            outcomes.append(ImageError("not classified"))
        except OSError as exc:
            outcomes.append(ImageError(f"cannot read {path}: {exc.strerror or exc}"))
    results = classifier.classify([blob for _, blob in readable], top_k)
    for (position, _), outcome in zip(readable, results, strict=True):
        outcomes[position] = outcome
    return outcomes


def report(name: str, outcome: Outcome, model: str, *, as_json: bool, version: str = "") -> None:
    """Print one image's outcome: `name:label` on stdout, or an error line on stderr."""
    if as_json:
        print(json.dumps(as_dict(name, outcome, model, version)), flush=True)
    elif isinstance(outcome, ImageError):
        print(f"{name}: error: {outcome.reason}", file=sys.stderr, flush=True)
    else:
        print(f"{name}:{outcome.label}", flush=True)


def as_dict(name: str, outcome: Outcome, model: str, version: str = "") -> dict[str, object]:
    """The JSON shape of a result, as the service's results carry it."""
    if isinstance(outcome, ImageError):
        return {"name": name, "error": outcome.reason, "model": model, "model_version": version}
    top = [{"label": scored.label, "score": scored.score} for scored in outcome.top]
    return {
        "name": name,
        "label": outcome.label,
        "top": top,
        "model": model,
        "model_version": version,
    }


def _chunks(items: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
