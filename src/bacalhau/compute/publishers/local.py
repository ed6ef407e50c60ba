"""The local publisher: each execution's results as ``<execID>.tar.gz``, served over HTTP by the compute node to
whoever shows a link its orchestrator signed (``bacalhau.lib.links``): execution IDs are no secret."""

from __future__ import annotations

import asyncio
import logging
import os
import tarfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from bacalhau.compute.publishers.base import PublishError
from bacalhau.lib.httpserver import PUBLISHER_DEADLINES, HttpServer, bind
from bacalhau.lib.links import EXPIRES, SIGNATURE, LinkVerifier, Purpose
from bacalhau.lib.paths import UnsafePath, within
from bacalhau.models.plugins import PublisherType, ResultType
from bacalhau.models.spec import SpecConfig

log = logging.getLogger(__name__)

ARCHIVE_SUFFIX = ".tar.gz"


def _archive(results_dir: Path, target: Path) -> None:
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as archive:
        archive.add(results_dir, arcname=".")
    os.replace(partial, target)


class LocalPublisher:
    name = PublisherType.LOCAL.value

    def __init__(self, directory: Path, address: str, port: int, links: LinkVerifier) -> None:
        self.directory = directory
        self.address = address
        self.port = port
        self._links = links
        self._server: HttpServer | None = None

    @property
    def url_prefix(self) -> str:
        return f"http://{self.address}:{self.port}"

    def is_installed(self) -> bool:
        return True

    async def publish(self, execution_id: str, job_id: str, results_dir: Path, spec: SpecConfig) -> SpecConfig:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{execution_id}{ARCHIVE_SUFFIX}"
        try:
            await asyncio.to_thread(_archive, results_dir, target)
        except OSError as exc:
            raise PublishError(f"local publisher failed to compress output file: {exc}") from None
        return SpecConfig(type=ResultType.URL.value, params={"URL": f"{self.url_prefix}/{target.name}"})

    async def start(self) -> None:
        """Serve on the address the results' URLs name: the original listens on every address whatever it names,
        which serves results to networks they were not meant for."""
        self.directory.mkdir(parents=True, exist_ok=True)
        hint = "set an address of this machine and a free port: Publishers.Types.Local.Address and .Port"
        sock = bind(self.address, self.port, "local publisher", hint)
        app = Starlette(routes=[Route("/{name}", self._serve)])
        self._server = HttpServer(app, sock, "local publisher", PUBLISHER_DEADLINES)
        await self._server.start()
        self.port = self._server.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()

    async def _serve(self, request: Request) -> Response:
        """One execution's archive, for a link signed for it: the signature is checked before anything on disk is
        looked at, so that an unsigned request cannot even learn which executions ran here. Only a regular file
        named ``<execution-id>.tar.gz`` whose resolved path stays in the directory is served (never a symlink out)."""
        name = request.path_params["name"]
        if not name.endswith(ARCHIVE_SUFFIX):
            raise HTTPException(status_code=404, detail=f"no results named {name}")
        query = request.query_params
        client = request.client.host if request.client else "an unknown client"
        execution_id = name.removesuffix(ARCHIVE_SUFFIX)
        refused = self._links.check(
            execution_id, Purpose.RESULTS, query.get(EXPIRES, ""), query.get(SIGNATURE, ""), client
        )
        if refused:
            return PlainTextResponse(f"forbidden: {refused}\n", status_code=403)
        path = self._archive_path(name)
        if path is None:
            raise HTTPException(status_code=404, detail=f"no results named {name}")
        return FileResponse(path, media_type="application/gzip", filename=name)

    def _archive_path(self, name: str) -> Path | None:
        """The archive's resolved path, if it is a regular file inside the directory."""
        try:
            path = within(self.directory, name)
        except UnsafePath:
            return None
        return path if path.is_file() else None
