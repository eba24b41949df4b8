"""Checking a spooled upload from its ends: the same answers as from all its bytes, reading few."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable

import pytest
from PIL import Image

from iras.web.validation import (
    HEAD_BYTES,
    TAIL_BYTES,
    ImageInfo,
    UploadRejected,
    inspect_image,
    inspect_image_file,
    is_complete,
    is_complete_from_ends,
    sniff_format,
)


def _saved(fmt: str, size: tuple[int, int] = (120, 80), **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize(size).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _noisy(fmt: str, side: int) -> bytes:
    """Random pixels: they do not compress, so the file is big (about 3 * side^2 as PNG)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, format=fmt)
    return buffer.getvalue()


def _with_thumbnail(jpeg: bytes, padding: int = 0) -> bytes:
    """`jpeg` with a whole small JPEG (and `padding` bytes) in an APP1 segment."""
    payload = b"Exif\x00\x00" + _saved("JPEG", (16, 12)) + b"\x00" * padding
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


WHOLE = {
    "jpeg": _saved("JPEG"),
    "progressive-jpeg": _saved("JPEG", progressive=True),
    "jpeg-thumbnail": _with_thumbnail(_saved("JPEG")),
    "jpeg-long-headers": _with_thumbnail(_saved("JPEG"), padding=60_000),
    "jpeg-trailer": _saved("JPEG") + b"appended by a camera" * 50,
    "png": _saved("PNG"),
    "png-trailer": _saved("PNG") + b"\x00" * 3000,
    "gif": _saved("GIF"),
    "gif-padded": _saved("GIF") + b"\x00\r\n " * 500,
    "webp": _saved("WEBP"),
    "lossless-webp": _saved("WEBP", lossless=True),
}


def _variants() -> list[tuple[str, bytes]]:
    """Each whole file, and cut at its end, in its middle and in its headers."""
    out = []
    for name, blob in WHOLE.items():
        out += [(name, blob), (f"{name}-2", blob[:-2]), (f"{name}-half", blob[: len(blob) // 2])]
        out += [(f"{name}-head", blob[:40])]
    return out


VARIANTS = _variants()


@pytest.mark.parametrize(("label", "blob"), VARIANTS, ids=[label for label, _ in VARIANTS])
@pytest.mark.parametrize(("head_n", "tail_n"), [(16, 2), (40, 16), (300, 40), (4096, 512)])
def test_the_ends_tell_the_same_as_the_whole_file_or_say_they_cannot(
    label: str, blob: bytes, head_n: int, tail_n: int
) -> None:
    fmt = sniff_format(blob[:16])
    assert fmt is not None
    size = len(blob)
    head, tail = blob[:head_n], blob[max(size - tail_n, 0) :]
    from_ends = is_complete_from_ends(head, tail, size, fmt)
    assert from_ends in (None, is_complete(blob, fmt))


@pytest.mark.parametrize("label", list(WHOLE))
def test_with_the_default_ends_every_ordinary_file_is_decided(label: str) -> None:
    blob = WHOLE[label]
    fmt = sniff_format(blob[:16])
    assert fmt is not None
    for cut in (blob, blob[:-2]):
        head, tail = cut[:HEAD_BYTES], cut[max(len(cut) - TAIL_BYTES, 0) :]
        assert is_complete_from_ends(head, tail, len(cut), fmt) == is_complete(cut, fmt)


class CountingFile(io.BytesIO):
    """A file that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = super().readinto(buffer)
        self.bytes_read += count
        return count


def _outcome(check: Callable[[], ImageInfo]) -> ImageInfo | tuple[int, str, str]:
    try:
        return check()
    except UploadRejected as rejected:
        return (rejected.status, rejected.code, rejected.detail)


@pytest.mark.parametrize(("label", "blob"), VARIANTS, ids=[label for label, _ in VARIANTS])
def test_a_file_is_judged_as_its_bytes_are(label: str, blob: bytes) -> None:
    in_memory = _outcome(lambda: inspect_image(blob, "x.jpg", 10_000_000))
    from_file = _outcome(lambda: inspect_image_file(CountingFile(blob), "x.jpg", 10_000_000))
    assert from_file == in_memory
    empty = _outcome(lambda: inspect_image_file(CountingFile(b""), "x", 1))
    assert isinstance(empty, tuple) and empty[:2] == (400, "empty_file")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_big_file_is_checked_without_reading_it_whole(fmt: str) -> None:
    blob = _noisy(fmt, 1000 if fmt == "PNG" else 1500)  # PNG 3 MB, JPEG 1.3 MB
    assert len(blob) > 1_000_000
    spooled = CountingFile(blob)
    info = inspect_image_file(spooled, "big", 10_000_000)
    assert info.format == fmt and info.width == info.height
    # Its two ends, and the header Pillow reads (a few kB): not the megabytes between.
    assert spooled.bytes_read < HEAD_BYTES + TAIL_BYTES + 64 * 1024 < len(blob)
    with pytest.raises(UploadRejected, match="ends before"):
        inspect_image_file(CountingFile(blob[:-100]), "big", 10_000_000)
