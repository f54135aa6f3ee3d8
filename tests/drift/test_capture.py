"""Capture parsing on the real SageMaker samples (every line of every file) and on made-up
malformed lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import capture_records
import drift_errors
import pytest

from tests.drift.conftest import CAPTURE_SAMPLES, CLASS_NAMES, capture_line, png_bytes

# Records per file, counted by hand from the samples' lines.
MULTI_RECORD_FILES = {
    "endpoint-a": {
        "20-31-318-522f1249-69d4-48f8-9199-28c2ac8e3eed.jsonl": 2,
        "23-18-518-cd6d3c99-6125-4021-8d35-31d48c52de30.jsonl": 2,
        "25-04-144-d1c957a6-6e5f-4b38-8702-196bc4fe950b.jsonl": 3,
        "26-33-828-11b753a5-7e77-4e97-9980-ecc3af7d07fd.jsonl": 2,
        "30-13-796-56c965db-a926-4cba-8ebf-8129b3adb606.jsonl": 3,
        "31-32-188-951cb411-29f1-43f8-9a4d-cf6b30b41704.jsonl": 3,
        "36-38-101-fedf1337-a016-4c2e-b811-ea18372831f7.jsonl": 2,
    },
    "endpoint-b": {"31-21-327-0495c1d5-4a4b-4b8a-99fd-44316fff7fcf.jsonl": 2},
}
TOTALS = {"endpoint-a": (12, 22), "endpoint-b": (6, 7)}  # (files, records)


def _read_endpoint(name: str) -> dict[str, capture_records.CaptureBatch]:
    return {
        path.name: capture_records.parse_capture_text(path.read_text(), path.name, CLASS_NAMES)
        for path in sorted((CAPTURE_SAMPLES / name).glob("*.jsonl"))
    }


@pytest.mark.parametrize("endpoint", sorted(TOTALS))
def test_every_record_of_every_real_file_is_read(endpoint):
    batches = _read_endpoint(endpoint)
    files, records = TOTALS[endpoint]
    assert len(batches) == files
    assert sum(len(batch.records) for batch in batches.values()) == records
    assert all(not batch.skipped for batch in batches.values())
    multi = {name: len(batch.records) for name, batch in batches.items() if len(batch.records) > 1}
    assert multi == MULTI_RECORD_FILES[endpoint]


@pytest.mark.parametrize("endpoint", sorted(TOTALS))
def test_real_records_give_figures_matching_their_raw_lines(endpoint):
    for path in sorted((CAPTURE_SAMPLES / endpoint).glob("*.jsonl")):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        batch = capture_records.parse_capture_text(path.read_text(), path.name, CLASS_NAMES)
        for line, record in zip(lines, batch.records, strict=True):
            raw = json.loads(line)
            probabilities = json.loads(raw["captureData"]["endpointOutput"]["data"])
            assert record.probabilities == tuple(probabilities)
            assert record.top_confidence == max(probabilities)
            expected = "bicycle" if probabilities[0] >= probabilities[1] else "motorcycle"
            assert CLASS_NAMES[record.predicted_index] == expected
            assert record.inference_time == datetime.fromisoformat(
                raw["eventMetadata"]["inferenceTime"].replace("Z", "+00:00")
            )
            assert (record.image_format, record.width, record.height) == ("PNG", 32, 32)
            assert 0 < record.brightness < 255


def test_known_sample_record_figures():
    path = CAPTURE_SAMPLES / "endpoint-b" / "31-21-327-0495c1d5-4a4b-4b8a-99fd-44316fff7fcf.jsonl"
    batch = capture_records.parse_capture_text(path.read_text(), path.name, CLASS_NAMES)
    first, second = batch.records
    assert first.probabilities == (0.9155245423316956, 0.08447543531656265)
    assert batch.class_names[first.predicted_index] == "bicycle"
    assert second.inference_time == datetime(2023, 3, 4, 18, 32, 17, tzinfo=UTC)


def test_blank_lines_are_ignored_and_malformed_lines_counted_not_fatal():
    when = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
    good = capture_line((0.9, 0.1), png_bytes(100, 1), when)
    base64_output = capture_line((0.2, 0.8), png_bytes(100, 2), when, output_encoding="BASE64")
    three_classes = good.replace("[0.9, 0.1]", "[0.5, 0.3, 0.2]")
    text = "\n".join(
        [good, "", "   ", "not json", '{"captureData": {}}', three_classes, base64_output, ""]
    )
    batch = capture_records.parse_capture_text(text, "made-up.jsonl", CLASS_NAMES)
    assert [record.probabilities for record in batch.records] == [(0.9, 0.1), (0.2, 0.8)]
    assert [(item["line"], item["source"]) for item in batch.skipped] == [
        (4, "made-up.jsonl"),
        (5, "made-up.jsonl"),
        (6, "made-up.jsonl"),
    ]
    assert "endpointOutput" in batch.skipped[1]["error"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["captureData"]["endpointOutput"].update(encoding="XML"), "encoding"),
        (lambda r: r["captureData"]["endpointOutput"].update(data="[1.5, -0.5]"), "probabilities"),
        (lambda r: r["captureData"]["endpointOutput"].update(data="[0.5]"), "probabilities"),
        (lambda r: r["captureData"]["endpointInput"].update(data="%%%"), "BASE64"),
        (lambda r: r["eventMetadata"].update(inferenceTime="yesterday"), "ISO 8601"),
    ],
)
def test_each_kind_of_malformed_record_raises_the_typed_error(mutate, message):
    record = json.loads(
        capture_line((0.9, 0.1), png_bytes(100, 1), datetime(2025, 1, 31, tzinfo=UTC))
    )
    mutate(record)
    with pytest.raises(drift_errors.MalformedCaptureRecord, match=message):
        capture_records.parse_capture_record(json.dumps(record), CLASS_NAMES)


def test_an_undecodable_input_image_still_counts_for_the_output():
    record = json.loads(
        capture_line((0.3, 0.7), b"not an image", datetime(2025, 1, 31, tzinfo=UTC))
    )
    parsed = capture_records.parse_capture_record(json.dumps(record), CLASS_NAMES)
    assert CLASS_NAMES[parsed.predicted_index] == "motorcycle"
    assert parsed.brightness is None and parsed.image_format is None


def test_brightness_is_the_mean_rgb_value():
    black_and_white = png_bytes(0, 1)  # noise clipped at 0: mean well below 20
    assert capture_records.image_figures(black_and_white)[3] < 20
    assert capture_records.image_figures(png_bytes(200, 1))[3] == pytest.approx(200, abs=2)
