"""Artwork rules: formats, minimum size, square crop, scaling, colour modes, bombs, EXIF."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from media import artwork
from media.artwork import generate_cover, prepare_artwork
from media.errors import InvalidArtwork


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepts_jpeg_png_webp(fmt: str) -> None:
    result = _open(prepare_artwork(_encode(Image.new("RGB", (1400, 1400), (1, 2, 3)), fmt)))
    assert (result.size, result.mode) == ((1400, 1400), "RGB")


def test_refuses_small_images_saying_the_size() -> None:
    with pytest.raises(InvalidArtwork, match=r"800×600 px; podcast apps need at least 1400×1400"):
        prepare_artwork(_encode(Image.new("RGB", (800, 600)), "PNG"))


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"<html></html>", b"GIF89a" + bytes(100)],
)
def test_refuses_non_images_and_other_formats(data: bytes) -> None:
    with pytest.raises(InvalidArtwork, match="JPEG, PNG or WebP"):
        prepare_artwork(data)


def test_refuses_gif_even_when_large() -> None:
    with pytest.raises(InvalidArtwork, match="JPEG, PNG or WebP"):
        prepare_artwork(_encode(Image.new("P", (1500, 1500)), "GIF"))


def test_crops_non_square_to_the_centre() -> None:
    image = Image.new("RGB", (2400, 1600), (255, 0, 0))
    image.paste((0, 255, 0), (400, 0, 2000, 1600))  # the centre square is green
    result = _open(prepare_artwork(_encode(image, "PNG")))
    assert result.size == (1600, 1600)
    assert result.getpixel((5, 800))[1] > 200 and result.getpixel((1594, 800))[1] > 200


def test_scales_huge_images_down_to_3000() -> None:
    result = _open(prepare_artwork(_encode(Image.new("RGB", (4000, 4500)), "JPEG")))
    assert result.size == (3000, 3000)


def test_cmyk_becomes_rgb() -> None:
    result = _open(prepare_artwork(_encode(Image.new("CMYK", (1500, 1500), (0, 0, 0, 0)), "JPEG")))
    assert result.mode == "RGB"
    assert all(channel > 240 for channel in result.getpixel((10, 10)))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_composited_on_white(mode: str) -> None:
    image = Image.new("RGBA", (1500, 1500), (255, 0, 0, 0)).convert(mode)
    if mode == "P":
        image.info["transparency"] = 0
    result = _open(prepare_artwork(_encode(image, "PNG")))
    assert result.mode == "RGB"
    assert all(channel > 240 for channel in result.getpixel((700, 700)))


def test_decompression_bomb_is_refused() -> None:
    bomb = _encode(Image.new("1", (20000, 20000)), "PNG")  # 400 Mpx in a few kB
    assert len(bomb) < 200_000
    with pytest.raises(InvalidArtwork, match="far too large"):
        prepare_artwork(bomb)


def test_exif_is_stripped() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Secret Camera Maker"
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPS
    data = _encode(Image.new("RGB", (1500, 1500)), "JPEG", exif=exif)
    assert b"Secret Camera Maker" in data
    result = prepare_artwork(data)
    assert b"Secret Camera Maker" not in result
    assert not _open(result).getexif()


def test_generated_cover_is_deterministic_and_legible() -> None:
    first = generate_cover("Research Seminar: Sensors in the Field", "Episode 3")
    assert first == generate_cover("Research Seminar: Sensors in the Field", "Episode 3")
    assert first != generate_cover("Another title")
    image = _open(first)
    assert (image.size, image.mode) == ((1400, 1400), "RGB")
    colours = {image.getpixel((x, 400)) for x in range(0, 1400, 7)}
    assert len(colours) > 2  # text was drawn on the plain field
    background = image.getpixel((5, 5))
    assert max(background) < 160  # dark enough for white text
    assert prepare_artwork(first)  # our own rules accept it


def test_generated_cover_handles_empty_and_long_titles() -> None:
    assert _open(generate_cover("")).size == (1400, 1400)
    assert _open(generate_cover("word " * 200, "sub " * 100)).size == (1400, 1400)


def _large_png(width: int, height: int) -> bytes:
    """A valid, all-black RGB PNG written row by row: huge in pixels, tiny in bytes, and made
    without ever holding the pixels in memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)  # filter byte + pixels
    compressed = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed)
            + chunk(b"IEND", b""))


def test_artwork_over_25_megapixels_is_refused_before_decoding() -> None:
    """The review's case: 8000×8000 in a quarter of a megabyte cost 757 MB to decode."""
    png = _large_png(8000, 8000)
    assert len(png) < 300_000
    with pytest.raises(InvalidArtwork) as refused:
        prepare_artwork(png)
    assert str(refused.value) == ("The artwork is 8000×8000 px (64 megapixels); artwork may "
                                  "have at most 25 megapixels, such as 5000×5000 px.")
    with pytest.raises(InvalidArtwork, match="at most 25 megapixels"):
        prepare_artwork(_large_png(5001, 5000))


def test_artwork_of_25_megapixels_is_accepted() -> None:
    result = _open(prepare_artwork(_large_png(5000, 5000)))
    assert result.size == (3000, 3000)


def test_only_a_few_images_are_decoded_at_once() -> None:
    image = _encode(Image.new("RGB", (1400, 1400), (1, 2, 3)), "PNG")
    held = [artwork.DECODING.acquire(timeout=10) for _ in range(artwork.MAX_DECODING)]
    try:
        assert all(held)
        with pytest.raises(artwork.Busy, match="busy with other images"):
            prepare_artwork(image, wait=0.05)
    finally:
        for _ in held:
            artwork.DECODING.release()
    assert _open(prepare_artwork(image, wait=0.05)).size == (1400, 1400)
