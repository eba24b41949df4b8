"""Bytes of an uploaded image -> the 224 x 224 RGB pixels a model expects.

Uploads are untrusted and come in every shape: palette GIFs, transparent PNGs, 16-bit
greyscale, CMYK JPEGs from print workflows, phone photos that are stored sideways with an
EXIF orientation tag. Each is decoded to the upright RGB picture a person would see, so
the label matches what the uploader looked at. Anything that fails to decode raises the
one exception `ImageDecodeError`, whose message is fit to show to the uploader.

Only the decoders of common raster formats are enabled: the rest of Pillow's plugins
(EPS runs Ghostscript, for one) are attack surface a classifier does not need.

JPEG draft mode (DCT-domain downscaling by 1/2, 1/4 or 1/8 while decoding, never below
the resize target) takes a 4000 x 3000 photo to its crop in 22 ms instead of 154 ms.
On the 100 sample images (only 4 are big enough for it to apply) all 100 labels stay
the same and top-1 stays 0.88 (benchmarks/README.md), so it is on by default.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

DECODABLE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
EXPECTED = "JPEG, PNG, WebP or GIF expected"


class ImageDecodeError(ValueError):
    """The bytes are not an image IRAS can classify; the message says why."""


@dataclass(frozen=True, slots=True)
class PreprocessSpec:
    """How one model wants its input: resize the short side, centre-crop, normalise.

    `mean` and `std` are per RGB channel on pixels scaled to [0, 1].
    """

    resize_px: int
    crop_px: int
    resample: Image.Resampling
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    jpeg_draft: bool = True


# TF EfficientNet-Lite normalises with (x - 127) / 128 on 0..255 pixels.
EFFICIENTNET_LITE_SPEC = PreprocessSpec(
    resize_px=256,
    crop_px=224,
    resample=Image.Resampling.BICUBIC,
    mean=(0.498, 0.498, 0.498),
    std=(0.502, 0.502, 0.502),
)

# torchvision's ImageNet recipe (ResNet18_Weights.IMAGENET1K_V1.transforms()).
TORCHVISION_SPEC = PreprocessSpec(
    resize_px=256,
    crop_px=224,
    resample=Image.Resampling.BILINEAR,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)


Pixels = npt.NDArray[np.uint8]
"""A batch of crops as Pillow lays them out: N x H x W x 3 bytes (channels last)."""


def preprocess(blob: bytes, spec: PreprocessSpec) -> npt.NDArray[np.float32]:
    """Decode `blob` to the normalised float input (3 x crop x crop) of `spec`'s model.

    The reference for what the engines compute inside their graphs from `to_pixels`.
    """
    return normalise(to_pixels([crop(blob, spec)]), spec)[0]


def crop(blob: bytes, spec: PreprocessSpec) -> Image.Image:
    """Decode `blob` to the model's RGB crop; Pillow only, so any thread can run it."""
    draft_px = spec.resize_px if spec.jpeg_draft else None
    return resize_and_crop(decode(blob, draft_px), spec)


def decode(blob: bytes, draft_px: int | None = None) -> Image.Image:
    """Decode to an upright RGB image; JPEGs may be reduced while decoding.

    `draft_px` lets the JPEG decoder shrink by a power of two as long as both sides stay
    at least that many pixels.
    """
    if not blob:
        raise ImageDecodeError("empty file: no image data")
    try:
        image = Image.open(io.BytesIO(blob), formats=DECODABLE_FORMATS)
    except UnidentifiedImageError:
        raise ImageDecodeError(
            f"not a decodable image ({EXPECTED}): cannot identify image file"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"image too large: {exc}") from None
    except Exception as exc:  # any decoder failure is a property of the input
        raise ImageDecodeError(f"corrupt image header: {_describe(exc)}") from None
    try:
        if draft_px is not None and image.format == "JPEG":
            image.draft(None, (draft_px, draft_px))
        image.load()
        # In place: without an orientation tag the default returns a copy of the whole
        # decoded picture, thrown away at once; dropping it takes the 100 sample images
        # from 2.44 to 2.30 ms each, same bytes (benchmarks/README.md, issue 18).
        ImageOps.exif_transpose(image, in_place=True)
        return to_rgb(image)
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"image too large: {exc}") from None
    except Exception as exc:  # truncated data, bad chunks, broken EXIF, odd modes
        raise ImageDecodeError(
            f"corrupt or truncated {image.format} image: {_describe(exc)}"
        ) from None


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def to_rgb(image: Image.Image) -> Image.Image:
    """The RGB picture a viewer would see: alpha over white, high bit depths scaled.

    Plain `convert("RGB")` would drop alpha (showing whatever colour transparent pixels
    happen to hold, often black) and clip 16-bit and float pixels to 255 (all white).
    """
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        image = _to_8bit_grey(image)
    if image.mode == "RGB":
        return image
    if "A" in image.mode or "a" in image.mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit or float greyscale image to 0..255.

    16-bit modes declare their range; "I" and "F" do not, so their range is inferred from
    the brightest pixel: floats up to 1.0 are taken as [0, 1], values up to 255 as 8-bit,
    up to 65535 as 16-bit, anything brighter is scaled so its maximum becomes white.
    """
    floats = image.convert("F")
    brightest = float(floats.getextrema()[1])  # type: ignore[arg-type]
    if image.mode.startswith("I;16") or 255 < brightest <= 65535:
        scale = 1 / 257
    elif image.mode == "F" and brightest <= 1.0:
        scale = 255.0
    elif brightest <= 255:
        scale = 1.0
    else:
        scale = 255 / brightest
    return floats.point(lambda value: value * scale).convert("L")


def resize_and_crop(image: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """Resize the short side to `resize_px`, then take the centre `crop_px` square.

    Sizes and offsets follow torchvision's `Resize(int)` and `CenterCrop`, so the
    torchvision spec reproduces the accuracy its weights were published with. Only the
    source region that lands in the crop is resampled (Pillow's `box`; its filter still
    reads the pixels around the region): that is a third less work, and a 1 x 10000
    image cannot make us allocate a 256 x 2 560 000 intermediate. The result equals
    resize-then-crop for bilinear; for bicubic Pillow may run its two 1-D passes in the
    other order, which moves a few pixels at sharp edges by a few levels (mean 0.2/255).
    """
    width, height = image.size
    if width <= height:
        resized = (spec.resize_px, int(spec.resize_px * height / width))
    else:
        resized = (int(spec.resize_px * width / height), spec.resize_px)
    left = round((resized[0] - spec.crop_px) / 2.0)
    top = round((resized[1] - spec.crop_px) / 2.0)
    x_scale, y_scale = width / resized[0], height / resized[1]
    box = (
        left * x_scale,
        top * y_scale,
        (left + spec.crop_px) * x_scale,
        (top + spec.crop_px) * y_scale,
    )
    return image.resize((spec.crop_px, spec.crop_px), spec.resample, box=box)


def to_pixels(crops: Sequence[Image.Image]) -> Pixels:
    """Same-sized RGB crops -> one uint8 batch, N x H x W x 3, with a single copy.

    Normalisation happens inside the model's graph (see `iras.model.network`), where it
    fuses with the first convolution: the batch stays bytes until then, a quarter of the
    memory traffic of floats.
    """
    width, height = crops[0].size
    raw = b"".join(image.tobytes() for image in crops)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(crops), height, width, 3)


def normalise(pixels: Pixels, spec: PreprocessSpec) -> npt.NDArray[np.float32]:
    """uint8 N x H x W x 3 -> float32 N x 3 x H x W, normalised by `spec`'s mean and std."""
    mean = np.array(spec.mean, dtype=np.float32).reshape(1, 3, 1, 1) * 255.0
    std = np.array(spec.std, dtype=np.float32).reshape(1, 3, 1, 1) * 255.0
    batch = pixels.transpose(0, 3, 1, 2).astype(np.float32)
    return np.ascontiguousarray((batch - mean) / std, dtype=np.float32)
