"""Typed errors carrying what the API needs to answer in the original's error format."""

from __future__ import annotations

_STATUS_BY_CODE = {
    "BadRequest": 400,
    "ValidationError": 400,
    "NotFound": 404,
    "Unauthorized": 401,
    "Forbidden": 403,
    "ServiceUnavailable": 503,
    "NotImplemented": 501,
    "ResourceExhausted": 429,
    "ResourceInUse": 409,
    "ConflictNodeState": 409,
    "MultipleNodesFound": 409,
    "MultipleJobsFound": 409,  # 500 in the original v1.5; an ambiguous ID prefix is the client's to resolve
}


class BacalhauError(Exception):
    """An error with a code and component, rendered by the API as ``{"Status","Message","Code","Component",...}``."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        component: str = "Bacalhau",
        status: int | None = None,
        hint: str = "",
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.component = component
        self.hint = hint
        self.details = details or {}
        self._status = status

    @property
    def http_status(self) -> int:
        if self._status is not None:
            return self._status
        return _STATUS_BY_CODE.get(self.code, 500)


def not_found(message: str, component: str) -> BacalhauError:
    return BacalhauError(message, code="NotFound", component=component)


def bad_request(message: str, component: str) -> BacalhauError:
    return BacalhauError(message, code="BadRequest", component=component)


class JobNotFound(BacalhauError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job not found: {job_id}", code="NotFound", component="JobStore")


class ConflictError(BacalhauError):
    """An optimistic-concurrency or state-machine conflict; callers usually retry."""

    def __init__(self, message: str, code: str = "ConflictJobState") -> None:
        super().__init__(message, code=code, component="JobStore")
