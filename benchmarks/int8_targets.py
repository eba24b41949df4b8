"""Issue 18's int8 targets: float against int8 EfficientNet-Lite0, in one run.

    .venv/bin/python benchmarks/int8_targets.py [--data DIR] [--threads 2] [--batch-size 8]
        [--rounds 5]

1. Accuracy: top-1 of each on the labelled sample images, and how many images get the
   same top-1 from both (targets: int8 within 1 point of float, >= 95% the same).
2. Speed of the whole pipeline, decode included: `Classifier.classify` over every file
   in batches, plain and pipelined (`iras.model.pipeline`, as `iras predict` and the
   worker call it). Each round runs float and int8 back to back (in alternating order),
   so a noisy neighbour slows both alike; reported are the best round of each and the
   median over rounds of the two times' ratio (target: int8 >= 1.2x float).
3. Where the time goes with each: decoding to crops alone on the decode threads, the
   network alone on already-decoded batches, and the steps of one image's decode.

The int8 file is made by `iras.model.quantize` (calibrated on generated photos, never on
these images) and cached next to the float export, which is made if missing.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageOps

from iras.model import Prediction, load_classifier
from iras.model.classifier import Classifier
from iras.model.onnx_engine import OnnxEngine
from iras.model.pipeline import pipelined
from iras.model.preprocess import (
    DECODABLE_FORMATS,
    Pixels,
    PreprocessSpec,
    crop,
    resize_and_crop,
    to_pixels,
    to_rgb,
)
from iras.model.quantize import find_quantized, int8_model

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/imagenet-sample-100"
MODEL = "efficientnet_lite0"


def build(threads: int) -> dict[str, Classifier]:
    reference = load_classifier(MODEL, threads=1, engine="onnx")  # makes the export if missing
    assert isinstance(reference.engine, OnnxEngine), "ONNX Runtime is needed for int8"
    float_path, spec = reference.engine.path, reference.spec
    cached = find_quantized(float_path, spec) is not None
    started = time.perf_counter()
    int8_path = int8_model(float_path, spec)
    took = "cached" if cached else f"quantized in {time.perf_counter() - started:.1f} s"
    print(f"fp32: {float_path.name} ({float_path.stat().st_size / 1e6:.1f} MB)")
    print(f"int8: {int8_path.name} ({int8_path.stat().st_size / 1e6:.1f} MB, {took})")
    return {
        precision: Classifier(MODEL, OnnxEngine(path, threads), spec, decode_threads=threads)
        for precision, path in (("fp32", float_path), ("int8", int8_path))
    }


def accuracy(classifiers: dict[str, Classifier], data: Path, batch_size: int) -> None:
    with (data / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    blobs = [(data / row["file"]).read_bytes() for row in rows]
    labels = {precision: top1(c, blobs, batch_size) for precision, c in classifiers.items()}
    same = sum(a == b for a, b in zip(labels["fp32"], labels["int8"], strict=True))
    print(f"\naccuracy on {len(rows)} images\n")
    print("| precision | top-1 | same top-1 as fp32 |")
    print("|---|---:|---:|")
    for precision, found in labels.items():
        correct = sum(label == row["label"] for label, row in zip(found, rows, strict=True))
        agree = same if precision == "int8" else len(rows)
        print(f"| {precision} | {correct / len(rows):.2f} ({correct}) | {agree}/{len(rows)} |")


def top1(classifier: Classifier, blobs: list[bytes], batch_size: int) -> list[str | None]:
    found: list[str | None] = []
    for start in range(0, len(blobs), batch_size):
        for outcome in classifier.classify(blobs[start : start + batch_size], top_k=1):
            found.append(outcome.label if isinstance(outcome, Prediction) else None)
    return found


def speed(
    classifiers: dict[str, Classifier],
    blobs: list[bytes],
    batch_size: int,
    rounds: int,
    threads: int,
) -> None:
    batches = [blobs[start : start + batch_size] for start in range(0, len(blobs), batch_size)]
    spec = next(iter(classifiers.values())).spec
    pool = ThreadPoolExecutor(threads, thread_name_prefix="decode-only")
    pixel_batches = [to_pixels([crop(blob, spec) for blob in batch]) for batch in batches]
    ways: dict[str, Callable[[Classifier], object]] = {
        "classify": lambda c: [c.classify(batch) for batch in batches],
        "pipelined": lambda c: list(pipelined(c.classify, batches)),
        "decode only": lambda c: decode_all(spec, batches, pool),
        "network only": lambda c: network_all(c, pixel_batches),
    }
    taken_s: dict[tuple[str, str], list[float]] = {(w, p): [] for w in ways for p in classifiers}
    for round_ in range(rounds + 1):  # round 0 warms up and is not counted
        for way in ways:
            # Each way runs on both precisions back to back, in alternating order, so
            # the two times of one round saw the same neighbours.
            order = list(classifiers) if round_ % 2 else list(reversed(classifiers))
            for precision in order:
                started = time.perf_counter()
                ways[way](classifiers[precision])
                if round_ > 0:
                    taken_s[way, precision].append(time.perf_counter() - started)
    print(f"\nimages/s, batch {batch_size}, best of {rounds} interleaved rounds\n")
    print("| what | fp32 | int8 | int8 / fp32 (best) | int8 / fp32 (median of rounds) |")
    print("|---|---:|---:|---:|---:|")
    for way in ways:
        fp32_s, int8_s = taken_s[way, "fp32"], taken_s[way, "int8"]
        fp32, int8 = len(blobs) / min(fp32_s), len(blobs) / min(int8_s)
        paired = statistics.median(f / i for f, i in zip(fp32_s, int8_s, strict=True))
        print(f"| {way} | {fp32:.1f} | {int8:.1f} | {int8 / fp32:.2f}x | {paired:.2f}x |")


def decode_all(spec: PreprocessSpec, batches: list[list[bytes]], pool: ThreadPoolExecutor) -> None:
    """Decode to crops on as many threads as the classifiers decode with."""
    for batch in batches:
        list(pool.map(lambda blob: crop(blob, spec), batch))


def network_all(classifier: Classifier, pixel_batches: list[Pixels]) -> None:
    for pixels in pixel_batches:
        classifier.engine.run(pixels)


def decode_stages(blobs: list[bytes], spec: PreprocessSpec, rounds: int) -> None:
    """Milliseconds per image of each step of `crop`, on one thread, best of `rounds`."""
    best_ms: dict[str, float] = {}
    for _ in range(rounds):
        spent_s = dict.fromkeys(
            ("open", "decode (draft + load)", "EXIF + RGB", "resize + crop"), 0.0
        )
        for blob in blobs:
            started = time.perf_counter()
            image = Image.open(io.BytesIO(blob), formats=DECODABLE_FORMATS)
            opened = time.perf_counter()
            image.draft(None, (spec.resize_px, spec.resize_px))
            image.load()
            loaded = time.perf_counter()
            ImageOps.exif_transpose(image, in_place=True)
            rgb = to_rgb(image)
            upright = time.perf_counter()
            resize_and_crop(rgb, spec)
            done = time.perf_counter()
            for step, took_s in zip(
                spent_s,
                (opened - started, loaded - opened, upright - loaded, done - upright),
                strict=True,
            ):
                spent_s[step] += took_s
        for step, total_s in spent_s.items():
            best_ms[step] = min(best_ms.get(step, float("inf")), total_s * 1000 / len(blobs))
    print(f"\ndecode to crop, one thread, ms per image (best of {rounds})\n")
    print("| " + " | ".join(best_ms) + " | all |")
    print("|" + "---:|" * (len(best_ms) + 1))
    print(
        "| "
        + " | ".join(f"{ms:.2f}" for ms in best_ms.values())
        + f" | {sum(best_ms.values()):.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    classifiers = build(args.threads)
    accuracy(classifiers, args.data, args.batch_size)
    blobs = [path.read_bytes() for path in sorted(args.data.glob("*.JPEG"))]
    speed(classifiers, blobs, args.batch_size, args.rounds, args.threads)
    decode_stages(blobs, classifiers["int8"].spec, args.rounds)


if __name__ == "__main__":
    main()
