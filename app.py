#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth|deploy|destroy` or plainly `python app.py`."""

import sys

from stacks.application import build_app
from stacks.config import ConfigError
from training.record import ModelRecordError


def main() -> None:
    try:
        app = build_app()
    except (ConfigError, ModelRecordError) as error:
        sys.exit(f"error: {error}")
    app.synth()


if __name__ == "__main__":
    main()
