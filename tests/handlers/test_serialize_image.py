"""serialize_image: S3 object in, bounded RGB JPEG or thumbnail PNG (base64) out, typed errors
for bad input."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import numpy as np
import object_reader
import pytest
import serialize_errors
import serialize_settings
from PIL import Image

import lambda_src.serialize_image.handler as serialize

BUCKET = "scones-images"
STEP_FUNCTIONS_PAYLOAD_LIMIT = 256 * 1024


def put(s3, key: str, data: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)


def run(lambda_context, key: str) -> dict:
    return serialize.lambda_handler({"s3_bucket": BUCKET, "s3_key": key}, lambda_context)


def output_image(result: dict) -> Image.Image:
    """The image passed on, checked to be what ``content_type`` says: a PNG for a thumbnail of
    at most 64 px, a JPEG above."""
    data = base64.b64decode(result["image_data"], validate=True)
    image = Image.open(io.BytesIO(data))
    image.load()
    expected = "PNG" if max(image.size) <= 64 else "JPEG"
    assert (image.format, result["content_type"]) == (expected, f"image/{expected.lower()}")
    return image


def eventbridge_event(key: str, size: int = 1) -> dict:
    return {
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": key, "size": size, "etag": "0", "sequencer": "1"},
            "reason": "PutObject",
        },
    }


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height and whose data is not a real image."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        checksum = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def assert_close(actual, expected, tolerance: int = 12) -> None:
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)), (
        actual,
        expected,
    )


# Happy paths


def test_photo_becomes_bounded_rgb_jpeg_with_source_description(
    s3, lambda_context, encode_image, emitted_metrics
):
    data = encode_image(Image.new("RGB", (640, 480), (200, 30, 40)), "JPEG", quality=90)
    put(s3, "incoming/bike.jpg", data)

    result = run(lambda_context, "incoming/bike.jpg")

    assert set(result) == {"s3_bucket", "s3_key", "image_data", "content_type", "source"}
    assert (result["s3_bucket"], result["s3_key"]) == (BUCKET, "incoming/bike.jpg")
    assert result["content_type"] == "image/jpeg"
    assert result["source"] == {
        "format": "JPEG",
        "width": 640,
        "height": 480,
        "mode": "RGB",
        "bytes": len(data),
    }
    image = output_image(result)
    assert (image.mode, image.size) == ("RGB", (384, 288))
    assert_close(image.getpixel((192, 144)), (200, 30, 40))
    metrics = emitted_metrics()
    assert metrics["ImagesSerialized"] == 1
    assert metrics["SourceImageBytes"] == len(data)


def test_a_thumbnail_goes_on_losslessly_as_png_and_a_larger_image_as_jpeg(
    s3, lambda_context, encode_image, noise_image
):
    thumbnail = noise_image(64, 48, seed=3)
    put(s3, "incoming/thumbnail.png", encode_image(thumbnail, "PNG"))
    put(s3, "incoming/larger.png", encode_image(noise_image(65, 48, seed=3), "PNG"))

    passed_on = output_image(run(lambda_context, "incoming/thumbnail.png"))
    assert passed_on.format == "PNG"
    assert np.array_equal(np.asarray(passed_on), np.asarray(thumbnail.convert("RGB")))
    assert output_image(run(lambda_context, "incoming/larger.png")).format == "JPEG"


def test_small_image_is_never_upsized(s3, lambda_context, encode_image):
    put(s3, "incoming/small.png", encode_image(Image.new("RGB", (20, 10), "white"), "PNG"))

    assert output_image(run(lambda_context, "incoming/small.png")).size == (20, 10)


def test_output_side_comes_from_the_environment(s3, lambda_context, encode_image, monkeypatch):
    put(s3, "incoming/wide.png", encode_image(Image.new("RGB", (400, 100), "white"), "PNG"))

    monkeypatch.setenv("OUTPUT_MAX_SIDE", "32")
    assert output_image(run(lambda_context, "incoming/wide.png")).size == (32, 8)
    monkeypatch.setenv("OUTPUT_MAX_SIDE", "64")
    serialize_settings.get_settings.cache_clear()  # a new execution environment reads it again
    assert output_image(run(lambda_context, "incoming/wide.png")).size == (64, 16)


@pytest.mark.parametrize("max_side", ["128", "384"])
def test_large_noisy_photo_gives_a_bounded_payload(
    s3, lambda_context, encode_image, noise_image, monkeypatch, max_side
):
    monkeypatch.setenv("OUTPUT_MAX_SIDE", max_side)
    data = encode_image(noise_image(4000, 3000), "JPEG", quality=75)
    put(s3, "incoming/huge-photo.jpg", data)

    result = run(lambda_context, "incoming/huge-photo.jpg")

    side = int(max_side)
    assert output_image(result).size == (side, side * 3 // 4)
    assert result["source"]["width"] == 4000 and result["source"]["bytes"] == len(data)
    payload = len(json.dumps(result).encode())
    assert payload < STEP_FUNCTIONS_PAYLOAD_LIMIT // 2, payload


def test_noise_at_the_largest_side_still_fits_the_step_functions_payload(
    s3, lambda_context, encode_image, noise_image
):
    """Noise is the image JPEG compresses worst; at OUTPUT_MAX_SIDE's cap it is not reduced."""
    put(s3, "incoming/noise.png", encode_image(noise_image(384, 384), "PNG"))

    result = run(lambda_context, "incoming/noise.png")

    assert output_image(result).size == (384, 384)
    payload = len(json.dumps(result).encode())
    assert payload < STEP_FUNCTIONS_PAYLOAD_LIMIT * 3 // 4, payload


def test_exif_orientation_is_applied(s3, lambda_context, encode_image):
    stored = Image.new("RGB", (60, 20), (255, 0, 0))
    stored.paste((0, 0, 255), (30, 0, 60, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the viewer rotates the stored pixels 90 degrees clockwise.
    put(s3, "incoming/rotated.jpg", encode_image(stored, "JPEG", exif=exif, quality=95))

    result = run(lambda_context, "incoming/rotated.jpg")

    image = output_image(result)
    assert image.size == (20, 60)
    assert_close(image.getpixel((10, 5)), (255, 0, 0), tolerance=40)
    assert_close(image.getpixel((10, 55)), (0, 0, 255), tolerance=40)
    assert (result["source"]["width"], result["source"]["height"]) == (60, 20)


def test_cmyk_jpeg_is_converted_to_rgb(s3, lambda_context, encode_image):
    cmyk_red = Image.new("CMYK", (50, 50), (0, 255, 255, 0))
    put(s3, "incoming/cmyk.jpg", encode_image(cmyk_red, "JPEG", quality=95))

    result = run(lambda_context, "incoming/cmyk.jpg")

    assert result["source"]["mode"] == "CMYK"
    assert_close(output_image(result).getpixel((25, 25)), (255, 0, 0), tolerance=20)


def test_16_bit_png_is_scaled_not_clipped(s3, lambda_context, encode_image):
    mid_gray = Image.fromarray(np.full((40, 40), 32768, dtype=np.uint16))
    put(s3, "incoming/16bit.png", encode_image(mid_gray, "PNG"))

    result = run(lambda_context, "incoming/16bit.png")

    assert result["source"]["mode"].startswith("I")
    assert_close(output_image(result).getpixel((20, 20)), (128, 128, 128), tolerance=2)


def test_palette_png_transparency_becomes_white(s3, lambda_context, encode_image):
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.paste(1, (20, 0, 40, 40))
    put(s3, "incoming/palette.png", encode_image(image, "PNG", transparency=0))

    result = run(lambda_context, "incoming/palette.png")

    converted = output_image(result)
    assert result["source"]["mode"] == "P"
    assert converted.getpixel((5, 20)) == (255, 255, 255)
    assert converted.getpixel((35, 20)) == (255, 0, 0)


def test_rgba_is_composited_onto_white(s3, lambda_context, encode_image):
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    image.paste((0, 0, 0, 128), (20, 0, 40, 40))
    put(s3, "incoming/alpha.png", encode_image(image, "PNG"))

    converted = output_image(run(lambda_context, "incoming/alpha.png"))

    assert converted.getpixel((5, 20)) == (255, 255, 255)
    assert_close(converted.getpixel((35, 20)), (127, 127, 127), tolerance=2)


@pytest.mark.parametrize(
    ("mode", "color", "expected"),
    [
        ("L", 90, (90, 90, 90)),
        ("LA", (90, 0), (255, 255, 255)),
        ("1", 1, (255, 255, 255)),
    ],
)
def test_other_modes_become_rgb(s3, lambda_context, encode_image, mode, color, expected):
    put(s3, f"incoming/{mode}.png", encode_image(Image.new(mode, (30, 30), color), "PNG"))

    result = run(lambda_context, f"incoming/{mode}.png")

    assert result["source"]["mode"] == mode
    converted = output_image(result)
    assert converted.mode == "RGB"
    assert converted.getpixel((15, 15)) == expected


def test_animated_gif_keeps_the_first_frame(s3, lambda_context, encode_image):
    frames = [Image.new("RGB", (30, 30), color) for color in ("red", "lime", "blue")]
    put(
        s3,
        "incoming/anim.gif",
        encode_image(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100),
    )

    result = run(lambda_context, "incoming/anim.gif")

    assert result["source"]["format"] == "GIF"
    assert output_image(result).getpixel((15, 15)) == (255, 0, 0)


# EventBridge events


def test_eventbridge_event_key_is_the_stored_key_not_url_decoded(s3, lambda_context, encode_image):
    """S3's EventBridge event carries the key as stored: "a+b" is not "a b", "%41" not "A"."""
    for key, width in (("incoming/a b.png", 8), ("incoming/a+b.png", 16), ("incoming/A.png", 24)):
        put(s3, key, encode_image(Image.new("RGB", (width, 8)), "PNG"))
    put(s3, "incoming/%41.png", encode_image(Image.new("RGB", (32, 8)), "PNG"))

    results = {
        key: serialize.lambda_handler(eventbridge_event(key), lambda_context)
        for key in ("incoming/a+b.png", "incoming/a b.png", "incoming/%41.png")
    }

    assert {key: (r["s3_key"], r["source"]["width"]) for key, r in results.items()} == {
        "incoming/a+b.png": ("incoming/a+b.png", 16),
        "incoming/a b.png": ("incoming/a b.png", 8),
        "incoming/%41.png": ("incoming/%41.png", 32),
    }


def test_eventbridge_event_with_raw_key(s3, lambda_context, encode_image):
    """'+', ':', '#', '%' and non-ASCII letters survive as they are."""
    key = "incoming/c++ bike: #1 100% Ålesund é.png"
    put(s3, key, encode_image(Image.new("RGB", (8, 8)), "PNG"))

    result = serialize.lambda_handler(eventbridge_event(key), lambda_context)

    assert result["s3_key"] == key


# Versions


@pytest.fixture
def versioned(s3):
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def captured_events(s3):
    """The events list the local mode's S3 fills for creations in ``BUCKET``, and its hook."""
    from emulator.events import S3EventSource, s3_object_created_hook

    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events: list[dict] = []
    source = S3EventSource("us-east-1", "123456789012")
    return events, s3_object_created_hook(
        lambda *created: events.append(source.object_created(*created))
    )


def test_event_of_an_overwritten_object_reads_the_version_it_names(
    versioned, lambda_context, encode_image
):
    events, hook = captured_events(versioned)
    with hook:
        put(versioned, "incoming/bike.png", encode_image(Image.new("RGB", (8, 8), "red"), "PNG"))
        put(versioned, "incoming/bike.png", encode_image(Image.new("RGB", (16, 8), "blue"), "PNG"))
    first, second = events
    assert first["detail"]["object"]["version-id"] != second["detail"]["object"]["version-id"]

    result = serialize.lambda_handler(first, lambda_context)

    assert result["source"]["width"] == 8
    assert output_image(result).getpixel((0, 0)) == (255, 0, 0)
    assert serialize.lambda_handler(second, lambda_context)["source"]["width"] == 16


@pytest.mark.parametrize("delete", ["the version", "the object"])
def test_event_of_a_since_deleted_object_is_image_not_found(
    versioned, lambda_context, encode_image, delete
):
    """Deleting the version, or the object (a delete marker), after the event: not classified."""
    events, hook = captured_events(versioned)
    with hook:
        put(versioned, "incoming/gone.png", encode_image(Image.new("RGB", (8, 8)), "PNG"))
        put(versioned, "incoming/gone.png", encode_image(Image.new("RGB", (16, 8)), "PNG"))
    version = events[0]["detail"]["object"]["version-id"]
    if delete == "the version":
        versioned.delete_object(Bucket=BUCKET, Key="incoming/gone.png", VersionId=version)
    else:
        versioned.delete_object(Bucket=BUCKET, Key="incoming/gone.png")

    with pytest.raises(serialize_errors.ImageNotFound) as raised:
        serialize.lambda_handler(events[0], lambda_context)

    assert str(raised.value) == (
        f"s3://{BUCKET}/incoming/gone.png (version {version}) no longer exists: "
        "it was deleted after the event"
    )


def test_version_deleted_between_head_and_get_is_image_not_found(
    versioned, lambda_context, encode_image
):
    events, hook = captured_events(versioned)
    with hook:
        put(versioned, "incoming/racy.png", encode_image(Image.new("RGB", (8, 8)), "PNG"))
    version = events[0]["detail"]["object"]["version-id"]

    def delete_first(**_):
        versioned.delete_object(Bucket=BUCKET, Key="incoming/racy.png", VersionId=version)

    object_reader.s3_client().meta.events.register("before-call.s3.GetObject", delete_first)

    with pytest.raises(serialize_errors.ImageNotFound, match=f"version {version}"):
        serialize.lambda_handler(events[0], lambda_context)


# Read-only


def test_object_is_unchanged_and_only_read(s3, lambda_context, encode_image):
    data = encode_image(Image.new("RGB", (300, 200), "navy"), "JPEG")
    put(s3, "incoming/keep.jpg", data)
    before = s3.head_object(Bucket=BUCKET, Key="incoming/keep.jpg")
    operations: list[str] = []
    object_reader.s3_client().meta.events.register(
        "before-call.s3", lambda model, **_: operations.append(model.name)
    )

    run(lambda_context, "incoming/keep.jpg")

    after = s3.head_object(Bucket=BUCKET, Key="incoming/keep.jpg")
    assert s3.get_object(Bucket=BUCKET, Key="incoming/keep.jpg")["Body"].read() == data
    for field in ("ETag", "LastModified", "ContentLength", "Metadata"):
        assert after[field] == before[field]
    assert operations == ["HeadObject", "GetObject"]


# Errors


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"s3_bucket": BUCKET},
        {"s3_key": "incoming/x.png"},
        {"s3_bucket": "", "s3_key": "incoming/x.png"},
        {"s3_bucket": BUCKET, "s3_key": 7},
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}},
        ["not", "an", "object"],
    ],
)
def test_event_without_bucket_or_key_is_invalid_input(s3, lambda_context, event):
    with pytest.raises(serialize_errors.InvalidInput):
        serialize.lambda_handler(event, lambda_context)


def test_missing_object_is_image_not_found(s3, lambda_context):
    with pytest.raises(serialize_errors.ImageNotFound, match="incoming/absent.png"):
        run(lambda_context, "incoming/absent.png")


def test_missing_bucket_is_image_not_found(s3, lambda_context):
    with pytest.raises(serialize_errors.ImageNotFound):
        serialize.lambda_handler(
            {"s3_bucket": "no-such-bucket", "s3_key": "incoming/x.png"}, lambda_context
        )


def test_event_for_a_deleted_object_is_image_not_found(s3, lambda_context):
    with pytest.raises(serialize_errors.ImageNotFound):
        serialize.lambda_handler(eventbridge_event("incoming/gone.png"), lambda_context)


def test_object_deleted_between_head_and_get_is_image_not_found(s3, lambda_context, encode_image):
    put(s3, "incoming/racy.png", encode_image(Image.new("RGB", (8, 8)), "PNG"))

    def delete_first(**_):
        s3.delete_object(Bucket=BUCKET, Key="incoming/racy.png")

    object_reader.s3_client().meta.events.register("before-call.s3.GetObject", delete_first)

    with pytest.raises(serialize_errors.ImageNotFound, match="no longer exists"):
        run(lambda_context, "incoming/racy.png")


def test_empty_object_is_invalid_image(s3, lambda_context):
    put(s3, "incoming/empty.png", b"")

    with pytest.raises(serialize_errors.InvalidImage, match="empty"):
        run(lambda_context, "incoming/empty.png")


def test_text_named_png_is_invalid_image(s3, lambda_context):
    put(s3, "incoming/notes.png", b"this is a shopping list, not a picture\n" * 10)

    with pytest.raises(serialize_errors.InvalidImage):
        run(lambda_context, "incoming/notes.png")


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_truncated_image_is_invalid_image(
    s3, lambda_context, encode_image, noise_image, image_format
):
    data = encode_image(noise_image(256, 256), image_format)
    put(s3, "incoming/truncated", data[: len(data) // 2])

    with pytest.raises(serialize_errors.InvalidImage):
        run(lambda_context, "incoming/truncated")


def test_too_many_bytes_is_rejected_before_reading(
    s3, lambda_context, encode_image, noise_image, monkeypatch
):
    data = encode_image(noise_image(64, 64), "PNG")
    put(s3, "incoming/big.png", data)
    monkeypatch.setenv("MAX_OBJECT_BYTES", str(len(data) - 1))
    operations: list[str] = []
    object_reader.s3_client().meta.events.register(
        "before-call.s3", lambda model, **_: operations.append(model.name)
    )

    with pytest.raises(serialize_errors.ImageTooLarge, match="MAX_OBJECT_BYTES"):
        run(lambda_context, "incoming/big.png")
    assert operations == ["HeadObject"]


@pytest.mark.parametrize("side", [8_000, 100_000])
def test_decompression_bomb_is_rejected_before_decoding(s3, lambda_context, side):
    """A few hundred bytes declaring side x side pixels (above the limit, and for 100000 also
    above Pillow's own bomb limit): refused from the header alone, since decoding the fake
    data would fail with InvalidImage instead."""
    bomb = png_with_declared_size(side, side)
    assert len(bomb) < 200
    put(s3, "incoming/bomb.png", bomb)

    with pytest.raises(serialize_errors.ImageTooLarge, match="MAX_IMAGE_PIXELS=40000000"):
        run(lambda_context, "incoming/bomb.png")


def test_pixel_limit_comes_from_the_environment(s3, lambda_context, encode_image, monkeypatch):
    put(s3, "incoming/200x200.png", encode_image(Image.new("RGB", (200, 200)), "PNG"))
    monkeypatch.setenv("MAX_IMAGE_PIXELS", "39999")

    with pytest.raises(serialize_errors.ImageTooLarge, match="MAX_IMAGE_PIXELS=39999"):
        run(lambda_context, "incoming/200x200.png")

    monkeypatch.setenv("MAX_IMAGE_PIXELS", "40000")
    serialize_settings.get_settings.cache_clear()  # a new execution environment reads it again
    assert output_image(run(lambda_context, "incoming/200x200.png")).size == (200, 200)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OUTPUT_MAX_SIDE", "0"),
        ("OUTPUT_MAX_SIDE", "385"),
        ("MAX_OBJECT_BYTES", "twenty"),
        ("MAX_IMAGE_PIXELS", "-1"),
    ],
)
def test_invalid_configuration_names_the_variable(s3, lambda_context, monkeypatch, name, value):
    monkeypatch.setenv(name, value)

    with pytest.raises(serialize_errors.ConfigurationError, match=name):
        run(lambda_context, "incoming/any.png")
