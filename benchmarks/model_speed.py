"""Images per second of `Classifier.classify`, decode and preprocessing included.

    .venv/bin/python benchmarks/model_speed.py [--model efficientnet_lite0] [--weights FILE]
        [--data DIR] [--batch-sizes 1,2,4,8,16,32] [--threads 1,2]
        [--variants onnx,onnx-pipelined,torch,torch-pipelined,torch-nchw,onnx-serial-decode]
        [--rounds 3]

First the reference the engines are measured against: a plain eager-PyTorch loop
(torchvision transforms, batch 1, the model as published: no folding, NCHW, torch's
default threads). Then each variant at each batch size and thread count:

- `onnx`, `torch`: the classifier `load_classifier` builds on that engine (torch in
  channels_last with folded batch norms), images decoded on `--threads` threads;
- `...-pipelined`: the same, called as `iras predict` and the worker call it, with the
  next batch decoding while the current one runs (`iras.model.pipeline`);
- `torch-nchw`: PyTorch without channels_last; `onnx-serial-decode`: one decode thread.

Each combination classifies all the sample images once per round; rounds visit the
combinations in turn, so a noisy neighbour slows all of them alike, and the best round
is reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import itertools
import time
from pathlib import Path

import torch
from PIL import Image

from iras.model import MODEL_NAMES, Classifier, load_classifier
from iras.model.pipeline import pipelined
from iras.model.preprocess import EFFICIENTNET_LITE_SPEC, crop
from iras.model.registry import default_weights, spec_of

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/imagenet-sample-100"
VARIANTS = (
    "onnx",
    "onnx-pipelined",
    "torch",
    "torch-pipelined",
    "torch-nchw",
    "onnx-serial-decode",
)


def build(model: str, weights: Path | None, variant: str, threads: int) -> Classifier:
    engine = "torch" if variant.startswith("torch") else "onnx"
    classifier = load_classifier(
        model, weights, threads, engine=engine, channels_last=variant != "torch-nchw"
    )
    if variant == "onnx-serial-decode":
        return Classifier(model, classifier.engine, classifier.spec, decode_threads=1)
    return classifier


def one_pass_s(classifier: Classifier, blobs: list[bytes], batch_size: int, variant: str) -> float:
    batches = [blobs[start : start + batch_size] for start in range(0, len(blobs), batch_size)]
    started = time.perf_counter()
    if variant.endswith("-pipelined"):
        for _ in pipelined(classifier.classify, batches):
            pass
    else:
        for batch in batches:
            classifier.classify(batch)
    return time.perf_counter() - started


def eager_baseline_per_s(model: str, weights: Path | None, blobs: list[bytes]) -> float:
    """The plain loop a first version would write: torchvision transforms, batch 1."""
    from torchvision import transforms

    from iras.model.efficientnet_lite import EfficientNetLite0

    spec = spec_of(model)
    if model == "efficientnet_lite0":
        network: torch.nn.Module = EfficientNetLite0()
    else:
        from torchvision.models import resnet18

        network = resnet18()
    state = torch.load(weights or default_weights(model), map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    network.eval()
    transform = transforms.Compose(
        [
            transforms.Resize(spec.resize_px, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(spec.crop_px),
            transforms.ToTensor(),
            transforms.Normalize(spec.mean, spec.std),
        ]
    )
    best_s = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        for blob in blobs:
            image = Image.open(io.BytesIO(blob)).convert("RGB")
            with torch.inference_mode():
                network(transform(image).unsqueeze(0)).softmax(dim=1).argmax()
        best_s = min(best_s, time.perf_counter() - started)
    return len(blobs) / best_s


def decode_per_s(blobs: list[bytes]) -> float:
    started = time.perf_counter()
    for blob in blobs:
        crop(blob, EFFICIENTNET_LITE_SPEC)
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
    parser.add_argument("--threads", type=_ints, default=[2])
    parser.add_argument("--variants", type=_names, default=list(VARIANTS[:5]))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true", help="skip the eager reference")
    args = parser.parse_args()

    blobs = [path.read_bytes() for path in sorted(args.data.glob("*.JPEG"))]
    print(f"{len(blobs)} images; decode to crop alone: {decode_per_s(blobs):.0f} images/s")
    with_ms, without_ms = draft_ms(big_photo(blobs[0]))
    print(f"4000 x 3000 JPEG to crop: {with_ms:.0f} ms with draft, {without_ms:.0f} ms without")
    if not args.no_baseline:
        rate = eager_baseline_per_s(args.model, args.weights, blobs)
        print(f"plain eager PyTorch loop (torchvision transforms, batch 1): {rate:.1f} images/s")

    rows = list(itertools.product(args.threads, args.variants))
    classifiers = {row: build(args.model, args.weights, row[1], row[0]) for row in rows}
    best_s: dict[tuple[int, str, int], float] = {}
    for round_ in range(args.rounds + 1):  # round 0 warms up and is not counted
        for (threads, variant), batch_size in itertools.product(rows, args.batch_sizes):
            torch.set_num_threads(threads)
            blobs_now = blobs[: batch_size * 2] if round_ == 0 else blobs
            elapsed_s = one_pass_s(classifiers[threads, variant], blobs_now, batch_size, variant)
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
