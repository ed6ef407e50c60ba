"""``job get``: download published results and lay them out as the original does.

Every result goes to ``<dir>/raw/`` first (archives unpacked beside themselves); the contents are then merged into
``<dir>``: ``stdout``, ``stderr`` and ``exitCode`` are concatenated across executions, any other file that exists
twice is an error unless ``--raw`` keeps the raw layout instead.
"""

from __future__ import annotations

import shutil
import tarfile
import time
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from bacalhau.errors import BacalhauError
from bacalhau.lib.links import redacted
from bacalhau.lib.paths import is_plain_name
from bacalhau.models.plugins import ResultType
from bacalhau.models.spec import EXIT_CODE_FILE, STDERR_FILE, STDOUT_FILE, SpecConfig

APPENDED_FILES = (STDOUT_FILE, STDERR_FILE, EXIT_CODE_FILE)


class DownloadError(BacalhauError):
    pass


def _download(url: str, target: Path, deadline: float, show_progress: bool) -> None:
    """Messages name the URL without its query: a signed link's signature is no one else's to read."""
    shown = redacted(url)
    remaining = max(1.0, deadline - time.monotonic())
    try:
        with httpx.stream("GET", url, timeout=remaining, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise DownloadError(f"downloading {shown} failed: HTTP {response.status_code}{_reason(response)}")
            total = int(response.headers.get("content-length") or 0) or None
            with (
                target.open("wb") as handle,
                Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    disable=not show_progress,
                    transient=True,
                ) as progress,
            ):
                task = progress.add_task(f"Downloading {target.name}", total=total)
                for chunk in response.iter_bytes(1 << 16):
                    if time.monotonic() > deadline:
                        raise DownloadError(f"downloading {shown} timed out", hint="raise --download-timeout-secs")
                    handle.write(chunk)
                    progress.update(task, advance=len(chunk))
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"downloading {shown} failed: {exc}",
            hint="the compute node that published the results must be reachable from this machine",
        ) from None


def _reason(response: httpx.Response) -> str:
    """What a refusing server said, when it says it in a line of text (a compute node refusing a link: expired, not
    signed, ...); nothing for other bodies (an S3 error's XML, an HTML page)."""
    if not response.headers.get("content-type", "").startswith("text/plain"):
        return ""
    first = next(response.iter_bytes(200), b"")  # a line's worth, however much the server would send
    return f" ({first.decode(errors='replace').strip()})"


def _unpack(archive: Path) -> Path:
    folder = archive.parent / archive.name.removesuffix(".tar.gz").removesuffix(".tgz")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"cannot unpack {archive.name}: {exc}") from None
    archive.unlink()
    return folder


def _merge(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        destination = target / relative
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        if destination.exists():
            if relative.as_posix() in APPENDED_FILES:
                with destination.open("ab") as out, path.open("rb") as src:
                    shutil.copyfileobj(src, out)
                continue
            raise DownloadError(
                f"cannot merge results as output already exists: {destination}",
                hint="use --raw to keep each execution's results apart",
            )
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def _fetch(result: SpecConfig, raw_dir: Path, fallback_name: str, deadline: float, show_progress: bool) -> Path:
    """Bring one published result into ``raw_dir``; returns the file or folder it became."""
    if result.is_type(ResultType.URL) or result.is_type(ResultType.S3_PRESIGNED):
        url = str(result.param("URL") or result.param("PreSignedURL") or "")
        name = Path(urlparse(url).path).name
        target = raw_dir / (name if is_plain_name(name) else fallback_name)
        _download(url, target, deadline, show_progress)
        return target
    if result.is_type(ResultType.S3):
        return _download_s3(result, raw_dir, fallback_name)
    raise DownloadError(f"no downloader for results of type {result.type!r}")


def _download_s3(result: SpecConfig, raw_dir: Path, fallback_name: str) -> Path:
    """An ``s3`` result the orchestrator did not pre-sign, fetched with this machine's own AWS credentials."""
    from bacalhau.lib import s3client  # boto3 is slow to import and only needed here

    bucket, key = str(result.param("Bucket", "")), str(result.param("Key", ""))
    try:
        s3 = s3client.client(result)
        if not key.endswith("/"):
            target = raw_dir / (PurePosixPath(key).name or fallback_name)
            s3.download_file(bucket, key, str(target))
            return target
        folder = raw_dir / (PurePosixPath(key).name or fallback_name)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                path = folder / item["Key"].removeprefix(key)
                if item["Key"].endswith("/") or not path.resolve().is_relative_to(folder.resolve()):
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(path))
        return folder
    except s3client.S3Error as exc:
        raise DownloadError(
            f"downloading s3://{bucket}/{key} failed: {s3client.describe(exc)}",
            hint="results published to S3 without a pre-signed URL are read with this machine's AWS credentials",
        ) from None


def download_results(
    results: list[SpecConfig], output_dir: Path, *, raw: bool, timeout: float, show_progress: bool
) -> None:
    raw_dir = output_dir / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    folders = []
    for index, result in enumerate(results):
        target = _fetch(result, raw_dir, f"result-{index}", deadline, show_progress)
        folders.append(_unpack(target) if target.name.endswith((".tar.gz", ".tgz")) else target)
    if raw:
        return
    for folder in folders:
        if folder.is_dir():
            _merge(folder, output_dir)
        else:
            shutil.copy2(folder, output_dir / folder.name)
    shutil.rmtree(raw_dir)
