"""Shared names of the object-store tests (the `s3_endpoint` fixture is in conftest.py)."""

BUCKET = "scaling-test"  # the bucket the s3_endpoint fixture creates
