"""Input sources, by the type names used in job specs."""

from __future__ import annotations

from collections.abc import Iterable

from bacalhau.compute.inputs.base import InputProvider
from bacalhau.compute.inputs.inline import InlineInput
from bacalhau.compute.inputs.ipfs import IpfsInput
from bacalhau.compute.inputs.localdir import LocalDirectoryInput
from bacalhau.compute.inputs.s3objects import S3Input
from bacalhau.compute.inputs.urldownload import UrlDownloadInput
from bacalhau.models.plugins import SourceType


def default_inputs(
    *,
    allow_listed_paths: list[str],
    max_download_bytes: int,
    retries: int,
    ipfs_endpoint: str = "",
    disabled: Iterable[str] = (),
) -> dict[str, InputProvider]:
    """The input sources this node offers: every installed one the configuration does not disable."""
    off = {name.lower() for name in disabled}
    local = LocalDirectoryInput(allow_listed_paths)
    providers: list[InputProvider] = [
        InlineInput(),
        UrlDownloadInput(max_bytes=max_download_bytes, retries=retries),
        local,
        S3Input(),
        IpfsInput(ipfs_endpoint, max_bytes=max_download_bytes),
    ]
    candidates = [(provider.name, provider) for provider in providers] + [(SourceType.LOCAL.value, local)]
    return {name: p for name, p in candidates if name.lower() not in off and p.is_installed()}
