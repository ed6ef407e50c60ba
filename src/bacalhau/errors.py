"""The errors we expect, as a hierarchy of domain classes.

The class says what went wrong in the domain's terms (the request is invalid, a thing is missing, a state conflicts);
the API alone turns a class into an HTTP status (``bacalhau.api.errors``), and the CLI prints the message and hint.
``code`` and ``component`` are the original's values for its error body (``APIError.Code``/``Component``), carried
so that our bodies read as the original's do; they never decide a status.

Code catches the precise class it can handle. Anything else that escapes to the API is unexpected: a 500, logged
once with its traceback.
"""

from __future__ import annotations

from typing import ClassVar


class BacalhauError(Exception):
    """An error we expected, with what to tell the user (``message``) and what to do next (``hint``)."""

    default_code: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        component: str = "Bacalhau",
        hint: str = "",
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.default_code if code is None else code
        self.component = component
        self.hint = hint
        self.details = details or {}


class InvalidRequest(BacalhauError):
    """The request cannot be served as sent: a malformed body, a bad parameter, a spec that breaks a rule or a
    limit. Sending it again unchanged will fail again."""

    default_code = "BadRequest"


class MalformedRequest(InvalidRequest):
    """A request the original refuses in its HTTP framework (a body or parameter that does not bind, a job that
    fails its submit-time checks): its error body says ``InternalError`` from ``APIServer``, though the client is at
    fault, and ours says the same."""

    default_code = "InternalError"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message, component="APIServer", hint=hint)


class Unauthorized(BacalhauError):
    """The caller did not prove who they are."""

    default_code = "Unauthorized"


class Forbidden(BacalhauError):
    """The caller is known but may not do this."""

    default_code = "Forbidden"


class NotFound(BacalhauError):
    default_code = "NotFound"


class Conflict(BacalhauError):
    """The request contradicts the current state: a taken ID, an ambiguous prefix, a transition the state machine
    does not allow, or a write that lost a race (callers inside the orchestrator usually retry those)."""

    default_code = "ResourceInUse"


class TooLarge(BacalhauError):
    """The request is bigger than a limit allows."""

    default_code = "RequestEntityTooLarge"


class Unavailable(BacalhauError):
    """A part needed to serve the request is not there right now; trying again later may work."""

    default_code = "ServiceUnavailable"


class NotLeader(Unavailable):
    """This orchestrator stopped leading while it worked: what it was doing is left to the one that leads now."""

    default_code = "NotLeader"


class Unsupported(BacalhauError):
    """Something this implementation does not provide."""

    default_code = "NotImplemented"


class ConfigurationError(BacalhauError):
    """A setting (file, environment, flag) is invalid, or the machine cannot do what it asks."""

    default_code = "ConfigurationError"


class StoreTooNew(ConfigurationError):
    """A store file was written by a newer release than this one: it is refused before anything writes to it, since
    this code cannot know what the newer schema means."""

    def __init__(self, path: str, version: int, known: int) -> None:
        super().__init__(
            f"the store {path} has schema version {version}, but this release of bacalhau knows versions up to "
            f"{known}: a newer release wrote it",
            component="Store",
            hint="upgrade bacalhau to that newer release, or start this one with another data dir (--data-dir or "
            "BACALHAU_DIR); the store was left as it was",
        )
        self.path = path
        self.version = version
        self.known = known


class JobNotFound(NotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job not found: {job_id}", component="JobStore")


class StateConflict(Conflict):
    """A job or execution is not in the state (or revision) a change requires."""

    def __init__(self, message: str, code: str = "ConflictJobState") -> None:
        super().__init__(message, code=code, component="JobStore")
