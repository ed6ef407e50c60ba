"""S3 as both sides use it: clients built from job params (credentials from the node's environment), pre-signed
URLs for published results. Orchestrator and compute do not import each other, so this lives here."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError

from bacalhau.models.plugins import ResultType
from bacalhau.models.spec import SpecConfig

S3Error = (BotoCoreError, ClientError)


def client(params: SpecConfig) -> Any:
    """A boto3 S3 client for the ``Endpoint`` and ``Region`` of a spec (path-style when an endpoint is given)."""
    endpoint = str(params.param("Endpoint", "") or "") or None
    region = str(params.param("Region", "") or "") or None
    config = Config(
        signature_version="s3v4", s3={"addressing_style": "path"} if endpoint else {}, retries={"max_attempts": 3}
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region, config=config)


def describe(error: Exception) -> str:
    """A one-line reason from a botocore error (the error code and message when S3 gave them)."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code, message = details.get("Code", ""), details.get("Message", "")
        return f"{code}: {message}".strip(": ") or str(error)
    return str(error)


def is_missing(error: Exception) -> bool:
    """Whether S3 said the bucket, object or version does not exist (asking again, or elsewhere, will not help)."""
    if not isinstance(error, ClientError):
        return False
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchBucket", "NoSuchKey", "NoSuchVersion", "404")


def presign(result: SpecConfig, expires_in: int) -> SpecConfig:
    """A published ``s3`` result as ``s3PreSigned``: the same params plus a GET URL for the object."""
    s3 = client(result)
    request = {"Bucket": result.param("Bucket"), "Key": result.param("Key")}
    if result.param("VersionID"):
        request["VersionId"] = result.param("VersionID")
    url = s3.generate_presigned_url("get_object", Params=request, ExpiresIn=expires_in)
    return SpecConfig(type=ResultType.S3_PRESIGNED, params={**result.params, "PreSignedURL": url})
