"""Who may use the API, and for what: the original's built-in users (its auth v2, ``pkg/authz``).

A user proves who they are with HTTP Basic (a username and its password, kept in the config plain or as a bcrypt
hash) or with ``Authorization: Bearer <API key>``, and may do what its capabilities name. What a request needs comes
from its path and method, by the one table ``ROUTES``: the longest listed path prefix names a resource (job, node,
agent) or an open route; GET reads and every other method writes; a path under no listed prefix needs write:node.

With no users configured there is no authorizer at all, and the API is open, as in the original.

A WebSocket handshake (the log stream) may carry its credentials as a subprotocol instead, since browsers cannot set
its Authorization header (see ``WS_PROTOCOL``): ours, not the original's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from bacalhau.api.errors import handle_bacalhau_error, status_of
from bacalhau.config import ApiAuthSection, AuthUserSection
from bacalhau.errors import ConfigurationError, Forbidden, Unauthorized
from bacalhau.lib.throttle import Throttle

log = logging.getLogger(__name__)

COMPONENT = "Authorizer"
OPEN = "open"
JOB, NODE, AGENT = "job", "node", "agent"
READ, WRITE = "read", "write"
CAPABILITIES = frozenset(f"{verb}:{resource}" for verb in (READ, WRITE) for resource in (JOB, NODE, AGENT))
WILDCARDS = {
    "*": CAPABILITIES,
    f"{READ}:*": frozenset(name for name in CAPABILITIES if name.startswith(f"{READ}:")),
    f"{WRITE}:*": frozenset(name for name in CAPABILITIES if name.startswith(f"{WRITE}:")),
}
UNLISTED = f"{WRITE}:{NODE}"  # what a path under no listed prefix needs (the original's "for safety")

# Path prefix -> the resource its routes act on, or OPEN. A prefix ends at a "/" of the path.
ROUTES: dict[str, str] = {
    # The original's table (pkg/authz/capabilities.go).
    "/api/v1/auth": OPEN,
    "/api/v1/version": OPEN,
    "/api/v1/agent": AGENT,
    "/api/v1/agent/alive": OPEN,
    "/api/v1/agent/version": OPEN,
    "/api/v1/agent/authconfig": OPEN,
    "/api/v1/orchestrator/jobs": JOB,
    "/api/v1/orchestrator/nodes": NODE,
    # Ours: the web UI's reads of jobs (api/routes/ui.py).
    "/api/v1/ui": JOB,
    # Ours. The v1.4 routes: liveness is open as /agent/alive is, the node's identity and state are the agent's, and
    # the retired requester API only ever answers 410. The API's description is public (the same on every node).
    "/api/v1/livez": OPEN,
    "/api/v1/id": AGENT,
    "/api/v1/node_info": AGENT,
    "/api/v1/healthz": AGENT,
    "/api/v1/requester": OPEN,
    "/openapi.json": OPEN,
    "/docs": OPEN,
    "/redoc": OPEN,
    "/metrics": AGENT,  # Prometheus' scrape: what the node is doing, as /api/v1/agent/debug
}
ROOT = "/"  # the v1.4 version document (a redirect to /api/v1/agent/version in v1.7+): open, like what it shows

USERNAME_MAX_LENGTH = 100
PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH = 10, 255
API_KEY_MIN_LENGTH, API_KEY_MAX_LENGTH = 20, 255
SHOWN_KEY_CHARACTERS = 5
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
BCRYPT_HASH_LENGTH = 60
BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; a longer password never matches (the original truncates)
BCRYPT_THREADS = 2  # a flood of wrong passwords keeps at most this many cores busy
VERIFIED_CACHE_SIZE = 1024
# The longest Basic credentials a configured user can have: base64 of "username:password".
MAX_BASIC_CREDENTIALS = 4 * -(-(USERNAME_MAX_LENGTH + 1 + PASSWORD_MAX_LENGTH) // 3)
REFUSAL_LOG_INTERVAL = 10.0  # seconds a kind of refusal is logged once in, with how often it recurred

_ALPHANUMERIC = re.compile(r"[a-zA-Z0-9]+")
_BCRYPT_HASH = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
NO_SSO = "OAuth2 authentication not configured on server"
CHALLENGE_HINT = "Unauthorized principal. Event has been recorded."
FORBIDDEN_HINT = "Check if user have access to this resource. Event has been recorded."


def required_capability(method: str, path: str) -> str | None:
    """The capability a request needs, or None for an open route."""
    if path == ROOT:
        return None
    prefix = path
    while prefix:
        resource = ROUTES.get(prefix)
        if resource is not None:
            return None if resource == OPEN else f"{READ if method == 'GET' else WRITE}:{resource}"
        prefix = prefix[: prefix.rfind("/")]
    return UNLISTED


# ---- users, as the configuration lists them


def user_identifier(user: AuthUserSection) -> str:
    """How messages and logs name a user: its alias, else its username, else the end of its API key."""
    if user.alias:
        return user.alias
    if user.username:
        return user.username
    if len(user.api_key) > SHOWN_KEY_CHARACTERS:
        return f"API key ending in ...{user.api_key[-SHOWN_KEY_CHARACTERS:]}"
    # The original shows such a key whole; this one is too short to be valid, and still a secret.
    return f"API key of {len(user.api_key)} characters"


def _length(text: str) -> int:
    """Lengths as the original measures them: in UTF-8 bytes."""
    return len(text.encode())


def _user_problem(user: AuthUserSection) -> str:
    """What is wrong with one user, in the original's words ('' if nothing)."""
    name = user_identifier(user)
    has_password, has_key = bool(user.username and user.password), bool(user.api_key)
    if has_password and has_key:
        return f"user '{name}' has both username/password and API key, must have only one authentication method"
    if not has_password and not has_key:
        return f"user '{name}' has neither username/password nor API key, must have one authentication method"
    if user.username:
        username = _length(user.username.strip())
        if username > USERNAME_MAX_LENGTH:
            return f"username for user '{name}' exceeds maximum length of {USERNAME_MAX_LENGTH} characters"
        if username == 0:
            return f"username for user '{name}' should not be empty"
        if not _ALPHANUMERIC.fullmatch(user.username):
            return f"username for user '{name}' must contain only alphanumeric characters (a-z, A-Z, 0-9)"
    for what, value, shortest, longest in (
        ("password", user.password, PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH),
        ("API key", user.api_key, API_KEY_MIN_LENGTH, API_KEY_MAX_LENGTH),
    ):
        if value and _length(value) < shortest:
            return f"{what} for user '{name}' is too short, minimum length is {shortest} characters"
        if value and _length(value) > longest:
            return f"{what} for user '{name}' exceeds maximum length of {longest} characters"
    if not user.capabilities:
        return f"user '{name}' has no capabilities defined, must have at least one capability"
    return ""


def check_users(users: Sequence[AuthUserSection]) -> None:
    """Refuse the list as the original does: the first user that breaks a rule, or the first duplicate alias,
    username (both case-insensitive) or API key."""
    aliases: dict[str, str] = {}
    usernames: dict[str, str] = {}
    keys: set[str] = set()
    for user in users:
        problem = _user_problem(user)
        if not problem and user.alias.lower() in aliases:
            problem = (
                f"duplicate alias detected: '{aliases[user.alias.lower()]}' and '{user.alias}' "
                "(aliases are case-insensitive)"
            )
        if not problem and user.username.lower() in usernames:
            problem = (
                f"duplicate username detected: '{usernames[user.username.lower()]}' and '{user.username}' "
                "(usernames are case-insensitive)"
            )
        if not problem and user.api_key in keys:
            problem = f"duplicate API key detected for user '{user_identifier(user)}'"
        if problem:
            raise ConfigurationError(
                f"invalid API.Auth.Users: {problem}", hint="correct the user in the node's config and start it again"
            )
        if user.alias:
            aliases[user.alias.lower()] = user.alias
        if user.username:
            usernames[user.username.lower()] = user.username
        if user.api_key:
            keys.add(user.api_key)


def is_bcrypt_hash(password: str) -> bool:
    """The original's test: a bcrypt prefix and at least a hash's length (anything else is a plain password)."""
    return password.startswith(BCRYPT_PREFIXES) and len(password) >= BCRYPT_HASH_LENGTH


def user_warnings(users: Sequence[AuthUserSection]) -> list[str]:
    """What is accepted (as the original accepts it) but cannot be what was meant."""
    warnings = []
    for user in users:
        name = user_identifier(user)
        for action in sorted({a for c in user.capabilities for a in c.actions} - CAPABILITIES - WILDCARDS.keys()):
            warnings.append(f"user '{name}' has the unknown capability {action!r}, which allows nothing")
        if is_bcrypt_hash(user.password) and not _BCRYPT_HASH.fullmatch(user.password):
            warnings.append(f"the password of user '{name}' looks like a bcrypt hash but is not one: no login matches")
    return warnings


def _granted(user: AuthUserSection) -> frozenset[str]:
    granted: set[str] = set()
    for capability in user.capabilities:
        for action in capability.actions:
            granted |= WILDCARDS.get(action, {action} & CAPABILITIES)
    return frozenset(granted)


# ---- authenticating and authorizing a request


@dataclass(frozen=True, slots=True)
class _User:
    name: str
    granted: frozenset[str]
    password: bytes  # a bcrypt hash, or the keyed digest of a plain password (b"" for an API key's user)
    bcrypt: bool


def _unauthorized(reason: str) -> Unauthorized:
    return Unauthorized("Request Unauthorized", component=COMPONENT, hint=CHALLENGE_HINT, details={"reason": reason})


def _forbidden(reason: str) -> Forbidden:
    return Forbidden("Request Forbidden", component=COMPONENT, hint=FORBIDDEN_HINT, details={"reason": reason})


def _bcrypt_matches(password: bytes, hashed: bytes) -> bool:
    import bcrypt  # only a node with bcrypt passwords needs it, and only when one is presented

    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # not a hash bcrypt can read (user_warnings said so at start)
        return False


def _looks_like_jwt(token: bytes) -> bool:
    """The original's test for an SSO token: three dot-separated parts, the first two base64url JSON objects."""
    parts = token.split(b".")
    if len(parts) != 3:
        return False
    try:
        decoded = [json.loads(base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))) for part in parts[:2]]
    except (ValueError, RecursionError):  # not base64, not JSON, or JSON nested too deep to read
        return False
    return all(isinstance(item, dict) for item in decoded)


class Authorizer:
    """The configured users, and the decision for each request.

    Secrets are held as keyed digests under a key made at start: an API key is found by its digest (so that the
    lookup's time says nothing of how close a guess came), and a plain password is compared by digest (so that
    neither its content nor its length shows in the time). A bcrypt hash is checked in a small thread pool, off the
    event loop; the digest of each pair of username and password that matched is kept (never the password), so that
    a client sending the same credentials again costs a digest, not another bcrypt.
    """

    def __init__(self, users: Sequence[AuthUserSection]) -> None:
        check_users(users)
        self.warnings = user_warnings(users)
        self._secret = os.urandom(32)
        self._by_key: dict[bytes, _User] = {}
        self._by_username: dict[bytes, _User] = {}
        for user in users:
            hashed = is_bcrypt_hash(user.password)
            password = user.password.encode() if hashed else self._digest(user.password.encode())
            entry = _User(user_identifier(user), _granted(user), password, hashed)
            if user.api_key:
                self._by_key[self._digest(user.api_key.encode())] = entry
            else:
                self._by_username[user.username.lower().encode()] = entry
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._verifying: dict[bytes, asyncio.Future[bool]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def _digest(self, data: bytes) -> bytes:
        """A keyed BLAKE2s: a MAC as sound as HMAC-SHA256 for this, at a third of its cost per request."""
        return hashlib.blake2s(data, key=self._secret).digest()

    async def authorize(self, method: str, path: str, authorization: Sequence[bytes]) -> str:
        """Who the request comes from ('' on an open route); raises Unauthorized or Forbidden to refuse it."""
        needed = required_capability(method, path)
        if needed is None:
            return ""
        user = await self._authenticate(authorization)
        if needed not in user.granted:
            raise _forbidden(f"user '{user.name}' does not have the required capability '{needed}'")
        return user.name

    async def _authenticate(self, authorization: Sequence[bytes]) -> _User:
        if not authorization:
            raise _unauthorized("Missing Authorization header")
        if len(authorization) > 1:  # which one counts would depend on who reads them: a proxy may take the last
            raise _unauthorized("more than one Authorization header")
        scheme, _, credentials = authorization[0].partition(b" ")
        credentials = credentials.lstrip(b" ")
        scheme = scheme.lower()  # schemes are case-insensitive (RFC 9110); the original takes only "Basic"/"Bearer"
        if scheme == b"bearer":
            return self._api_key_user(credentials)
        if scheme == b"basic":
            return await self._basic_user(credentials)
        raise _unauthorized("unsupported authentication method")

    def _api_key_user(self, key: bytes) -> _User:
        if not key:
            raise _unauthorized("empty API key provided")
        user = self._by_key.get(self._digest(key)) if len(key) <= API_KEY_MAX_LENGTH else None
        if user is None:
            raise _unauthorized(NO_SSO if _looks_like_jwt(key) else "invalid API key")
        return user

    async def _basic_user(self, credentials: bytes) -> _User:
        if len(credentials) > MAX_BASIC_CREDENTIALS:
            raise _unauthorized("invalid basic auth credentials")
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except binascii.Error:
            raise _unauthorized("failed to decode basic auth credentials") from None
        username, colon, password = decoded.partition(b":")
        if not colon:
            raise _unauthorized("invalid basic auth credentials format")
        username = username.lower()
        user = self._by_username.get(username)
        if user is None or not await self._password_matches(user, username, password):
            raise _unauthorized("invalid basic auth credentials")
        return user

    async def _password_matches(self, user: _User, username: bytes, password: bytes) -> bool:
        if not user.bcrypt:
            return hmac.compare_digest(self._digest(password), user.password)
        if not password or len(password) > BCRYPT_MAX_PASSWORD_BYTES:
            return False
        key = self._digest(username + b"\0" + password)  # usernames are alphanumeric: the pair is unambiguous
        if key in self._verified:
            self._verified.move_to_end(key)
            return True
        checking = self._verifying.get(key)
        if checking is None:  # the first request with these credentials checks them for all that come meanwhile
            if self._pool is None:
                self._pool = ThreadPoolExecutor(BCRYPT_THREADS, thread_name_prefix="bcrypt")
            checking = asyncio.get_running_loop().run_in_executor(self._pool, _bcrypt_matches, password, user.password)
            self._verifying[key] = checking
            checking.add_done_callback(lambda done: self._checked(key, done))
        return await asyncio.shield(checking)  # a client that leaves does not cancel the check for the others

    def _checked(self, key: bytes, done: asyncio.Future[bool]) -> None:
        del self._verifying[key]
        if not done.cancelled() and done.exception() is None and done.result():
            self._verified[key] = None
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)


def authorizer_for(auth: ApiAuthSection) -> Authorizer | None:
    """The node's authorizer: None without users (the API is open, as in the original). A setting that asks for
    restrictions this node cannot enforce stops it, rather than leaving the API open."""
    for key, value in (("Oauth2.ProviderID", auth.oauth2.provider_id), ("AccessPolicyPath", auth.access_policy_path)):
        if value:
            raise ConfigurationError(
                f"API.Auth.{key} is set, but this node supports neither SSO logins nor access policies",
                hint=f"remove API.Auth.{key}, and give the API's users in API.Auth.Users",
            )
    return Authorizer(auth.users) if auth.users else None


def sso_settings(auth: ApiAuthSection) -> dict[str, Any]:
    """What /agent/authconfig offers: the OAuth2 settings that are set (they are public by design)."""
    return {key: value for key, value in auth.oauth2.to_wire().items() if value}


# ---- the ASGI layer


class _RefusedHandshakes(logging.Filter):
    """uvicorn (0.54) takes a WebSocket handshake refused with an HTTP response (ASGI's denial response) for one the
    application never answered, and logs an error after sending the refusal: drop that line for the handshakes
    refused here (they are logged, throttled, as refusals), and only for them."""

    UNANSWERED = "ASGI callable returned without completing handshake."
    refused: ContextVar[bool] = ContextVar("refused_handshake", default=False)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == self.UNANSWERED and self.refused.get())


_REFUSED_HANDSHAKES = _RefusedHandshakes()


# Browsers cannot put an Authorization header on a WebSocket handshake, and credentials in a URL end up in logs. So a
# WebSocket client may instead offer, among its subprotocols (the Sec-WebSocket-Protocol header), the value of an
# Authorization header in base64url without padding after this prefix (all token characters, as the header needs),
# beside WS_PROTOCOL, which the server then echoes as the protocol it chose (never the credentials).
WS_PROTOCOL = "bacalhau.v1"
WS_CREDENTIALS_PREFIX = b"bacalhau.auth."
MAX_WS_CREDENTIALS = 4 * -(-(len("Bearer ") + API_KEY_MAX_LENGTH + MAX_BASIC_CREDENTIALS) // 3)


def websocket_credentials(scope: Scope) -> list[bytes]:
    """The Authorization values a WebSocket handshake offers as subprotocols (see WS_PROTOCOL); one that cannot be
    read is an empty value, refused as an unsupported method."""
    found = []
    for name, value in scope["headers"]:
        if name != b"sec-websocket-protocol":
            continue
        for offered in value.split(b","):
            offered = offered.strip()
            if not offered.startswith(WS_CREDENTIALS_PREFIX):
                continue
            encoded = offered[len(WS_CREDENTIALS_PREFIX) :]
            try:
                if len(encoded) > MAX_WS_CREDENTIALS:
                    raise ValueError("too long")
                found.append(base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4)))
            except ValueError:  # (binascii.Error is one)
                found.append(b"")
    return found


def _authorization(scope: Scope) -> list[bytes]:
    headers = [value for name, value in scope["headers"] if name == b"authorization"]
    if scope["type"] == "websocket":
        headers += websocket_credentials(scope)  # both ways at once: "more than one Authorization header"
    return headers


def _log_refusal(refusals: Throttle, scope: Scope, refusal: Unauthorized | Forbidden) -> None:
    """One warning per kind of refusal (its reason, naming the user), throttled so that a flood of refused requests
    cannot flood the log."""
    client = scope.get("client")
    reason = refusal.details["reason"]
    refusals.warn(
        reason,
        f"refused {scope.get('method', 'GET')} {scope['path']!r} from "
        f"{f'{client[0]}:{client[1]}' if client else 'an unknown address'} ({status_of(refusal)}): {reason}",
    )


class AuthMiddleware:
    """Refuses what a request's user may not do before anything reads its body or acts on it. It runs after the
    request ID is set and CORS is answered, so that refusals quote the ID and browsers can read them."""

    def __init__(self, app: ASGIApp, authorizer: Authorizer) -> None:
        self.app = app
        self.authorizer = authorizer
        self._refusals = Throttle(log, REFUSAL_LOG_INTERVAL)
        logging.getLogger("uvicorn.error").addFilter(_REFUSED_HANDSHAKES)  # once: the same filter is not added twice

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            try:
                # A WebSocket's scope has no method: its handshake is a GET.
                await self.authorizer.authorize(scope.get("method", "GET"), scope["path"], _authorization(scope))
            except (Unauthorized, Forbidden) as refusal:
                _log_refusal(self._refusals, scope, refusal)
                if scope["type"] == "websocket":
                    _RefusedHandshakes.refused.set(True)  # seen by uvicorn's log call in this same task
                response = await handle_bacalhau_error(HTTPConnection(scope), refusal)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def document_security(document: dict[str, Any]) -> None:
    """State in the OpenAPI document what each operation needs, and that it may be refused."""
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["basic"] = {"type": "http", "scheme": "basic", "description": "A username and password of API.Auth.Users"}
    schemes["apiKey"] = {"type": "http", "scheme": "bearer", "description": "An API key of API.Auth.Users"}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            needed = required_capability(method.upper(), path)
            if needed is None:
                continue
            operation["security"] = [{"basic": []}, {"apiKey": []}]
            operation["description"] = f"{operation.get('description', '')}\n\nNeeds the capability `{needed}`.".strip()
            responses = operation.setdefault("responses", {})
            responses["401"] = {"description": "No credentials, or credentials of no user", "content": error}
            responses["403"] = {"description": f"The user lacks the capability {needed}", "content": error}
