"""The encrypted SNS topic the monitoring alarms notify, with an optional e-mail subscription.

Its resources go to the scope given (the stack), under the logical IDs first deployed (see
``stacks/monitoring_stack.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from constructs import Construct

from stacks.constructs.project_key import project_key


class AlarmTopic:
    """The topic (``topic``), on its own key, TLS only; ``email`` (if any) subscribed."""

    def __init__(self, scope: Construct, *, email: str | None) -> None:
        key = project_key(
            scope, "AlarmTopicKey", description="Encrypts the Scones Unlimited alarm notifications"
        )
        # CloudWatch publishes alarm notifications to the encrypted topic with this key.
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(
            scope,
            "AlarmTopic",
            display_name="Scones Unlimited alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(sns_subscriptions.EmailSubscription(email))

    def notify_on(self, alarms: Iterable[cloudwatch.Alarm]) -> None:
        """Make the topic the action of each of ``alarms``."""
        for alarm in alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
