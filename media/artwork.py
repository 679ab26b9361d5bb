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


# --- renditions for the web pages -------------------------------------------------------------

# Widths made of every cover: a card shows ~96 CSS px (1x–3x: 160, 320), a page ~240 (320, 640).
RENDITION_WIDTHS = (160, 320, 640)
# Smallest first: a browser takes the first <source> type it supports. JPEG is the fallback.
RENDITION_FORMATS = ("avif", "webp", "jpg")
_ENCODERS = {"avif": ("AVIF", {"quality": 60, "speed": 6}),
             "webp": ("WEBP", {"quality": 78, "method": 5}),
             "jpg": ("JPEG", {"quality": 82, "optimize": True, "progressive": True})}
RENDITION_TYPES = {"avif": "image/avif", "webp": "image/webp", "jpg": "image/jpeg"}


def rendition_formats() -> tuple[str, ...]:
    """The formats this Pillow can write (AVIF needs Pillow built with libavif)."""
    from PIL import features

    return tuple(f for f in RENDITION_FORMATS if f != "avif" or features.check("avif"))


def make_renditions(data: bytes, widths: tuple[int, ...] = RENDITION_WIDTHS,
                    formats: tuple[str, ...] | None = None, *, wait: float | None = None
                    ) -> dict[str, bytes]:
    """Square covers scaled down once for the web, by name ("320.webp" → bytes).

    The source is a stored cover (already checked and square), decoded once per call under the
    same decoding slots as uploads; a width larger than the source is left out.
    """
    if not DECODING.acquire(timeout=SLOT_WAIT_S if wait is None else wait):
        raise Busy("The server is busy with other images; try again in a minute.")
    try:
        image = _rgb(_square(_open(data)))
        made: dict[str, bytes] = {}
        for width in sorted(widths, reverse=True):  # each from the next larger: faster, as sharp
            if width > image.width:
                continue
            image = image.resize((width, width), Image.Resampling.LANCZOS, reducing_gap=3.0)
            for fmt in formats or rendition_formats():
                made[f"{width}.{fmt}"] = _encode(image, fmt)
        return made
    finally:
        DECODING.release()


def _encode(image: Image.Image, fmt: str) -> bytes:
    name, options = _ENCODERS[fmt]
    buffer = io.BytesIO()
    image.save(buffer, name, **options)
    return buffer.getvalue()


# --- the site's icons -------------------------------------------------------------------------


def generate_icon(title: str, size: int, *, maskable: bool = False) -> bytes:
    """A square PNG icon in the site cover's colour with the title's initial: legible at 16 px,
    where the cover's words are not. `maskable` keeps the letter inside the 80 % safe zone."""
    background = _colour_for(title)
    scale = 4 if size < 64 else 1  # draw small icons larger, then scale down: smoother edges
    side = size * scale
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    initial = next((c for c in title if c.isalnum()), "A").upper()
    font = _font(round(side * (0.5 if maskable else 0.66)))
    box = draw.textbbox((0, 0), initial, font=font)
    x = (side - (box[2] - box[0])) / 2 - box[0]
    y = (side - (box[3] - box[1])) / 2 - box[1]
    draw.text((x, y), initial, font=font, fill=(255, 255, 255))
    if scale > 1:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def generate_favicon(title: str) -> bytes:
    """favicon.ico with 16, 32 and 48 px images, for browsers that ask for /favicon.ico."""
    image = Image.open(io.BytesIO(generate_icon(title, 48)))
    buffer = io.BytesIO()
    image.save(buffer, "ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    return buffer.getvalue()


def theme_colour(title: str) -> str:
    """The site cover's background colour as #rrggbb (the manifest's and icons' colour)."""
    return "#{:02x}{:02x}{:02x}".format(*_colour_for(title))
