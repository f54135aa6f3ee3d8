"""Bundles as deployed: each function runs in a process of its own, from its built asset.

A bundle holds Linux arm64 wheels for Python 3.12 (``stacks/constructs/python_lambda.py``),
which this machine cannot load. ``host_bundle`` makes the same folder for this machine: the
function's own files copied from the asset, and each distribution the asset holds (read from
its ``*.dist-info``) installed again at the same version for this platform, with the flags the
bundler uses (``--no-deps --only-binary=:all:``). Nothing else: a package missing from the
bundle is missing here too. ``runtime_packages`` is what the Lambda Python runtime itself
ships (boto3 and its closure), linked from this venv.

``Sandbox`` is one worker process (``emulator/sandbox_worker.py``) started with ``python -I -S``
and those two folders as its whole import path beside the standard library, like a Lambda
execution environment; its output goes to the function's log file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from emulator.errors import EmulatorError
from stacks.constructs.bundle_install import pip_install_command

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_ROOT = REPO_ROOT / "build" / "local-lambda"
WORKER = Path(__file__).with_name("sandbox_worker.py")
# What the Lambda Python runtime ships beside the function (its /var/runtime).
RUNTIME_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
_DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info$")
_BASE_ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC"}


class SandboxError(EmulatorError):
    """A function's sandbox could not be built or started."""


def _bundled_distributions(asset_dir: Path) -> tuple[list[str], set[Path]]:
    """``name==version`` of each distribution in the asset, and the files they own."""
    pins, owned = [], set()
    for info in sorted(asset_dir.glob("*.dist-info")):
        match = _DIST_INFO.match(info.name)
        if match is None:
            raise SandboxError(f"{info} is not named NAME-VERSION.dist-info")
        pins.append(f"{match['name']}=={match['version']}")
        owned.add(info.relative_to(asset_dir))
        record = info / "RECORD"
        for line in record.read_text().splitlines() if record.is_file() else []:
            path = line.rsplit(",", 2)[0]
            if path and not path.startswith(".."):
                owned.add(Path(path))
    return pins, owned


def _function_files(asset_dir: Path, owned: set[Path]) -> list[Path]:
    """The asset's files that no distribution owns: the function's own code."""
    files = []
    for path in sorted(asset_dir.rglob("*")):
        relative = path.relative_to(asset_dir)
        if path.is_dir() or "__pycache__" in relative.parts:
            continue
        if relative in owned or any(parent in owned for parent in relative.parents):
            continue
        files.append(relative)
    return files


def host_bundle(asset_dir: Path) -> Path:
    """The asset folder rebuilt for this machine (cached under build/local-lambda/)."""
    pins, owned = _bundled_distributions(asset_dir)
    files = _function_files(asset_dir, owned)
    digest = hashlib.sha256(json.dumps([pins, sys.version, sys.platform]).encode())
    for relative in files:
        digest.update(str(relative).encode() + b"\0" + (asset_dir / relative).read_bytes())
    target = BUILD_ROOT / "bundles" / digest.hexdigest()[:20]
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=target.parent))
    try:
        if pins:
            _pip_install(pins, staging)
        for relative in files:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(asset_dir / relative, staging / relative)
        staging.rename(target)
    except OSError:
        if not target.is_dir():  # not another process's build finished first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _pip_install(pins: list[str], target: Path) -> None:
    command = pip_install_command(target, *pins)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SandboxError(
            f"pip could not install the bundle's {', '.join(pins)} for this machine "
            f"(is PyPI reachable?):\n{result.stderr.strip()}"
        )


def runtime_packages() -> Path:
    """A folder of links to this venv's copies of what the Lambda runtime ships."""
    distributions = [importlib.metadata.distribution(name) for name in RUNTIME_DISTRIBUTIONS]
    versions = [f"{dist.metadata['Name']}=={dist.version}" for dist in distributions]
    target = BUILD_ROOT / "runtime" / hashlib.sha256(json.dumps(versions).encode()).hexdigest()[:16]
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=target.parent))
    for dist in distributions:
        tops = {Path(str(file)).parts[0] for file in dist.files or [] if ".." not in str(file)}
        for top in sorted(tops - {"__pycache__"}):
            source = Path(str(dist.locate_file(top)))
            if source.exists():
                (staging / top).symlink_to(source)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class Sandbox:
    """One execution environment of a function: a worker process serving one call at a time."""

    def __init__(self, code_dir: Path, handler: str, log_path: Path) -> None:
        request_read, self._request_fd = os.pipe()
        self._response_fd, response_write = os.pipe()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            command = [sys.executable, "-I", "-S", str(WORKER), str(host_bundle(code_dir))]
            command += [str(runtime_packages()), handler, str(request_read), str(response_write)]
            try:
                self.process = subprocess.Popen(
                    command,
                    pass_fds=(request_read, response_write),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_BASE_ENVIRONMENT,
                )
            finally:
                os.close(request_read)
                os.close(response_write)
        self._requests = os.fdopen(self._request_fd, "wb")
        self._responses = os.fdopen(self._response_fd, "rb")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, message: dict[str, Any], timeout_seconds: float) -> dict[str, Any]:
        """Send one request; the worker's answer, or an envelope for a timeout or an exit."""
        request_id = message["context"]["aws_request_id"]
        try:
            self._requests.write(json.dumps(message).encode("utf-8") + b"\n")
            self._requests.flush()
        except BrokenPipeError:
            return self._exited(request_id)
        ready, _, _ = select.select([self._responses], [], [], timeout_seconds)
        if not ready:
            self.stop()
            return {
                "error": {
                    "errorMessage": f"Task timed out after {timeout_seconds:.2f} seconds",
                    "errorType": "Sandbox.Timedout",
                    "requestId": request_id,
                }
            }
        line = self._responses.readline()
        if not line:
            return self._exited(request_id)
        return json.loads(line)

    def _exited(self, request_id: str) -> dict[str, Any]:
        status = self.process.wait()
        return {
            "error": {
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
                f"exit status {status}",
                "errorType": "Runtime.ExitError",
                "requestId": request_id,
            }
        }

    def stop(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()
        for stream in (self._requests, self._responses):
            with contextlib.suppress(OSError):
                stream.close()
