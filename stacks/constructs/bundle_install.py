"""The pip command that installs a Lambda bundle's requirements: one for the bundler
(``python_lambda.py``, arm64 wheels) and the local mode's rebuild of a bundle for this machine
(``emulator/sandbox.py``), so that both install the same way."""

from __future__ import annotations

import sys
from pathlib import Path

# Exactly the pinned packages, as wheels, no bytecode: what the Lambda runtime loads.
BUNDLE_PIP_OPTIONS = (
    "--quiet",
    "--disable-pip-version-check",
    "--no-compile",
    "--no-deps",
    "--only-binary=:all:",
)


def pip_install_command(target: Path, *arguments: str) -> list[str]:
    """``pip install`` into ``target`` with the bundle options, then ``arguments``."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        *BUNDLE_PIP_OPTIONS,
        "--target",
        str(target),
        *arguments,
    ]
