"""The local account the local mode runs in: moto's HTTP server beside the in-process moto,
this process's credentials, and the placeholder code moto's Lambda functions are created with.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def process_environment(variables: Mapping[str, str | None]):
    """Set (or, for ``None``, remove) variables of this process for the block's time."""
    saved = {name: os.environ.get(name) for name in variables}
    for name, value in variables.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def default_session(credentials: Mapping[str, str]) -> Iterator[None]:
    """boto3's default session signs with ``credentials`` for the block's time (it caches the
    keys it first resolved, so the environment alone would not do)."""
    import boto3

    with process_environment(credentials):
        boto3.DEFAULT_SESSION = None
        try:
            yield
        finally:
            boto3.DEFAULT_SESSION = None


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's HTTP server on loopback, serving this process's moto state; yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def placeholder_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("README", "the local mode runs the asset folder from cdk.out")
    return archive.getvalue()
