"""Fixtures of the sweep tests: `s3_endpoint`, a local S3 server for the object-store
tests (moto's server mode on 127.0.0.1, reached through s3fs; moto is imported only when
a test asks for it)."""

from __future__ import annotations

import os
import socket

import pytest
from s3_helpers import BUCKET


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 (this machine only), with one bucket, for the whole
    session; AWS_* variables point s3fs (here and in subprocesses) at it with dummy
    credentials. Every test writes under a prefix of its own."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                              "AWS_DEFAULT_REGION")}  # fmt: skip
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                      AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    if not fs.exists(BUCKET):  # moto keeps its buckets in the process: a second server sees them
        fs.mkdir(BUCKET)
    yield url
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    s3fs.S3FileSystem.clear_instance_cache()
