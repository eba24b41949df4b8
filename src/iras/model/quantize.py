"""Quantize an ONNX export to int8 once, check it against the float one, and cache it.

Static quantization with ONNX Runtime's own tools: the graph is first simplified
(`quant_pre_process`: shape inference, constant folding, the explicit pads of TF "same"
padding folded into the convolutions), then calibrated on generated photos
(`iras.model.calibration`, never the accuracy set) and rewritten in QDQ form with
per-channel int8 weights and uint8 activations, which ONNX Runtime's CPU kernels run as
integer convolutions (VNNI where the CPU has it). The weights use 7 of their 8 bits
(`reduce_range`): without VNNI (AVX2, AVX-512 before Cascade Lake, AMD before Zen 4)
the kernels add pairs of uint8 x int8 products in 16 bits, which saturate with full-range
weights. Measured on an AVX2 EPYC, full range kept the float top-1 on 41% of the check's
photos and 7 bits on 84%; on the 100 sample photos 7 bits scored 0.90 against fp32's
0.88. A file made on one CPU may run on another (a baked image, a shared cache), so one
recipe must be right on all of them. The uint8 pixel input and the normalisation in the
graph need no special handling: calibration only measures float tensors, so the first
quantized tensor is the normalised input of the first convolution.
Two outputs stay float: the probabilities (uint8 would round them to 1/256, and top-k
scores would tie) and the logits before them, for the same reason.

The file is kept next to the float export, or in the user's cache when that folder is
read-only. Its name carries a digest of the float file, of the resize and crop that made
the calibration pixels, of `QUANT_FORMAT` and of onnxruntime's version, so a new export,
a changed recipe or another runtime never meets a stale file. It is written to a
temporary name and renamed, as the float export is. A file the check refuses is not
kept, but the refusal is (`<name>.refused`, its reason inside), so that every later
process runs fp32 at once instead of spending ~10 s and ~1.6 GB to be refused again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from iras.model.calibration import calibration_pixels
from iras.model.errors import ModelError
from iras.model.onnx_export import user_cache_dir
from iras.model.preprocess import Pixels, PreprocessSpec

log = logging.getLogger(__name__)

# Bump when the recipe changes (calibration images, options below, onnxruntime's tools).
QUANT_FORMAT = "iras-int8-2"
# 64 images kept the float top-1 on one more of 64 held-out photos than 32 did; memory
# grows with the count (calibration keeps every activation: ~1.6 GB peak at 32).
CALIBRATION_IMAGES = 32
CALIBRATION_SEED = 0
CALIBRATION_BATCH = 8
# The check after quantizing: top-1 on held-out generated photos (another seed). They
# are harder to call than real photos (the float network's top probability averages
# ~0.25 on them), so agreement is lower than on real images: 0.88 on these 32 for
# EfficientNet-Lite0, whose agreement on the 100 sample photos is 0.96.
CHECK_IMAGES = 32
CHECK_SEED = 1
MIN_CHECK_AGREEMENT = 0.75

InputOf = Callable[[Pixels], npt.NDArray[np.generic]]


def quantized_name(float_path: Path, spec: PreprocessSpec) -> str:
    return f"{float_path.stem}.int8.{_digest(float_path, spec)}.onnx"


def cache_candidates(float_path: Path, spec: PreprocessSpec) -> list[Path]:
    """Where the int8 file of `float_path` may be: next to it, then the user cache."""
    name = quantized_name(float_path, spec)
    return [float_path.parent / name, user_cache_dir() / name]


def quantized_path(float_path: Path, spec: PreprocessSpec) -> Path:
    """Where the int8 file of `float_path` goes when its folder is writable."""
    return cache_candidates(float_path, spec)[0]


def find_quantized(float_path: Path, spec: PreprocessSpec) -> Path | None:
    return _first_file(cache_candidates(float_path, spec))


def _first_file(candidates: list[Path]) -> Path | None:
    return next((path for path in candidates if path.is_file()), None)


def int8_model(float_path: Path, spec: PreprocessSpec) -> Path:
    """The int8 file of `float_path`: the cached one, else quantized now and cached.

    One process at a time quantizes (a lock file in the user's cache directory): it
    takes ~10 s and ~1.6 GB, and `iras serve --course` starts 15 workers at once, which
    would otherwise each quantize the same file. The others wait, then load its file.
    """
    candidates = cache_candidates(float_path, spec)  # named by a digest of the whole file
    found = _found_or_refused(candidates)
    if found is not None:
        return found
    with _one_process_at_a_time(f"{candidates[0].name}.lock"):
        return _found_or_refused(candidates) or quantize_to_cache(float_path, spec, candidates)


def _found_or_refused(candidates: list[Path]) -> Path | None:
    """The cached int8 file among `candidates`, or None to make it; `ModelError` if it
    was refused before."""
    found = _first_file(candidates)
    if found is not None:
        return found
    for candidate in candidates:
        refusal = refusal_path(candidate)
        with contextlib.suppress(OSError):
            reason = refusal.read_text(encoding="utf-8").strip()
            raise ModelError(f"{reason} (refused before: delete {refusal} to try again)")
    return None


def refusal_path(target: Path) -> Path:
    """Where the refusal of the int8 file `target` is kept."""
    return target.with_name(f"{target.name}.refused")


@contextlib.contextmanager
def _one_process_at_a_time(lock_name: str) -> Iterator[None]:
    """An exclusive lock on a file of `lock_name` in the user cache; no lock where that
    cannot be had (no `fcntl`, no writable cache): quantizing twice is only slower."""
    try:
        import fcntl

        folder = user_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        handle = (folder / lock_name).open("a")
    except (ImportError, OSError) as exc:
        log.info("quantizing without a lock (%s)", exc)
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def quantize_to_cache(
    float_path: Path,
    spec: PreprocessSpec,
    candidates: list[Path] | None = None,
    *,
    input_of: InputOf | None = None,
) -> Path:
    """Quantize `float_path`, check it, store it at the first writable candidate.

    `input_of` turns generated pixels (uint8 N x H x W x 3, `spec`'s crop) into the
    graph's input; by default they are fed as they are, as IRAS's own graphs take them.
    """
    for target in candidates or cache_candidates(float_path, spec):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _quantize_atomically(float_path, spec, target, input_of or _as_is)
        except OSError as exc:
            log.info("cannot write the int8 model to %s (%s); trying the next place", target, exc)
            continue
        log.info("quantized %s to int8 at %s", float_path.name, target)
        return target
    raise ModelError(f"cannot write an int8 model of {float_path} to any of {candidates}")


def _quantize_atomically(
    float_path: Path, spec: PreprocessSpec, target: Path, input_of: InputOf
) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
    os.close(handle)
    os.chmod(temporary, 0o644)  # for every user of the export, as onnx_export does
    try:
        with tempfile.TemporaryDirectory(prefix="iras-quantize-") as work:
            _quantize(float_path, spec, Path(work), Path(temporary), input_of)
        try:
            check_agreement(float_path, Path(temporary), spec, input_of)
        except ModelError as refused:
            with contextlib.suppress(OSError):  # unkept, it is only checked again
                refusal_path(target).write_text(f"{refused}\n", encoding="utf-8")
            raise
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _quantize(
    float_path: Path, spec: PreprocessSpec, work: Path, output: Path, input_of: InputOf
) -> None:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    simplified = work / "simplified.onnx"
    # The calibration session lists every initialiser the optimiser drops, one warning
    # each; they say nothing about the result, which check_agreement judges.
    ort.set_default_logger_severity(3)
    try:
        quant_pre_process(str(float_path), str(simplified))
        model = onnx.load(str(simplified))
        graph = model.graph
        for index, node in enumerate(graph.node):  # exclusion is by name: "" would be all
            node.name = node.name or f"{node.op_type}_{index}"
        onnx.save(model, str(simplified))
        quantize_static(
            str(simplified),
            str(output),
            _Calibration(graph.input[0].name, _batches(spec, input_of)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=True,  # 7-bit weights: right on every x86 CPU (module docstring)
            nodes_to_exclude=[node.name for node in graph.node if node.op_type == "Softmax"],
            extra_options={"OpTypesToExcludeOutputQuantization": ["Gemm", "MatMul"]},
        )
    finally:
        ort.set_default_logger_severity(2)  # onnxruntime's default: warnings


def _batches(spec: PreprocessSpec, input_of: InputOf) -> Iterator[npt.NDArray[np.generic]]:
    pixels = calibration_pixels(spec, CALIBRATION_IMAGES, CALIBRATION_SEED)
    for start in range(0, len(pixels), CALIBRATION_BATCH):
        yield input_of(pixels[start : start + CALIBRATION_BATCH])


class _Calibration:
    """onnxruntime's `CalibrationDataReader` protocol over batches of inputs."""

    def __init__(self, input_name: str, batches: Iterator[npt.NDArray[np.generic]]) -> None:
        self._input_name = input_name
        self._batches = batches

    def get_next(self) -> dict[str, npt.NDArray[np.generic]] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self._input_name: batch}


def check_agreement(
    float_path: Path, int8_path: Path, spec: PreprocessSpec, input_of: InputOf | None = None
) -> float:
    """The share of held-out generated photos whose top-1 the int8 model keeps; refuse
    a file below `MIN_CHECK_AGREEMENT` (a broken recipe, not rounding)."""
    inputs = (input_of or _as_is)(calibration_pixels(spec, CHECK_IMAGES, CHECK_SEED))
    expected = _run(float_path, inputs)
    actual = _run(int8_path, inputs)
    agreement = float((expected.argmax(1) == actual.argmax(1)).mean())
    if agreement < MIN_CHECK_AGREEMENT:
        raise ModelError(
            f"the int8 model keeps the float model's top-1 on only {agreement:.0%} of "
            f"{CHECK_IMAGES} generated images (at least {MIN_CHECK_AGREEMENT:.0%} expected)"
        )
    return agreement


def _run(path: Path, inputs: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [outputs] = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: inputs})
    return np.asarray(outputs, dtype=np.float32)


def _as_is(pixels: Pixels) -> npt.NDArray[np.generic]:
    return pixels


def _digest(float_path: Path, spec: PreprocessSpec) -> str:
    # What shapes the calibration pixels; mean and std do not (the graph normalises).
    import onnxruntime  # its tools and kernels are part of the recipe, and the check's verdict

    pixels = (spec.resize_px, spec.crop_px, int(spec.resample), spec.jpeg_draft)
    digest = hashlib.sha256(f"{QUANT_FORMAT} {onnxruntime.__version__} {pixels}".encode())
    with float_path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
