"""Synthetic test images, made with Pillow so the tests need no data files."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image, ImageChops

ORIENTATION_TAG = 0x0112


def pattern(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """An RGB image no rotation or flip maps onto itself: four differently coloured
    quadrants (solid, so JPEG keeps them nearly intact), with a ramp in the blue channel."""
    width, height = size
    image = Image.new("RGB", size)
    colours = ((220, 30, 30), (30, 200, 40), (40, 60, 120), (240, 220, 40))
    boxes = (
        (0, 0, width // 2, height // 2),
        (width // 2, 0, width, height // 2),
        (0, height // 2, width // 2, height),
        (width // 2, height // 2, width, height),
    )
    for colour, box in zip(colours, boxes, strict=True):
        image.paste(colour, box)
    red, green, blue = image.split()
    ramp = Image.linear_gradient("L").resize(size).point(lambda v: v // 2)
    return Image.merge("RGB", (red, green, ImageChops.add(blue, ramp)))


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def in_mode(mode: str) -> Image.Image:
    """The pattern in `mode`, with pixel values that use the mode's whole range."""
    base = pattern()
    if mode == "I;16":
        return base.convert("I").point(lambda v: v * 257).convert("I;16")
    if mode == "I":
        return base.convert("I").point(lambda v: v * 257)
    if mode == "F":
        return base.convert("F").point(lambda v: v / 255)
    if mode in ("LA", "RGBA"):
        image = base.convert(mode)
        image.putalpha(Image.linear_gradient("L").resize(base.size))
        return image
    if mode == "P+transparency":
        image = base.convert("P")
        image.info["transparency"] = 0
        return image
    return base.convert(mode)


def with_orientation(image: Image.Image, fmt: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    params: dict[str, Any] = {"exif": exif.tobytes()}
    if fmt == "JPEG":
        params["quality"] = 95
    return encode(image, fmt, **params)


def animated_gif(first: tuple[int, int, int], second: tuple[int, int, int]) -> bytes:
    frames = [Image.new("RGB", (64, 48), colour) for colour in (first, second)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb)."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)
