"""What the results endpoint hands out: published results, with S3 objects turned into pre-signed URLs so that a
client without S3 credentials can download them (``Publishers.Types.S3.PreSignedURL*`` settings)."""

from __future__ import annotations

import logging

from bacalhau.lib import s3client
from bacalhau.models.spec import SpecConfig

log = logging.getLogger(__name__)


class ResultTransformer:
    def __init__(self, *, presign: bool = True, expires_in: int = 3600) -> None:
        self._presign = presign
        self._expires_in = expires_in

    def __call__(self, result: SpecConfig) -> SpecConfig:
        key = str(result.param("Key", "") or "")
        if not self._presign or not result.is_type("s3") or not key or key.endswith("/"):
            return result
        try:
            return s3client.presign(result, self._expires_in)
        except s3client.S3Error as exc:
            log.warning("could not pre-sign s3://%s/%s: %s", result.param("Bucket"), key, s3client.describe(exc))
            return result
