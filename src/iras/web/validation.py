"""Is this upload an image IRAS will classify? Decided from the bytes, before anything is queued.

The file name and the Content-Type header are the client's claims; the first bytes and the
image header are facts. Only the header is parsed here (dimensions, format), never the
pixels: a gateway that decoded every upload would spend its CPU on work the workers do
anyway. The pixel limit stops decompression bombs before a worker would try to inflate one.
"""

from __future__ import annotations

import io
import unicodedata
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

#: Formats accepted, by the name Pillow gives them, with their media types.
ALLOWED_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
ALLOWED_TEXT = "JPEG, PNG, WebP or GIF"

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)

#: Longest file name kept as metadata (characters, after cleaning).
MAX_NAME_CHARS = 200


class UploadRejected(ValueError):
    """An upload that is refused; `code` and `detail` become the JSON error body."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str
    width: int
    height: int

    @property
    def media_type(self) -> str:
        return ALLOWED_FORMATS[self.format]


def sniff_format(head: bytes) -> str | None:
    """The image format the leading bytes announce, or None for anything else."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def inspect_image(blob: bytes, name: str, max_pixels: int) -> ImageInfo:
    """Check `blob` is an allowed image within `max_pixels`; raise `UploadRejected` if not."""
    if not blob:
        raise _empty(name)
    sniffed = _sniffed(blob[:16], name)
    if not is_complete(blob, sniffed):
        raise _truncated(name, sniffed)
    return _read_header(io.BytesIO(blob), sniffed, name, max_pixels)


#: How much of a file's start and end `inspect_image_file` reads: the start holds the
#: format's magic bytes and, for a JPEG, the header segments up to the first scan (EXIF
#: with its thumbnail and an ICC profile can take a few hundred kB); the end holds the
#: end marker (and whatever a camera appends after it).
HEAD_BYTES = 256 * 1024
TAIL_BYTES = 64 * 1024


def inspect_image_file(file: BinaryIO, name: str, max_pixels: int) -> ImageInfo:
    """`inspect_image` of the bytes in `file` (seekable), reading only what it needs.

    For an upload spooled to disk: its start and end (`HEAD_BYTES`, `TAIL_BYTES`) and the
    image header Pillow reads, not the whole file; the whole file only when its ends do
    not tell whether it is complete (`is_complete_from_ends`). Same checks, same answers.
    Blocking file I/O: call it off the event loop.
    """
    size = file.seek(0, io.SEEK_END)
    if size == 0:
        raise _empty(name)
    file.seek(0)
    head = file.read(min(HEAD_BYTES, size))
    sniffed = _sniffed(head[:16], name)
    file.seek(max(size - TAIL_BYTES, 0))
    tail = file.read()
    complete = is_complete_from_ends(head, tail, size, sniffed)
    if complete is None:  # its ends do not tell: the whole file does
        file.seek(0)
        complete = is_complete(file.read(), sniffed)
    if not complete:
        raise _truncated(name, sniffed)
    file.seek(0)
    return _read_header(file, sniffed, name, max_pixels)


def _sniffed(head: bytes, name: str) -> str:
    sniffed = sniff_format(head)
    if sniffed is None:
        raise UploadRejected(
            415,
            "unsupported_media_type",
            f"{name!r} is not a {ALLOWED_TEXT} image (judged by its content, not its name)",
        )
    return sniffed


def _read_header(source: BinaryIO, sniffed: str, name: str, max_pixels: int) -> ImageInfo:
    """The image's format and size from its header (Pillow reads no pixels to open it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=[sniffed]) as image:
                width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(name, None, max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UploadRejected(
            400, "invalid_image", f"{name!r} looks like {sniffed} but its header is broken: {error}"
        ) from None
    if width < 1 or height < 1:
        raise UploadRejected(400, "invalid_image", f"{name!r} has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise _too_many_pixels(name, (width, height), max_pixels)
    return ImageInfo(format=sniffed, width=width, height=height)


def _empty(name: str) -> UploadRejected:
    return UploadRejected(400, "empty_file", f"{name!r} is empty: an image file is expected")


def _truncated(name: str, sniffed: str) -> UploadRejected:
    return UploadRejected(
        400,
        "truncated_image",
        f"{name!r} ends before its {sniffed} data does (an interrupted upload or a cut "
        f"file?): send the whole file",
    )


_PNG_END = b"IEND\xaeB`\x82"


def is_complete(blob: bytes, fmt: str) -> bool:
    """Whether the file reaches its format's end marker: a cheap test for truncation.

    A cut-off file has an intact header, so only its end tells; decoding it would cost
    the gateway what the worker spends anyway. JPEG: an end-of-image marker after the
    image's first start-of-scan (an embedded thumbnail has both, earlier); PNG: the IEND chunk;
    GIF: the trailer byte; WebP: as many bytes as its RIFF header declares. Bytes after
    the end marker (some cameras append data) are allowed.

    A JPEG's first scan is found by walking its header segments, so that a thumbnail in
    an APP segment, with scans and an end of its own, is skipped: 2 us a photo, where
    searching back for the last start-of-scan crossed the whole scan (200 us, 7% of the
    gateway's CPU). End-of-image bytes cannot occur inside a scan (a 0xFF there is
    followed by 0x00 or a restart marker), so the last one found is the image's.
    """
    if fmt == "JPEG":
        first_scan = _jpeg_first_scan(blob)
        return first_scan != -1 and blob.rfind(b"\xff\xd9") > first_scan
    if fmt == "PNG":
        return blob.rfind(_PNG_END) != -1
    if fmt == "GIF":
        return blob.rstrip(b"\x00\r\n ").endswith(b";")
    if fmt == "WEBP":
        return len(blob) >= 8 and int.from_bytes(blob[4:8], "little") + 8 <= len(blob)
    return True


def is_complete_from_ends(head: bytes, tail: bytes, size: int, fmt: str) -> bool | None:
    """`is_complete` of a file of `size` bytes from its first bytes (`head`) and its last
    (`tail`) alone: the same answer, or None when they cannot tell (then the whole file
    must: a JPEG whose header segments outrun `head`, an end marker or trailer before
    `tail`, a tail of nothing but padding).

    The last end marker in the file is the last in `tail` whenever `tail` holds one; a
    JPEG's first scan is found in `head` by the same walk as `_jpeg_first_scan`.
    """
    if len(head) + len(tail) >= size:  # together they are the whole file
        return is_complete(head + tail[len(head) + len(tail) - size :], fmt)
    if fmt == "JPEG":
        first_scan = _jpeg_scan_walk(head)
        if first_scan is None or first_scan == -1:
            return None if first_scan is None else False
        last_end = tail.rfind(b"\xff\xd9")
        return None if last_end == -1 else size - len(tail) + last_end > first_scan
    if fmt == "PNG":
        return True if tail.rfind(_PNG_END) != -1 else None
    if fmt == "GIF":
        unpadded = tail.rstrip(b"\x00\r\n ")
        return unpadded.endswith(b";") if unpadded else None
    if fmt == "WEBP":
        return int.from_bytes(head[4:8], "little") + 8 <= size
    return True


def _jpeg_first_scan(blob: bytes) -> int:
    """Where the image's first start-of-scan marker is, or -1 if the headers end first."""
    position = _jpeg_scan_walk(blob)
    return -1 if position is None else position


def _jpeg_scan_walk(blob: bytes) -> int | None:
    """Where the first start-of-scan marker is in `blob` (the start of a JPEG), -1 if the
    headers are broken before it, None if `blob` ends first."""
    position = 2  # after the start-of-image marker
    while position + 4 <= len(blob):
        if blob[position] != 0xFF:
            return -1
        marker = blob[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
        elif marker == 0xDA:
            return position
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
        else:
            position += 2 + int.from_bytes(blob[position + 2 : position + 4], "big")
    return None


def clean_name(raw: str | None) -> str:
    """A file name fit to keep as metadata: no folders, no control characters, bounded.

    Names are only labels in results; keys in S3 are server-made ids, so nothing here can
    reach a path. An empty result becomes "image".
    """
    base = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    cleaned = printable.strip().lstrip(".")[:MAX_NAME_CHARS]
    return cleaned or "image"


def _too_many_pixels(name: str, size: tuple[int, int] | None, max_pixels: int) -> UploadRejected:
    shown = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels" if size else "too many pixels"
    return UploadRejected(
        413,
        "too_many_pixels",
        f"{name!r} has {shown}; the limit is {max_pixels:,} pixels (IRAS_MAX_IMAGE_PIXELS)",
    )
