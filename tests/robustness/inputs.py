"""Every kind of object an upload bucket sees, generated in memory (nothing is committed)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

PHONE_SIZE = (4000, 3000)  # 12 megapixels


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    """A PNG written by hand: any declared size, any bit depth, any (even too little) data."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows, 9))
        + _png_chunk(b"IEND", b"")
    )


def _noise(size: tuple[int, int], seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = len(mode)
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(array.squeeze(), mode)


def _encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def zero_bytes() -> bytes:
    return b""


def text_named_png() -> bytes:
    return b"Hello! This is a note, not a picture.\n" * 20


def truncated_png() -> bytes:
    whole = _encode(_noise((96, 96), seed=1), "PNG")
    return whole[: len(whole) // 2]


def truncated_jpeg() -> bytes:
    whole = _encode(_noise((256, 192), seed=2), "JPEG", quality=90)
    return whole[: len(whole) // 2]


def bomb_beyond_pillow_limit() -> bytes:
    """Declares 100,000 x 100,000 pixels (10 gigapixels) in a file of a few hundred bytes."""
    return raw_png(100_000, 100_000, 1, 0, b"\x00" * 4096)


def bomb_beyond_serializer_limit() -> bytes:
    """Declares 8,000 x 6,000 = 48 Mpx: under Pillow's own bomb limit, over MAX_IMAGE_PIXELS."""
    return raw_png(8_000, 6_000, 1, 0, b"\x00" * 4096)


def animated_gif() -> bytes:
    frames = [Image.new("P", (80, 60), color) for color in (1, 60, 200)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def webp() -> bytes:
    return _encode(_noise((120, 90), seed=3), "WEBP", quality=80)


def tiff() -> bytes:
    return _encode(_noise((100, 80), seed=4), "TIFF", compression="tiff_deflate")


def cmyk_jpeg() -> bytes:
    return _encode(_noise((120, 90), seed=5, mode="CMYK"), "JPEG", quality=90)


def png_16bit_gray() -> bytes:
    ramp = np.linspace(0, 65535, 64 * 48, dtype=np.uint16).reshape(48, 64)
    return _encode(Image.fromarray(ramp), "PNG")


def png_16bit_rgb() -> bytes:
    """16 bits per channel RGB (colour type 2), which Pillow cannot write itself."""
    width, height = 40, 30
    rng = np.random.default_rng(6)
    pixels = rng.integers(0, 65536, (height, width * 3), dtype=np.uint16).astype(">u2")
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)
    return raw_png(width, height, 16, 2, rows)


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (64, 64), 0)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    image.paste(1, (16, 16, 48, 48))
    return _encode(image, "PNG", transparency=0)


def grayscale_jpeg() -> bytes:
    return _encode(_noise((96, 64), seed=7, mode="L"), "JPEG", quality=90)


EXIF_SOURCE_SIZE = (200, 100)


def exif_rotated_jpeg() -> bytes:
    """Stored landscape 200 x 100, EXIF Orientation 6: the photo is portrait when shown."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(_noise(EXIF_SOURCE_SIZE, seed=8), "JPEG", quality=90, exif=exif)


def phone_photo() -> bytes:
    """A 12-megapixel JPEG of several MB, as a phone takes it (noise keeps it large)."""
    rng = np.random.default_rng(9)
    small = rng.integers(0, 256, (PHONE_SIZE[1] // 2, PHONE_SIZE[0] // 2, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(PHONE_SIZE, Image.Resampling.NEAREST)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = 1
    return _encode(image, "JPEG", quality=92, exif=exif)


def pdf() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def heic_header() -> bytes:
    """The start of an iPhone HEIC photo: an ISO-BMFF box Pillow has no decoder for."""
    return struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + b"\x00" * 512


def small_png(seed: int = 0, size: tuple[int, int] = (48, 40)) -> bytes:
    return _encode(_noise(size, seed=seed), "PNG")


# name -> (generator, the key's file name, the outcomes allowed)
CLASSIFIED = {"SUCCEEDED"}
BAD_INPUTS: dict[str, tuple[Callable[[], bytes], str, set[str]]] = {
    "zero-byte": (zero_bytes, "empty.png", {"InvalidImage"}),
    "text-named-png": (text_named_png, "note.png", {"InvalidImage"}),
    "truncated-png": (truncated_png, "cut.png", {"InvalidImage"}),
    "truncated-jpeg": (truncated_jpeg, "cut.jpg", {"InvalidImage"}),
    "bomb-10-gigapixels": (bomb_beyond_pillow_limit, "bomb.png", {"ImageTooLarge"}),
    "bomb-48-megapixels": (bomb_beyond_serializer_limit, "bomb48.png", {"ImageTooLarge"}),
    "animated-gif": (animated_gif, "moving.gif", CLASSIFIED),
    "webp": (webp, "photo.webp", CLASSIFIED),
    "tiff": (tiff, "scan.tiff", CLASSIFIED),
    "cmyk-jpeg": (cmyk_jpeg, "print.jpg", CLASSIFIED),
    "png-16-bit-gray": (png_16bit_gray, "deep-gray.png", CLASSIFIED),
    "png-16-bit-rgb": (png_16bit_rgb, "deep-rgb.png", CLASSIFIED),
    "palette-png-transparency": (palette_png_with_transparency, "icon.png", CLASSIFIED),
    "grayscale-jpeg": (grayscale_jpeg, "gray.jpg", CLASSIFIED),
    "exif-rotated-jpeg": (exif_rotated_jpeg, "rotated.jpg", CLASSIFIED),
    "phone-photo-12mp": (phone_photo, "IMG_0001.JPG", CLASSIFIED),
    "pdf": (pdf, "invoice.pdf", {"InvalidImage"}),
    "heic": (heic_header, "IMG_0002.HEIC", {"InvalidImage"}),
}
