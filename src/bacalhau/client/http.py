"""A small HTTP client for the CLI: talks to any Bacalhau API (ours or the original), tolerant of unknown fields."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import httpx

from bacalhau.client.auth import Credentials, explain_refusal
from bacalhau.errors import BacalhauError
from bacalhau.lib.tls import client_context
from bacalhau.version import API_VERSION

if TYPE_CHECKING:
    from bacalhau.models.execution import Execution
    from bacalhau.models.history import JobHistory
    from bacalhau.models.job import Job
    from bacalhau.models.node import BuildVersionInfo, NodeState
    from bacalhau.models.spec import SpecConfig

# The wire models are imported by the methods that return them: a command that only shows what the API answers
# (job list) starts without building them.


class ApiError(BacalhauError):
    """An error answered by the server (``status``, its HTTP status), or the failure to reach it (``status`` 0)."""

    def __init__(self, message: str, *, status: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.status = status


JOBS = "/api/v1/orchestrator/jobs"


def _job_path(job_ref: str, suffix: str = "") -> str:
    """A job's route: its reference is one path segment, whatever it contains."""
    return f"{JOBS}/{quote(job_ref, safe='')}{suffix}"


def _server_error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "Message" in body:
        details = body.get("Details")
        return ApiError(
            str(body["Message"]),
            code=str(body.get("Code", "")),
            component=str(body.get("Component", "")),
            status=response.status_code,
            hint=str(body.get("Hint", "")),
            details={str(k): str(v) for k, v in details.items()} if isinstance(details, dict) else None,
        )
    if isinstance(body, dict) and "Error" in body:
        return ApiError(str(body["Error"]), status=response.status_code)
    text = response.text.strip() or response.reason_phrase
    return ApiError(f"server answered {response.status_code}: {text}", status=response.status_code)


UNREACHABLE_HINT = (
    "start a node with 'bacalhau serve', or point the CLI at one with --api-host/--api-port "
    "(BACALHAU_API_HOST/BACALHAU_API_PORT) or --profile"
)


UNTRUSTED_HINT = (
    "trust the CA that signed it (or the node's own certificate, if it made one) with -c API.TLS.CAFile=<file> "
    "(BACALHAU_API_TLS_CAFILE), or, for tests only, skip the check with API.TLS.Insecure=true"
)


def _tls_failure(base_url: str, exc: BaseException) -> ApiError | None:
    """What a failure to reach the API says about TLS, if it was TLS that failed."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return ApiError(
            f"the Bacalhau API at {base_url} presented a certificate this client does not trust: "
            f"{cause.verify_message}",
            code="NetworkFailure",
            hint=UNTRUSTED_HINT,
        )
    if isinstance(cause, ssl.SSLError):
        return ApiError(
            f"cannot talk TLS with the Bacalhau API at {base_url}: {cause.reason or cause}",
            code="NetworkFailure",
            hint="if the node serves plain HTTP, connect with http:// and without API.TLS.UseTLS",
        )
    if base_url.startswith("http:") and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return ApiError(
            f"the Bacalhau API at {base_url} closed the connection: {exc}",
            code="NetworkFailure",
            hint="if the node serves its API over TLS, connect with https:// or -c API.TLS.UseTLS=true",
        )
    return None


class ApiClient:
    """``ca_file`` and ``insecure`` say how an https server's certificate is checked (see
    ``bacalhau.lib.tls.client_context``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        credentials: Credentials | None = None,
        ca_file: str = "",
        insecure: bool = False,
        unreachable_hint: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._unreachable_hint = unreachable_hint or UNREACHABLE_HINT
        headers = {"X-Bacalhau-Git-Version": API_VERSION, "Content-Type": "application/json"}
        self._credentials = credentials
        if credentials is not None:
            headers["Authorization"] = credentials.authorization
        self._tls = client_context(ca_file, insecure, "API.TLS.CAFile")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers, verify=self._tls)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "", False)}
        try:
            response = self._http.request(method, path, params=clean, json=body)
        except httpx.HTTPError as exc:
            failure = _tls_failure(self.base_url, exc)
            if failure is None and isinstance(exc, httpx.ConnectError):
                failure = ApiError(
                    f"cannot reach the Bacalhau API at {self.base_url}",
                    code="NetworkFailure",
                    hint=self._unreachable_hint,
                )
            raise failure or ApiError(
                f"request to {self.base_url}{path} failed: {exc}", code="NetworkFailure"
            ) from None
        if response.status_code >= 400:
            raise self._error(response)
        return response.json() if response.content else None

    def _error(self, response: httpx.Response) -> ApiError:
        error = _server_error(response)
        if error.status not in (401, 403):
            return error
        message, hint = explain_refusal(error, error.status, self._credentials)
        return ApiError(message, code=error.code, component=error.component, status=error.status, hint=hint)

    # ---- jobs (a job reference is its ID, its name in ``namespace`` or a unique ID prefix)
    def submit(self, job: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PUT", JOBS, body={"Job": job, "Force": force})
        return result

    def diff(self, job: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PUT", JOBS + "/diff", body={"Job": job})
        return result

    def get_job(self, job_ref: str, include: str = "", *, namespace: str = "", version: int = 0) -> dict[str, Any]:
        params = {"include": include, "namespace": namespace, "job_version": version or None}
        result: dict[str, Any] = self.request("GET", _job_path(job_ref), params=params)
        return result

    def job(self, job_ref: str, *, namespace: str = "", version: int = 0) -> Job:
        from bacalhau.models.job import Job

        return Job.model_validate(self.get_job(job_ref, namespace=namespace, version=version)["Job"])

    def list_jobs(self, **params: Any) -> tuple[list[Job], str]:
        from bacalhau.models.job import Job

        documents, token = self.list_job_documents(**params)
        return [Job.model_validate(item) for item in documents], token

    def list_job_documents(self, **params: Any) -> tuple[list[dict[str, Any]], str]:
        """A page of jobs as the API sends them (JSON objects), and the next page's token."""
        body = self.request("GET", JOBS, params=params)
        return list(body.get("Items") or []), str(body.get("NextToken") or "")

    def stop_job(self, job_ref: str, reason: str, *, namespace: str = "") -> str:
        body = self.request("DELETE", _job_path(job_ref), params={"namespace": namespace}, body={"reason": reason})
        return str(body.get("EvaluationID", ""))

    def rerun(self, job_ref: str, *, namespace: str = "", version: int = 0, reason: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PUT",
            _job_path(job_ref, "/rerun"),
            params={"namespace": namespace},
            body={"JobVersion": version, "Reason": reason},
        )
        return result

    def versions(self, job_ref: str, *, namespace: str = "", page_size: int = 100) -> list[Job]:
        """Every version of a job, oldest first, fetched a page at a time."""
        from bacalhau.models.job import Job

        versions: list[Job] = []
        params: dict[str, Any] = {"namespace": namespace, "limit": page_size}
        while True:
            body = self.request("GET", _job_path(job_ref, "/versions"), params=params)
            versions += [Job.model_validate(item) for item in body.get("Items") or []]
            if not body.get("NextToken"):
                return versions
            params = {"namespace": namespace, "next_token": body["NextToken"]}

    def executions(self, job_ref: str, **params: Any) -> list[Execution]:
        from bacalhau.models.execution import Execution

        body = self.request("GET", _job_path(job_ref, "/executions"), params=params)
        return [Execution.model_validate(item) for item in body.get("Items") or []]

    def history(self, job_ref: str, **params: Any) -> tuple[list[JobHistory], str]:
        from bacalhau.models.history import JobHistory

        body = self.request("GET", _job_path(job_ref, "/history"), params=params)
        items = [JobHistory.model_validate(item) for item in body.get("Items") or []]
        return items, str(body.get("NextToken") or "")

    def results(self, job_ref: str, *, namespace: str = "", version: int = 0) -> list[SpecConfig]:
        from bacalhau.models.spec import SpecConfig

        params = {"namespace": namespace, "job_version": version or None}
        body = self.request("GET", _job_path(job_ref, "/results"), params=params)
        return [SpecConfig.model_validate(item) for item in body.get("Items") or []]

    def logs(
        self,
        job_ref: str,
        *,
        follow: bool,
        tail: bool,
        execution_id: str = "",
        namespace: str = "",
        version: int = 0,
    ) -> Iterator[str]:
        """An execution's output lines, over the logs WebSocket."""
        # Imported here: every other command would pay for loading websockets (about 20 ms) at start.
        from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidHandshake, InvalidStatus
        from websockets.sync.client import connect

        params = {"follow": str(follow).lower(), "tail": str(tail).lower(), "execution_id": execution_id}
        if namespace:
            params["namespace"] = namespace
        if version:
            params["job_version"] = str(version)
        url = self.base_url.replace("http", "ws", 1) + _job_path(job_ref, f"/logs?{urlencode(params)}")
        try:
            auth = (
                {"Authorization": self._http.headers["Authorization"]} if "Authorization" in self._http.headers else {}
            )
            tls = self._tls if url.startswith("wss:") else None
            with connect(url, open_timeout=10, max_size=None, additional_headers=auth, ssl=tls) as socket:
                for frame in socket:
                    message = json.loads(frame)
                    if message.get("error"):
                        raise ApiError(str(message["error"]), code="NotFound")
                    yield str(message["value"]["Line"])
        except ConnectionClosedOK:
            return
        except InvalidStatus as exc:  # refused at the handshake (credentials, a job that does not exist, ...)
            raise self._error(httpx.Response(exc.response.status_code, content=bytes(exc.response.body))) from None
        except (OSError, InvalidHandshake, ConnectionClosedError) as exc:
            raise _tls_failure(self.base_url, exc) or ApiError(
                f"cannot stream the logs from {self.base_url}: {exc}", code="NetworkFailure"
            ) from None

    # ---- nodes and agent
    def nodes(self, **params: Any) -> list[NodeState]:
        from bacalhau.models.node import NodeState

        body = self.request("GET", "/api/v1/orchestrator/nodes", params=params)
        return [NodeState.model_validate(item) for item in body.get("Nodes") or []]

    def alive(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/agent/alive")
        return result

    def version(self) -> BuildVersionInfo:
        from bacalhau.models.node import BuildVersionInfo

        return BuildVersionInfo.model_validate(self.request("GET", "/api/v1/agent/version"))

    def agent_node(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/agent/node")
        return result

    def agent_config(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/agent/config")
        return result

    def agent_debug(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/agent/debug")
        return result

    def auth_config(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/agent/authconfig")
        return result
