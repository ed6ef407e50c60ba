"""Job admission control: which jobs a compute node's owner lets it bid for (``JobAdmissionControl.*``), as the
original's semantic bid strategies decide.

- ``RejectNetworkedJobs``: a job whose network is anything but ``None`` (or left to the node: ``Default``, which
  then runs without a network) is refused.
- ``RejectStatelessJobs``: a job without input sources is refused.
- ``Locality: local``: a job is refused unless every input is already on this node (inline data always is; a local
  directory is when the allow-list covers it and it exists, or may be created; an IPFS CID is when the node's IPFS
  node holds it without fetching it; URLs and S3 objects never are). ``anywhere`` (the default) takes any job.
- ``ProbeExec``: the owner's command, run as ``bash -c <command>`` (the command is the owner's; no job data ever
  reaches a shell), gets the request ``{"Job": ...}`` as JSON on its standard input (and, when small enough, in
  ``BACALHAU_JOB_SELECTION_PROBE_DATA``); exit code 0 accepts, anything else refuses, its standard error saying why.
- ``ProbeHTTP``: the request is POSTed to the owner's URL; a status of 400 or more refuses; a JSON answer
  ``{"ShouldBid": false, "Reason": "..."}`` refuses with that reason.

The first three are checked at once, with the node's other checks. Locality and the probes take time, so the bid
waits for them off the event loop, after the request is stored: each probe is bounded in time and output, and at
most a few run at once. A probe that cannot answer (unreachable, too slow, nonsense) refuses the bid, saying why.
Reasons read as the original's (``rejected bid: this node does not ...``), so the job's history shows the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from bacalhau.lib.boundedproc import ProcessTimeout, run_bounded
from bacalhau.models.gostrings import quote
from bacalhau.models.job import Job
from bacalhau.models.spec import InputSource, Network

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 10.0  # seconds a probe may take to answer
MAX_PROBE_ANSWER = 64 * 1024  # bytes of a probe's answer (stderr, HTTP body) read at most
MAX_PROBE_ENV = 96 * 1024  # the request goes in the environment too only below this (a variable may hold 128 KiB)
CONCURRENT_PROBES = 4
LOCAL, ANYWHERE = "local", "anywhere"


def rejected(reason: str) -> str:
    return f"rejected bid: {reason}"


@dataclass
class AdmissionConfig:
    """``JobAdmissionControl``."""

    reject_stateless_jobs: bool = False
    reject_networked_jobs: bool = False
    locality: str = ANYWHERE
    probe_http: str = ""
    probe_exec: str = ""
    probe_timeout: float = PROBE_TIMEOUT

    @property
    def asks(self) -> bool:
        """Whether deciding may take time (a probe, or looking for inputs)."""
        return bool(self.probe_http or self.probe_exec or self.locality.lower() == LOCAL)


class LocalCheck(Protocol):
    """An input source that can tell whether an input is already on this node (``HasStorageLocally``)."""

    async def has_locally(self, source: InputSource) -> bool: ...


def network_reasons(config: AdmissionConfig, job: Job) -> list[str]:
    network = job.task.network_config.type
    if not config.reject_networked_jobs or network in (Network.NONE, Network.DEFAULT):
        return []
    return [rejected("this node does not run jobs that require network access")]


def stateless_reasons(config: AdmissionConfig, job: Job) -> list[str]:
    if not config.reject_stateless_jobs or job.task.input_sources:
        return []
    return [rejected("this node does not accept jobs without any input volumes")]


def probe_request(job: Job) -> bytes:
    """What the probes are given: the original's ``BidStrategyRequest``, ``{"Job": <the job>}``."""
    return b'{"Job":' + job.to_json().encode() + b"}"


class JobAdmission:
    def __init__(self, config: AdmissionConfig, inputs: Mapping[str, object]) -> None:
        self.config = config
        self._inputs = inputs
        self._probes = asyncio.Semaphore(CONCURRENT_PROBES)

    def reasons_now(self, job: Job) -> list[str]:
        """The rules that need nothing but the job."""
        return network_reasons(self.config, job) + stateless_reasons(self.config, job)

    def must_ask(self, job: Job) -> bool:
        """Whether the rest of the decision waits for :meth:`ask`."""
        return self.config.asks

    async def ask(self, job: Job) -> list[str]:
        """Locality, then the exec probe, then the HTTP probe (the original's order); never raises."""
        try:
            async with self._probes:
                reasons = await self._locality(job)
                if self.config.probe_exec:
                    reasons += await exec_probe(self.config.probe_exec, probe_request(job), self.config.probe_timeout)
                if self.config.probe_http:
                    reasons += await http_probe(self.config.probe_http, probe_request(job), self.config.probe_timeout)
                return reasons
        except Exception as exc:
            log.exception("job admission for job %s failed", job.id)
            return [rejected(f"this node could not decide whether to accept this job: {exc}")]

    async def _locality(self, job: Job) -> list[str]:
        if self.config.locality.lower() != LOCAL:
            return []
        sources = job.task.input_sources
        missing = 0
        for source in sources:
            provider = self._inputs.get(source.source.type if source.source else "")
            check = getattr(provider, "has_locally", None)
            local = False
            if check is not None:
                try:
                    local = bool(await asyncio.wait_for(check(source), self.config.probe_timeout))
                except Exception as exc:  # an input we cannot look for is not here
                    log.info("cannot tell whether input %s is local: %s", source.alias or source.target, exc)
            missing += not local
        if not missing:
            return []
        return [rejected(f"this node does not have all input data locally ({missing} inputs require downloading)")]


# ---- the probes


def _shell() -> list[str]:
    """bash, as the original runs the command; without rc files, which bash would otherwise read when its input is
    a socket (as a probe's is under uvloop), mixing their complaints into the probe's answer."""
    bash = shutil.which("bash")
    return [bash, "--norc", "--noprofile"] if bash else ["/bin/sh"]


async def exec_probe(command: str, request: bytes, timeout: float = PROBE_TIMEOUT) -> list[str]:
    """Run the owner's command with the request on its standard input; [] if it exits 0, else why not."""
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    if len(request) <= MAX_PROBE_ENV:
        env["BACALHAU_JOB_SELECTION_PROBE_DATA"] = request.decode()
    try:
        finished = await run_bounded(
            [*_shell(), "-c", command],
            timeout=timeout,
            max_bytes=MAX_PROBE_ANSWER,
            read="stderr",
            stdin=request,
            env=env,
        )
    except OSError as exc:
        return [rejected(f"this node could not run its admission command {quote(command)}: {exc}")]
    except ProcessTimeout:  # the command, or something it left holding its stderr, is still there
        return [rejected(f"this node does not accept jobs where external command {quote(command)} does not answer "
                         f"within {timeout:g}s")]  # fmt: skip
    said, code = finished.output, finished.code
    if code == 0:
        return []
    reason = said.decode(errors="replace").strip()
    if reason:
        return [rejected(f"this node does not accept this job: {reason}")]
    return [
        rejected(f"this node does not accept jobs where external command {quote(command)} returns exit code {code}")
    ]


async def http_probe(url: str, request: bytes, timeout: float = PROBE_TIMEOUT) -> list[str]:
    """POST the request to the owner's endpoint; [] if it accepts, else why not."""
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client,  # as Go's default client
            client.stream("POST", url, content=request, headers={"Content-Type": "application/json"}) as response,
        ):
            if response.status_code >= 400:
                return [rejected(f"this node does not accept jobs where url {quote(url)} returns HTTP status code "
                                 f"{response.status_code}")]  # fmt: skip
            media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                return []
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_PROBE_ANSWER:
                    return [
                        rejected(f"the admission endpoint {quote(url)} answered more than {MAX_PROBE_ANSWER} bytes")
                    ]
    except httpx.HTTPError as exc:
        return [rejected(f"the admission endpoint {quote(url)} did not answer: {exc or type(exc).__name__}")]
    try:
        answer: Any = json.loads(bytes(body))
    except ValueError:
        return [rejected(f"the admission endpoint {quote(url)} answered JSON that does not parse")]
    fields = {str(key).lower(): value for key, value in answer.items()} if isinstance(answer, dict) else {}
    if not isinstance(fields.get("shouldbid"), bool):  # keys matched regardless of case, as Go's decoder does
        return [rejected(f'the admission endpoint {quote(url)} answered without a boolean "ShouldBid"')]
    if fields["shouldbid"]:
        return []
    return [rejected(str(fields.get("reason") or "the admission endpoint refused the job"))]
