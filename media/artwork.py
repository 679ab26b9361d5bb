"""Podcast artwork: check and normalise uploads, or draw a plain cover. The only Pillow user."""

from __future__ import annotations

import colorsys
import hashlib
import io
import textwrap
import threading
import warnings
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from media.errors import InvalidArtwork, MediaError

MIN_SIDE = 1400  # Apple Podcasts and most directories require at least 1400×1400
MAX_SIDE = 3000
# Room for a 5000×5000 photo to crop from; larger is a decompression bomb, not a cover. Decoding
# costs ~4 bytes a pixel and the crop and scale copy it: ~250 MB at this size.
MAX_PIXELS = 25_000_000
# Images decoded at once in this process (each may take the memory above); more wait for a slot.
MAX_DECODING = 2
DECODING = threading.BoundedSemaphore(MAX_DECODING)
SLOT_WAIT_S = 60.0
JPEG_QUALITY = 88
_ACCEPTED = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


class Busy(MediaError):
    """Every decoding slot stayed taken: the server is busy with other images."""


def prepare_artwork(data: bytes, *, wait: float | None = None) -> bytes:
    """A square RGB JPEG of 1400–3000 px without EXIF, from a JPEG, PNG or WebP upload.

    At most `MAX_DECODING` run at once; one that finds no slot within `wait` seconds (default
    `SLOT_WAIT_S`) is Busy.
    """
    if not DECODING.acquire(timeout=SLOT_WAIT_S if wait is None else wait):
        raise Busy("The server is busy with other images; try again in a minute.")
    try:
        return _prepare(data)
    finally:
        DECODING.release()


def _prepare(data: bytes) -> bytes:
    image = _open(data)
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise InvalidArtwork(
            f"The artwork is {width}×{height} px; podcast apps need at least {MIN_SIDE}×{MIN_SIDE}."
        )
    image = _square(ImageOps.exif_transpose(image) or image)
    if image.width > MAX_SIDE:
        image = image.resize((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return _jpeg(_rgb(image))


def _open(data: bytes) -> Image.Image:
    """Decode under a local pixel limit, turning Pillow's bomb warning into a refusal."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(_ACCEPTED))
            _check_size(image)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidArtwork("The artwork is far too large to be an image we can use.") from None
    except InvalidArtwork:
        raise
    except (OSError, SyntaxError, ValueError):
        raise InvalidArtwork("The artwork must be a JPEG, PNG or WebP image.") from None
    return image


def _check_size(image: Image.Image) -> None:
    """Our own limit, checked on the header before decoding (`open` reads no pixels),
    whatever the global Image.MAX_IMAGE_PIXELS is."""
    if image.width * image.height > MAX_PIXELS:
        side = int(MAX_PIXELS ** 0.5)
        raise InvalidArtwork(
            f"The artwork is {image.width}×{image.height} px "
            f"({image.width * image.height / 1e6:.0f} megapixels); artwork may have at most "
            f"{MAX_PIXELS / 1e6:.0f} megapixels, such as {side}×{side} px."
        )


def _square(image: Image.Image) -> Image.Image:
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


def _rgb(image: Image.Image) -> Image.Image:
    """Transparent parts become white, as they look on most podcast apps' light themes."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")  # CMYK, L, I;16 …; Pillow handles Adobe's inverted CMYK


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)  # no exif= → none written
    return buffer.getvalue()


# --- generated covers -----------------------------------------------------------------------


def generate_cover(title: str, subtitle: str = "") -> bytes:
    """A plain 1400×1400 cover: the title on a calm colour derived from it (same input, same
    bytes), for episodes and series uploaded without artwork."""
    background = _colour_for(title)
    image = Image.new("RGB", (MIN_SIDE, MIN_SIDE), background)
    draw = ImageDraw.Draw(image)
    y = _draw_lines(draw, textwrap.wrap(title or "Untitled", 16)[:6], 120, 300, (255, 255, 255))
    if subtitle:
        _draw_lines(draw, textwrap.wrap(subtitle, 30)[:4], 60, y + 80, (235, 235, 235))
    return _jpeg(image)


def _colour_for(title: str) -> tuple[int, int, int]:
    """A muted, dark colour so white text always has enough contrast."""
    hue = int.from_bytes(hashlib.sha256(title.encode("utf-8")).digest()[:2], "big") / 65535
    red, green, blue = colorsys.hls_to_rgb(hue, 0.30, 0.45)
    return round(red * 255), round(green * 255), round(blue * 255)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if _FONT.exists():
        return ImageFont.truetype(str(_FONT), size)
    return ImageFont.load_default(size=size)


def _draw_lines(
    draw: ImageDraw.ImageDraw, lines: list[str], size: int, top: int, fill: tuple[int, int, int]
) -> int:
    """Centre each line horizontally; returns the y below the last line."""
    font = _font(size)
    y = top
    for line in lines:
        width = draw.textlength(line, font=font)
        draw.text(((MIN_SIDE - width) / 2, y), line, font=font, fill=fill)
        y += round(size * 1.25)
    return y
