"""Decode an uploaded image and normalize it into the small image the endpoint is sent.

A reduced image of at most LOSSLESS_MAX_SIDE px goes on as a PNG: the network sees thumbnails at
32x32, and JPEG's blocks and halved colour would change them. A larger one goes on as a JPEG of
quality JPEG_QUALITY, so that a photo keeps the 240 px its expert reads (docs/real-photos.md):
a PNG of 384 px does not fit the 256 KiB Step Functions payload, this JPEG does even for noise.

Beside the handler in the function's bundle (the asset root is on Lambda's import path).
"""

from __future__ import annotations

import io
from typing import TypedDict

from PIL import Image, ImageOps
from serialize_errors import ImageTooLarge, InvalidImage

ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # JPEG includes MPO
BACKGROUND_WHITE = (255, 255, 255)
LOSSLESS_MAX_SIDE = 64
JPEG_QUALITY = 90


class SourceImage(TypedDict):
    format: str
    width: int
    height: int
    mode: str
    bytes: int


def _to_8bit_gray(image: Image.Image) -> Image.Image:
    """Map 16/32-bit integer and float modes onto 0..255 (Pillow's convert would clip them)."""
    image = image.convert("F")
    low, high = image.getextrema()
    if low >= 0 and high <= 255:
        scaled = image
    elif low >= 0 and high <= 65535:
        scaled = image.point(lambda value: value * (255 / 65535))
    else:
        span = (high - low) or 1
        scaled = image.point(lambda value: (value - low) * (255 / span))
    return scaled.convert("L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any mode to RGB; transparent pixels become white."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode.startswith("I") or image.mode == "F":
        return _to_8bit_gray(image).convert("RGB")
    has_alpha = "A" in image.getbands() or image.mode in ("RGBa", "La")
    if has_alpha or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND_WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def encode_reduced(rgb: Image.Image) -> tuple[bytes, str]:
    """The reduced image's bytes and media type: a PNG for a thumbnail, a JPEG above."""
    buffer = io.BytesIO()
    if max(rgb.size) <= LOSSLESS_MAX_SIDE:
        rgb.save(buffer, format="PNG")
        return buffer.getvalue(), "image/png"
    rgb.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), "image/jpeg"


def normalize_image(
    data: bytes, label: str, max_side: int, max_pixels: int
) -> tuple[bytes, str, SourceImage]:
    """Decode ``data`` fully and return the RGB image of longest side <= ``max_side`` (bytes
    and media type, see ``encode_reduced``) plus a description of the source; more than
    ``max_pixels`` declared is ImageTooLarge."""
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(
            f"{label} declares more pixels than MAX_IMAGE_PIXELS={max_pixels}: {error}"
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidImage(f"{label} is not a readable image: {error}") from error
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"{label} declares {width}x{height} = {width * height} pixels, more than "
                f"MAX_IMAGE_PIXELS={max_pixels}"
            )
        source = SourceImage(
            format=image.format or "unknown",
            width=width,
            height=height,
            mode=image.mode,
            bytes=len(data),
        )
        try:
            if image.format in ("JPEG", "MPO"):
                image.draft(None, (max_side, max_side))
            image.load()
            frame = ImageOps.exif_transpose(image)
            rgb = to_rgb(frame)
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            body, media_type = encode_reduced(rgb)
        except Image.DecompressionBombError as error:
            raise ImageTooLarge(f"{label}: {error}") from error
        except (OSError, SyntaxError, ValueError, EOFError, KeyError, IndexError) as error:
            raise InvalidImage(f"{label} cannot be decoded: {error}") from error
    return body, media_type, source
