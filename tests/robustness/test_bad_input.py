"""Every kind of upload a real bucket sees, through the whole local workflow.

Upload under incoming/ -> EventBridge event -> execution of the synthesized state machine ->
the real handlers -> the local endpoint (real inference code). Each upload must end
classified or in a Fail state naming a typed error, with no handler crash, no state payload
over 256 KiB, and the uploaded object left exactly as it was.
"""

import base64
import io
import json

import pytest
from PIL import Image

from tests.robustness import inputs
from tests.robustness.support import (
    PAYLOAD_LIMIT_BYTES,
    TYPED_ERRORS,
    invocations_of,
    payload_sizes,
    put,
    running_workflow,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workflow(local_app):
    # THRESHOLD 0.5: every decodable image passes the filter, so "classified" is SUCCEEDED.
    with running_workflow(local_app, THRESHOLD="0.5") as running:
        yield running


def serialized_image(workflow, key):
    """serialize's result for ``key`` and the image it passed on, checked to be what its
    ``content_type`` says."""
    (serialize,) = [
        call
        for call in invocations_of(workflow, key)
        if call.error_type is None and "image_data" in (call.result or {})
    ]
    image = Image.open(io.BytesIO(base64.b64decode(serialize.result["image_data"])))
    assert serialize.result["content_type"] == f"image/{image.format.lower()}"
    return serialize.result, image


@pytest.mark.parametrize("name", list(inputs.BAD_INPUTS))
def test_each_upload_ends_in_one_named_outcome_and_stays_untouched(workflow, name):
    generate, file_name, allowed = inputs.BAD_INPUTS[name]
    body = generate()
    key = f"incoming/bad-input/{name}/{file_name}"

    answer, execution = put(workflow, body, key)
    outcome = workflow.wait(execution, key, None)
    history = workflow.history(execution)

    result = outcome.status if outcome.status == "SUCCEEDED" else outcome.error
    assert result in allowed, (outcome.status, outcome.error, outcome.cause)
    if outcome.status == "SUCCEEDED":
        assert outcome.label in ("bicycle", "motorcycle")
        assert outcome.confidence == max(outcome.inferences)
    else:
        assert outcome.status == "FAILED"
        assert outcome.error in TYPED_ERRORS
        assert json.loads(outcome.cause)["errorType"] == outcome.error
        fail_states = [e for e in history if e["type"] == "FailStateEntered"]
        assert [e["stateEnteredEventDetails"]["name"] for e in fail_states] == [outcome.error]

    # No handler crashed: every failed invocation raised a typed error.
    calls = invocations_of(workflow, key)
    assert calls, "no handler ran"
    assert [c.error_type for c in calls if c.error_type not in (None, *TYPED_ERRORS)] == []

    # No state passed more than Step Functions accepts.
    sizes = payload_sizes(history)
    assert sizes and max(sizes) < PAYLOAD_LIMIT_BYTES

    # The upload is exactly as the driver left it: same bytes, same ETag, one version.
    stored = workflow.s3.get_object(Bucket=workflow.bucket, Key=key)
    assert stored["Body"].read() == body
    assert stored["ETag"] == answer["ETag"]
    versions = workflow.s3.list_object_versions(Bucket=workflow.bucket, Prefix=key)
    assert [v["VersionId"] for v in versions.get("Versions", [])] == [answer["VersionId"]]
    assert versions.get("DeleteMarkers", []) == []


def test_exif_rotation_is_applied_before_the_model_sees_the_photo(workflow):
    key = "incoming/bad-input/exif/portrait.jpg"
    _, execution = put(workflow, inputs.exif_rotated_jpeg(), key)
    assert workflow.wait(execution, key, None).status == "SUCCEEDED"
    result, passed_on = serialized_image(workflow, key)
    assert (result["source"]["width"], result["source"]["height"]) == inputs.EXIF_SOURCE_SIZE
    width, height = passed_on.size
    assert height > width, "the portrait photo reached the model lying on its side"


def test_a_phone_photo_of_megabytes_reaches_the_model_as_a_small_jpeg(workflow):
    body = inputs.phone_photo()
    assert len(body) > 2 * 1024 * 1024
    key = "incoming/bad-input/phone/IMG_0003.JPG"
    _, execution = put(workflow, body, key)
    assert workflow.wait(execution, key, None).status == "SUCCEEDED"
    result, passed_on = serialized_image(workflow, key)
    assert result["source"] == {
        "format": "JPEG",
        "width": inputs.PHONE_SIZE[0],
        "height": inputs.PHONE_SIZE[1],
        "mode": "RGB",
        "bytes": len(body),
    }
    assert (passed_on.format, max(passed_on.size), passed_on.mode) == ("JPEG", 384, "RGB")
    assert len(json.dumps(result)) < 128 * 1024


def test_an_object_deleted_between_the_event_and_the_read_is_image_not_found(workflow):
    key = "incoming/bad-input/deleted/gone.png"
    # Hold the invocations back so that the delete lands after the event and before
    # SerializeImage reads.
    with workflow.runtime.held():
        answer, execution = put(workflow, inputs.small_png(seed=11), key)
        workflow.s3.delete_object(Bucket=workflow.bucket, Key=key)
    outcome = workflow.wait(execution, key, None)

    assert outcome.status == "FAILED" and outcome.error == "ImageNotFound", outcome.cause
    assert key in json.loads(outcome.cause)["errorMessage"]
    # The workflow deleted nothing more: the one version and the test's own delete marker.
    versions = workflow.s3.list_object_versions(Bucket=workflow.bucket, Prefix=key)
    assert [v["VersionId"] for v in versions["Versions"]] == [answer["VersionId"]]
    assert len(versions["DeleteMarkers"]) == 1
