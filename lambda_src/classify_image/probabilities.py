"""The endpoint's answer: a JSON list of class probabilities, checked before it is passed on."""

from __future__ import annotations

import json
import math

from classify_errors import EndpointError

PROBABILITY_SUM_TOLERANCE = 1e-3


def parse_probabilities(
    endpoint_name: str, body: bytes, class_names: tuple[str, ...]
) -> list[float]:
    """Check the body is a JSON list of finite probabilities in [0, 1] summing to 1, one for
    each of ``class_names``."""
    try:
        decoded = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise EndpointError(
            f"endpoint {endpoint_name} returned a body that is not JSON: {body[:100]!r}"
        ) from error
    is_list_of_numbers = isinstance(decoded, list) and all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in decoded
    )
    if not is_list_of_numbers or len(decoded) != len(class_names):
        order = ", ".join(f"p_{name}" for name in class_names)
        raise EndpointError(
            f"endpoint {endpoint_name} returned {body[:100]!r}, expected a JSON list of "
            f"{len(class_names)} numbers [{order}]"
        )
    probabilities = [float(value) for value in decoded]
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities):
        raise EndpointError(
            f"endpoint {endpoint_name} returned {probabilities}, not probabilities in [0, 1]"
        )
    if abs(sum(probabilities) - 1.0) > PROBABILITY_SUM_TOLERANCE:
        raise EndpointError(
            f"endpoint {endpoint_name} returned {probabilities}, which sum to "
            f"{sum(probabilities)} instead of 1"
        )
    return probabilities
