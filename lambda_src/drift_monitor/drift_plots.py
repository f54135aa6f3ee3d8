"""The report's two PNG plots, drawn with matplotlib (imported on first use: seconds).

``confidence.png``: the top-class confidence and brightness histograms of the window against
the baseline's, with each feature's D and verdict. ``timeline.png``: the share of the first
class (bicycle) and the low-confidence rate over the window's time bins, the baseline's as
dashed lines, the records per bin as bars.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from baseline_file import baseline_samples
from capture_records import CapturedInference
from drift_report import feature_samples, verdict_line

CONFIDENCE_PLOT = "confidence.png"
TIMELINE_PLOT = "timeline.png"
PANELS = (
    ("top_confidence", "top-class probability", (0.5, 1.0)),
    ("brightness", "mean pixel value (0-255)", (0.0, 255.0)),
)


def render_plots(
    report: dict[str, Any], records: Sequence[CapturedInference], baseline: dict[str, Any]
) -> dict[str, bytes]:
    """PNG bytes by file name: the histograms against the baseline, and the timeline."""
    os.environ.setdefault("MPLCONFIGDIR", "/tmp/matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return {
        CONFIDENCE_PLOT: _png(_histograms(plt, report, records, baseline), plt),
        TIMELINE_PLOT: _png(_timeline(plt, report), plt),
    }


def _histograms(
    plt: Any,
    report: dict[str, Any],
    records: Sequence[CapturedInference],
    baseline: dict[str, Any],
) -> Any:
    window = feature_samples(records)
    reference = baseline_samples(baseline)
    figure, all_axes = plt.subplots(1, 2, figsize=(10, 4))
    for axes, (name, label, value_range) in zip(all_axes, PANELS, strict=True):
        shared = {"bins": 25, "range": value_range, "density": True}
        axes.hist(
            reference[name],
            alpha=0.5,
            label=f"baseline ({len(reference[name])})",
            color="tab:gray",
            **shared,
        )
        if window[name]:
            axes.hist(
                window[name],
                histtype="step",
                linewidth=2,
                label=f"window ({len(window[name])})",
                color="tab:blue",
                **shared,
            )
        result = report["features"].get(name)
        title = f"{name}: D={result['statistic']:.3f}" if result else name
        axes.set_title(title + (" DRIFT" if result and result["drift"] else ""))
        axes.set_xlabel(label)
        axes.set_ylabel("density")
        axes.legend()
    all_axes[0].axvline(report["confidence_threshold"], color="tab:red", linestyle="--")
    figure.suptitle(verdict_line(report))
    figure.tight_layout()
    return figure


def _timeline(plt: Any, report: dict[str, Any]) -> Any:
    rows = report["timeline"]
    starts = [datetime.fromisoformat(row["start"].replace("Z", "+00:00")) for row in rows]
    bin_width = starts[1] - starts[0]
    centres = [start + bin_width / 2 for start in starts]
    figure, axes = plt.subplots(figsize=(10, 4))
    first_class = report["class_names"][0]  # the timeline's bicycle_share is its share
    for key, label, color, reference in (
        (
            "bicycle_share",
            f"{first_class} share",
            "tab:green",
            (report["baseline_class_mix"] or {}).get(first_class),
        ),
        (
            "low_confidence_rate",
            "low-confidence rate",
            "tab:red",
            report["baseline_low_confidence_rate"],
        ),
    ):
        values = [math.nan if row[key] is None else row[key] for row in rows]
        axes.plot(centres, values, marker="o", color=color, label=label)
        if reference is not None:
            axes.axhline(
                reference, color=color, linestyle="--", alpha=0.6, label=f"{label}, baseline"
            )
    counts = axes.twinx()
    counts.bar(
        centres,
        [row["records"] for row in rows],
        width=bin_width * 0.8,
        alpha=0.15,
        color="tab:blue",
    )
    counts.set_ylabel("records")
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("share of records")
    axes.set_title(
        f"Class mix and low-confidence rate, {report['window']['start']} to "
        f"{report['window']['end']}"
    )
    axes.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def _png(figure: Any, plt: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
