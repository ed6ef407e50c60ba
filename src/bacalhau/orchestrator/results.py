"""What the results endpoint hands out for an execution's published result: the local publisher's download URL
signed for this request (the node serves nothing unsigned, see ``bacalhau.lib.links``), and S3 objects turned into
pre-signed URLs so that a client without S3 credentials can download them (``Publishers.Types.S3.PreSignedURL*``).
The stored execution keeps its result unsigned: a link is made for each caller the API let in, when they ask."""

from __future__ import annotations

import logging

from bacalhau.lib import s3client
from bacalhau.lib.links import LinkSigner
from bacalhau.models.execution import Execution
from bacalhau.models.plugins import ResultType
from bacalhau.models.spec import SpecConfig

log = logging.getLogger(__name__)


class ResultTransformer:
    def __init__(self, links: LinkSigner, *, presign: bool = True, expires_in: int = 3600) -> None:
        self._links = links
        self._presign = presign
        self._expires_in = expires_in

    def __call__(self, execution: Execution) -> SpecConfig:
        result = execution.published_result
        if result.is_type(ResultType.URL):  # only the local publisher publishes plain URLs
            url = self._links.sign_url(str(result.param("URL", "")), execution.node_id, execution.id)
            return SpecConfig(type=result.type, params={**result.params, "URL": url})
        key = str(result.param("Key", "") or "")
        if not self._presign or not result.is_type(ResultType.S3) or not key or key.endswith("/"):
            return result
        try:
            return s3client.presign(result, self._expires_in)
        except s3client.S3Error as exc:
            log.warning("could not pre-sign s3://%s/%s: %s", result.param("Bucket"), key, s3client.describe(exc))
            return result
