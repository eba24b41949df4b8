"""Generated photographs for calibrating a quantized network, never the accuracy set.

Static quantization fixes each activation's range from what the network sees while
calibrating, so calibration images must drive it as real photos do. Noise or flat
colours do not: they leave most channels nearly idle and the ranges too narrow. What
these images copy is what matters to early layers: the amplitude spectrum of natural
images (falling as 1/f), colour that mostly follows brightness, and objects with edges,
shading and texture in front of a softer background. Each image is encoded as a JPEG
and goes through the classifier's own decode, resize and crop, so calibration sees the
pixels a request would produce.

Everything comes from a seeded generator: the same seed gives the same bytes, so a
quantized file made on one machine is the file made on any other.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

from iras.model.preprocess import Pixels, PreprocessSpec, crop, to_pixels

SHAPES = ("ellipse", "rectangle", "polygon")
SIZES_PX = ((320, 240), (240, 320), (288, 288), (400, 300), (256, 384))


def photos(count: int, seed: int = 0) -> Iterator[bytes]:
    """`count` JPEGs of various sizes; image `i` depends only on `seed` and `i`."""
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        yield _jpeg(_photo(rng), quality=int(rng.integers(80, 96)))


def calibration_pixels(spec: PreprocessSpec, count: int, seed: int = 0) -> Pixels:
    """The model's input for `count` generated photos: N x crop x crop x 3 bytes."""
    return to_pixels([crop(blob, spec) for blob in photos(count, seed)])


def _photo(rng: np.random.Generator) -> Image.Image:
    size = SIZES_PX[int(rng.integers(len(SIZES_PX)))]
    image = Image.fromarray(_background(rng, size), "RGB")
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3.0))))
    for _ in range(int(rng.integers(2, 7))):
        _paste_object(image, rng)
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 0.8))))


def _background(rng: np.random.Generator, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """Pink noise in a random palette: brightness plus two weaker colour fields."""
    width, height = size
    fields = np.stack([_pink_noise(rng, height, width) for _ in range(3)], axis=-1)
    fields[..., 1:] *= rng.uniform(0.2, 0.6)
    # Columns: the palette's mean colour and how brightness and the chroma fields move it.
    palette = rng.uniform(-1.0, 1.0, (3, 3)) * np.array([1.0, 0.6, 0.6])
    palette[:, 0] = np.abs(palette[:, 0]) + 0.3
    base = rng.uniform(60, 190, 3)
    contrast = rng.uniform(40, 110)
    rgb = base + contrast * fields @ palette.T
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _pink_noise(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.float64]:
    """Noise whose amplitude falls as 1/f^alpha (natural images: alpha ~ 1), unit spread."""
    alpha = rng.uniform(0.9, 1.6)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    frequency = np.hypot(fx, fy)
    frequency[0, 0] = 1.0
    spectrum = rng.normal(size=frequency.shape) + 1j * rng.normal(size=frequency.shape)
    field = np.fft.irfft2(spectrum / frequency**alpha, s=(height, width))
    field -= field.mean()
    return field / (field.std() + 1e-9)


def _paste_object(image: Image.Image, rng: np.random.Generator) -> None:
    """A textured, shaded shape with a hard edge (an object in front of the scene)."""
    width, height = image.size
    object_w = int(rng.uniform(0.15, 0.7) * width)
    object_h = int(rng.uniform(0.15, 0.7) * height)
    left = int(rng.integers(-object_w // 4, width - object_w // 2))
    top = int(rng.integers(-object_h // 4, height - object_h // 2))
    mask = Image.new("L", (object_w, object_h), 0)
    draw = ImageDraw.Draw(mask)
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    if shape == "ellipse":
        draw.ellipse((0, 0, object_w - 1, object_h - 1), fill=255)
    elif shape == "rectangle":
        draw.rectangle((0, 0, object_w - 1, object_h - 1), fill=255)
    else:
        corners = rng.uniform(0, 1, (int(rng.integers(3, 8)), 2)) * (object_w - 1, object_h - 1)
        draw.polygon([(float(x), float(y)) for x, y in corners], fill=255)
    texture = _background(rng, (object_w, object_h)).astype(np.float64)
    texture *= _shading(rng, object_h, object_w)[..., None]
    fill = Image.fromarray(np.clip(texture, 0, 255).astype(np.uint8), "RGB")
    image.paste(fill, (left, top), mask)


def _shading(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.float64]:
    """Light falling across the object from a random direction."""
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width]
    ramp = (np.cos(angle) * xs / max(width, 1) + np.sin(angle) * ys / max(height, 1)) / 1.5
    return 0.55 + rng.uniform(0.3, 0.9) * (ramp - ramp.min())


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
