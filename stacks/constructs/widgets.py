"""The dashboard's small vocabulary: graphs of width 8 over five-minute periods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from stacks.constructs.python_lambda import PythonLambda

PERIOD = Duration.minutes(5)
SUM, AVERAGE, MAXIMUM = cloudwatch.Stats.SUM, cloudwatch.Stats.AVERAGE, cloudwatch.Stats.MAXIMUM
SHARE_AXIS = cloudwatch.YAxisProps(min=0, max=1)


def graph(title: str, left: Sequence[cloudwatch.IMetric], **props: Any) -> cloudwatch.GraphWidget:
    """A graph a third of the dashboard wide; ``props`` as ``GraphWidget`` takes them."""
    return cloudwatch.GraphWidget(title=title, left=list(left), width=8, **props)


def line(value: float, label: str) -> list[cloudwatch.HorizontalAnnotation]:
    """One horizontal line, e.g. an alarm's threshold."""
    return [cloudwatch.HorizontalAnnotation(value=value, label=label)]


def emitted(
    function: PythonLambda, metric_name: str, statistic: str, label: str
) -> cloudwatch.Metric:
    """A metric ``function`` publishes (with its ``service`` dimension)."""
    return function.powertools_metric(metric_name, statistic=statistic, period=PERIOD, label=label)


def expression(
    formula: str, metrics: Mapping[str, cloudwatch.IMetric], label: str
) -> cloudwatch.MathExpression:
    """``formula`` over ``metrics``, by their names in it."""
    return cloudwatch.MathExpression(
        expression=formula, using_metrics=dict(metrics), label=label, period=PERIOD
    )
