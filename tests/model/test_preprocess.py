"""Decoding and preprocessing: every format and mode, orientation, and every way to fail."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from iras.model.calibration import photos
from iras.model.preprocess import (
    EFFICIENTNET_LITE_SPEC,
    TORCHVISION_SPEC,
    ImageDecodeError,
    crop,
    decode,
    preprocess,
    resize_and_crop,
    to_rgb,
)
from tests.model.images import (
    animated_gif,
    encode,
    in_mode,
    pattern,
    png_bomb,
    with_orientation,
)

# (mode of the decoded file, format it is stored in)
MODES_AND_FORMATS = [
    ("RGB", "JPEG"),
    ("L", "JPEG"),
    ("CMYK", "JPEG"),
    ("RGB", "PNG"),
    ("L", "PNG"),
    ("LA", "PNG"),
    ("RGBA", "PNG"),
    ("P", "PNG"),
    ("P+transparency", "PNG"),
    ("I;16", "PNG"),
    ("1", "PNG"),
    ("RGB", "WEBP"),
    ("RGBA", "WEBP"),
    ("P", "GIF"),
    ("I", "TIFF"),
    ("F", "TIFF"),
]


@pytest.mark.parametrize(("mode", "fmt"), MODES_AND_FORMATS)
def test_every_mode_and_format_decodes_to_rgb(mode: str, fmt: str) -> None:
    blob = encode(in_mode(mode), fmt)
    stored_mode = Image.open(io.BytesIO(blob)).mode
    assert stored_mode == mode.removesuffix("+transparency")  # the case really is tested

    image = decode(blob)
    tensor = preprocess(blob, EFFICIENTNET_LITE_SPEC)

    assert image.mode == "RGB"
    assert image.size == (96, 64)
    assert tensor.shape == (3, 224, 224)
    assert tensor.dtype == np.float32
    assert np.isfinite(tensor).all()


# (image, the RGB value of its top-left pixel once made RGB)
TO_RGB_CASES = [
    pytest.param(Image.new("RGBA", (2, 2), (255, 0, 0, 0)), (255, 255, 255), id="clear-on-white"),
    pytest.param(Image.new("RGBA", (2, 2), (255, 0, 0, 255)), (255, 0, 0), id="opaque-kept"),
    # half-transparent black over white: 255 * (1 - 128/255) = 127
    pytest.param(Image.new("LA", (2, 2), (0, 128)), (127, 127, 127), id="la-blended"),
    pytest.param(Image.new("I;16", (2, 2), 65535), (255, 255, 255), id="16-bit-white"),
    pytest.param(Image.new("I;16", (2, 2), 32896), (128, 128, 128), id="16-bit-mid"),
    pytest.param(Image.new("I", (2, 2), 200), (200, 200, 200), id="I-8-bit-range"),
    pytest.param(Image.new("I", (2, 2), 65535), (255, 255, 255), id="I-16-bit-range"),
    pytest.param(Image.new("F", (2, 2), 1.0), (255, 255, 255), id="F-unit-range"),
    pytest.param(Image.new("F", (2, 2), 100.0), (100, 100, 100), id="F-8-bit-range"),
    pytest.param(Image.new("1", (2, 2), 1), (255, 255, 255), id="bilevel"),
    pytest.param(Image.new("CMYK", (2, 2), (0, 255, 255, 0)), (255, 0, 0), id="cmyk-red"),
]


@pytest.mark.parametrize(("image", "expected"), TO_RGB_CASES)
def test_to_rgb_shows_what_a_viewer_sees(
    image: Image.Image, expected: tuple[int, int, int]
) -> None:
    rgb = to_rgb(image)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == expected


def test_palette_transparency_is_white() -> None:
    image = Image.new("P", (2, 2), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.info["transparency"] = 0
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)


def test_animated_gif_uses_its_first_frame() -> None:
    image = decode(animated_gif((255, 0, 0), (0, 0, 255)))
    red, green, blue = image.getpixel((10, 10))
    assert red > 200 and green < 50 and blue < 50


# (EXIF orientation, the transpose a viewer applies to show the picture upright)
ORIENTATIONS = [
    (2, Image.Transpose.FLIP_LEFT_RIGHT),
    (3, Image.Transpose.ROTATE_180),
    (6, Image.Transpose.ROTATE_270),
    (8, Image.Transpose.ROTATE_90),
]


@pytest.mark.parametrize(("orientation", "transpose"), ORIENTATIONS)
def test_png_exif_orientation_is_applied(orientation: int, transpose: Image.Transpose) -> None:
    stored = pattern()
    tilted = preprocess(with_orientation(stored, "PNG", orientation), EFFICIENTNET_LITE_SPEC)
    upright = preprocess(encode(stored.transpose(transpose), "PNG"), EFFICIENTNET_LITE_SPEC)
    np.testing.assert_allclose(tilted, upright, rtol=1e-5, atol=1e-5)


def test_jpeg_exif_orientation_6_is_applied() -> None:
    stored = pattern()
    tilted = preprocess(with_orientation(stored, "JPEG", 6), EFFICIENTNET_LITE_SPEC)
    upright_image = stored.transpose(Image.Transpose.ROTATE_270)
    upright = preprocess(encode(upright_image, "JPEG", quality=95), EFFICIENTNET_LITE_SPEC)
    ignored = preprocess(encode(stored, "JPEG", quality=95), EFFICIENTNET_LITE_SPEC)
    # JPEG noise differs between the two encodings; the rotation dwarfs it
    assert np.abs(tilted - upright).mean() < 0.05
    assert np.abs(tilted - ignored).mean() > 0.5


def _truncated(fmt: str) -> bytes:
    blob = encode(pattern((256, 256)), fmt)
    return blob[: len(blob) // 2]


# (bytes, a phrase the error message must contain)
BAD_INPUTS = [
    pytest.param(b"", "empty file", id="empty"),
    pytest.param(b"this is not an image", "not a decodable image", id="text"),
    pytest.param(b"%!PS-Adobe-3.0 EPSF-3.0\n", "not a decodable image", id="eps-disabled"),
    pytest.param(encode(pattern(), "PPM"), "not a decodable image", id="ppm-disabled"),
    pytest.param(_truncated("JPEG"), "truncated", id="truncated-jpeg"),
    pytest.param(_truncated("PNG"), "truncated", id="truncated-png"),
    pytest.param(png_bomb(), "image too large", id="decompression-bomb"),
]


@pytest.mark.parametrize(("blob", "phrase"), BAD_INPUTS)
def test_undecodable_input_raises_image_decode_error(blob: bytes, phrase: str) -> None:
    with pytest.raises(ImageDecodeError, match=phrase) as caught:
        preprocess(blob, EFFICIENTNET_LITE_SPEC)
    assert "0x" not in str(caught.value)  # no object addresses in what users read


# (image size, spec) -> the crop is always crop_px square
@pytest.mark.parametrize(
    "size", [(500, 375), (375, 500), (256, 256), (100, 60), (1, 10_000), (10_000, 1)]
)
@pytest.mark.parametrize("spec", [EFFICIENTNET_LITE_SPEC, TORCHVISION_SPEC])
def test_resize_and_crop_gives_the_crop_size(size: tuple[int, int], spec: object) -> None:
    assert isinstance(spec, type(EFFICIENTNET_LITE_SPEC))
    assert resize_and_crop(Image.new("RGB", size), spec).size == (224, 224)


def test_resize_and_crop_matches_resize_then_crop_for_bilinear() -> None:
    image = pattern((500, 375))
    resized = image.resize((341, 256), Image.Resampling.BILINEAR)  # int(256 * 500 / 375)
    expected = resized.crop((58, 16, 58 + 224, 16 + 224))  # round((341-224)/2), (256-224)/2
    ours = resize_and_crop(image, TORCHVISION_SPEC)
    difference = [abs(a - b) for a, b in zip(ours.tobytes(), expected.tobytes(), strict=True)]
    assert max(difference) <= 1


def test_jpeg_draft_only_shrinks_to_the_resize_target() -> None:
    blob = encode(pattern((1200, 1100)), "JPEG")
    assert decode(blob, draft_px=256).size == (300, 275)  # reduced 4x, both sides >= 256
    assert decode(blob).size == (1200, 1100)
    assert decode(encode(pattern((1200, 1100)), "PNG"), draft_px=256).size == (1200, 1100)


def test_normalisation_follows_the_spec() -> None:
    grey = encode(Image.new("RGB", (300, 300), (127, 127, 127)), "PNG")
    tensor = preprocess(grey, EFFICIENTNET_LITE_SPEC)
    expected = (127 / 255 - 0.498) / 0.502
    np.testing.assert_allclose(tensor, np.full((3, 224, 224), expected), rtol=1e-5, atol=1e-5)


def _crop_as_before(blob: bytes) -> bytes:
    """The crop as `decode` made it before the in-place EXIF transpose: via a copy."""
    image = Image.open(io.BytesIO(blob))
    image.draft(None, (EFFICIENTNET_LITE_SPEC.resize_px,) * 2)
    upright = ImageOps.exif_transpose(image)
    return resize_and_crop(to_rgb(upright), EFFICIENTNET_LITE_SPEC).tobytes()


def test_the_in_place_exif_transpose_gives_the_same_pixels() -> None:
    """Same bytes in, so the same labels out, on photos with and without an orientation."""
    blobs = [*photos(6, seed=3)]
    blobs += [
        with_orientation(pattern((300, 200)), fmt, o) for fmt in ("JPEG", "PNG") for o in (3, 6)
    ]
    for blob in blobs:
        assert crop(blob, EFFICIENTNET_LITE_SPEC).tobytes() == _crop_as_before(blob)
