"""IAM as deployed: the template's roles in moto, their credentials, and moto enforcing them.

``create_roles`` makes each role the local mode runs as (a function's, the state machine's,
the endpoint's execution role) in moto's IAM from the synthesized template: its trust policy,
its inline ``Policies`` and every ``AWS::IAM::Policy`` attached to it, intrinsics resolved.
``RoleCredentials`` are what STS ``AssumeRole`` gives for one of them, as Lambda hands a
function its role's session in ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN``. ``enforced_access`` switches moto's access control on, so that every
request is authenticated and checked against the caller's identity policies.

What moto checks, and where the local mode fills in (see docs/as-deployed.md):
- S3 requests are checked per action and object ARN; other moto services are checked against
  ``Resource: "*"``. Lambda's own check is wrong in moto 5.2.5 (it hashes the request headers
  as the body, so every signed call fails), so ``authorize_lambda_calls`` replaces it with
  moto's policy evaluator on ``lambda:InvokeFunction`` and the function's ARN.
- SageMaker runtime is the local endpoint, not moto: ``authorize`` is what it calls to check
  ``sagemaker:InvokeEndpoint`` on the endpoint's ARN with the same evaluator.
- Not checked: resource policies (bucket, key, queue), KMS key policies and KMS grants, and
  policy conditions other than those moto's evaluator knows.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from emulator.cloud_assembly import CloudAssembly
from emulator.errors import MotoPatchError, TemplateError

OPERATOR_USER = "local-mode-operator"
_ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
_FUNCTION_PATH = re.compile(r"/functions/([^/]+)/invocations")
_patch_lock = threading.Lock()


class AccessDenied(PermissionError):
    """The caller's identity policies do not allow the action on the resource."""

    def __init__(self, message: str, caller: str = "") -> None:
        super().__init__(message)
        self.caller = caller


@dataclass(frozen=True)
class RoleCredentials:
    """A role session's keys, as the environment variables Lambda sets."""

    role_arn: str
    access_key_id: str
    secret_access_key: str
    session_token: str = ""

    def as_environment(self) -> dict[str, str]:
        variables = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.session_token:
            variables["AWS_SESSION_TOKEN"] = self.session_token
        return variables

    def client_arguments(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client`` signing as this identity."""
        return {name.lower(): value for name, value in self.as_environment().items()}


def _role_logical_id(assembly: CloudAssembly, role_arn: str) -> tuple[str, str]:
    for stack, logical_id, _ in assembly.resources("AWS::IAM::Role"):
        if assembly.arn(stack, logical_id) == role_arn:
            return stack, logical_id
    raise TemplateError(f"no AWS::IAM::Role in the assembly has the ARN {role_arn}")


def role_policies(assembly: CloudAssembly, role_arn: str) -> dict[str, Any]:
    """The role's trust policy and identity policies (by name), intrinsics resolved."""
    stack, logical_id = _role_logical_id(assembly, role_arn)
    properties = assembly.resource(stack, logical_id)["Properties"]
    if properties.get("ManagedPolicyArns"):
        raise TemplateError(
            f"{stack}/{logical_id} attaches managed policies, which the local mode does not "
            "load: grant with inline or AWS::IAM::Policy statements"
        )
    role_name = assembly.physical_name(stack, logical_id)
    policies = {
        policy["PolicyName"]: assembly.resolve(stack, policy["PolicyDocument"])
        for policy in properties.get("Policies", [])
    }
    for policy_stack, _, policy in assembly.resources("AWS::IAM::Policy"):
        policy_properties = policy["Properties"]
        attached = assembly.resolve(policy_stack, policy_properties.get("Roles", []))
        if role_name in attached:
            name = str(assembly.resolve(policy_stack, policy_properties["PolicyName"]))
            policies[name] = assembly.resolve(policy_stack, policy_properties["PolicyDocument"])
    return {
        "name": role_name,
        "trust": assembly.resolve(stack, properties["AssumeRolePolicyDocument"]),
        "policies": policies,
    }


class LocalIdentities:
    """The operator's and the template roles' credentials in one moto account.

    The operator (the person running the local mode) is an IAM user allowed everything, as an
    account administrator would be; every role is created from the template and assumed.
    """

    def __init__(self, assembly: CloudAssembly, region: str) -> None:
        import boto3

        self._assembly = assembly
        self._iam = boto3.client("iam", region_name=region)
        self._sts = boto3.client("sts", region_name=region)
        self._roles: dict[str, RoleCredentials] = {}
        self._iam.create_user(UserName=OPERATOR_USER)
        self._iam.put_user_policy(
            UserName=OPERATOR_USER,
            PolicyName="AdministratorAccess",
            PolicyDocument=json.dumps(_ADMIN_POLICY),
        )
        key = self._iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
        self.operator = RoleCredentials(
            role_arn=f"arn:aws:iam::{assembly.account}:user/{OPERATOR_USER}",
            access_key_id=key["AccessKeyId"],
            secret_access_key=key["SecretAccessKey"],
        )

    def role(self, role_arn: str) -> RoleCredentials:
        """Create the role from the template (once) and return a session of it."""
        credentials = self._roles.get(role_arn)
        if credentials is not None:
            return credentials
        role = role_policies(self._assembly, role_arn)
        self._iam.create_role(
            RoleName=role["name"], AssumeRolePolicyDocument=json.dumps(role["trust"])
        )
        for name, document in role["policies"].items():
            self._iam.put_role_policy(
                RoleName=role["name"], PolicyName=name, PolicyDocument=json.dumps(document)
            )
        session = self._sts.assume_role(RoleArn=role_arn, RoleSessionName="local-mode")
        keys = session["Credentials"]
        credentials = self._roles[role_arn] = RoleCredentials(
            role_arn=role_arn,
            access_key_id=keys["AccessKeyId"],
            secret_access_key=keys["SecretAccessKey"],
            session_token=keys["SessionToken"],
        )
        return credentials


def _caller(headers: Mapping[str, str], account: str) -> Any:
    """moto's access key object for the request's signer (raises AccessDenied if unknown)."""
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key

    authorization = headers.get("Authorization") or headers.get("authorization") or ""
    match = re.search(r"Credential=([^/,\s]+)/", authorization)
    if match is None:
        raise AccessDenied("the request is not signed (no SigV4 Authorization header)")
    normalized = {
        ("X-Amz-Security-Token" if k.lower() == "x-amz-security-token" else k): v
        for k, v in headers.items()
    }
    try:
        return create_access_key(account, "aws", match.group(1), normalized)
    except CreateAccessKeyFailure as error:
        raise AccessDenied(f"the signing key is not valid: {error.reason}") from None


def authorize(headers: Mapping[str, str], account: str, action: str, resource: str) -> None:
    """Raise ``AccessDenied`` unless the signer's identity policies allow ``action`` on
    ``resource`` (moto's own evaluator: an explicit Deny wins, no Allow denies)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return
    caller = _caller(headers, account)
    results = [
        IAMPolicy(policy).is_action_permitted(action, resource)
        for policy in caller.collect_policies()
    ]
    if PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
        raise AccessDenied(
            f"User: {caller.arn} is not authorized to perform: {action} on resource: "
            f"{resource} because no identity-based policy allows the {action} action",
            caller=caller.arn,
        )


@contextmanager
def enforced_access() -> Iterator[None]:
    """moto authenticates and authorizes every request from here on (its access control)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    saved = settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = saved


@contextmanager
def authorize_lambda_calls(account: str, region: str) -> Iterator[None]:
    """Check Lambda Invoke against the caller's policies on the function's ARN (see above)."""
    try:
        from moto.awslambda.responses import LambdaResponse
    except ImportError as error:
        raise MotoPatchError(f"moto.awslambda.responses.LambdaResponse moved: {error}") from error
    if "_authenticate_and_authorize_normal_action" in LambdaResponse.__dict__:
        raise MotoPatchError(
            "LambdaResponse defines its own authorization now: check whether moto's Lambda "
            "access control works and port emulator/iam.py"
        )

    def check(self: Any, resource: str = "*") -> None:
        from moto.iam.access_control import AccessDeniedError

        match = _FUNCTION_PATH.search(self.path)
        if match is None:
            action, resource = f"lambda:{self._get_action()}", "*"
        else:
            name = unquote(match.group(1))
            name = name.split(":")[6] if name.startswith("arn:") else name.split(":")[0]
            action = "lambda:InvokeFunction"
            resource = f"arn:aws:lambda:{region}:{account}:function:{name}"
        try:
            authorize(self.headers, account, action, resource)
        except AccessDenied as error:
            raise AccessDeniedError(user_arn=error.caller or "unknown", action=action) from None

    with _patch_lock:
        LambdaResponse._authenticate_and_authorize_normal_action = check
    try:
        yield
    finally:
        with _patch_lock:
            del LambdaResponse._authenticate_and_authorize_normal_action
