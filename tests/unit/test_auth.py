"""API users (api/auth.py): what each route needs, the original's rules for the list of users, reading credentials,
passwords plain and bcrypt, and the cache of checked passwords. Real bcrypt throughout (at its lowest cost, 4, where
only correctness is checked)."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import bcrypt
import pytest
from fastapi.routing import iter_route_contexts

from bacalhau.api import auth
from bacalhau.api.app import create_app
from bacalhau.api.auth import (
    NO_SSO,
    ROUTES,
    Authorizer,
    authorizer_for,
    check_users,
    required_capability,
    user_identifier,
)
from bacalhau.api.context import ApiContext
from bacalhau.config import AuthUserSection, BacalhauConfig
from bacalhau.config.keys import AUTH_USER
from bacalhau.errors import ConfigurationError, Forbidden, Unauthorized
from bacalhau.lib.metrics import NodeMetrics
from bacalhau.lib.throttle import Throttle
from tests.conftest import eventually

RJ, WJ, RN, WN, RA = "read:job", "write:job", "read:node", "write:node", "read:agent"
JOB, NODE = "/api/v1/orchestrator/jobs/{job_id}", "/api/v1/orchestrator/nodes/{node_id}"

# Every route of the API and what it needs (None: open to all). A route added without a line here fails the test
# below, so that nobody adds one without deciding who may use it.
EXPECTED: dict[tuple[str, str], str | None] = {
    **{(m, p): None for p in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc") for m in ("GET", "HEAD")},
    ("PUT", "/api/v1/orchestrator/jobs"): WJ,
    ("POST", "/api/v1/orchestrator/jobs"): WJ,
    ("GET", "/api/v1/orchestrator/jobs"): RJ,
    ("GET", JOB): RJ,
    ("DELETE", JOB): WJ,
    ("PUT", "/api/v1/orchestrator/jobs/diff"): WJ,  # a PUT, so a write, as in the original
    ("PUT", JOB + "/rerun"): WJ,
    ("GET", JOB + "/versions"): RJ,
    ("GET", JOB + "/executions"): RJ,
    ("GET", JOB + "/history"): RJ,
    ("GET", JOB + "/results"): RJ,
    ("GET", JOB + "/logs"): RJ,
    ("WEBSOCKET", JOB + "/logs"): RJ,
    ("GET", "/api/v1/ui/summary"): RJ,  # ours: the web UI's dashboard
    ("GET", "/api/v1/ui/jobs"): RJ,  # ours: the web UI's filtered job list
    ("GET", "/api/v1/orchestrator/nodes"): RN,
    ("POST", "/api/v1/orchestrator/nodes"): WN,
    ("GET", NODE): RN,
    ("PUT", NODE): WN,
    ("GET", "/api/v1/agent/alive"): None,
    ("GET", "/api/v1/agent/version"): None,
    ("GET", "/api/v1/agent/authconfig"): None,
    ("GET", "/api/v1/agent/node"): RA,
    ("GET", "/api/v1/agent/debug"): RA,
    ("GET", "/api/v1/agent/config"): RA,
    ("GET", "/api/v1/livez"): None,
    ("GET", "/api/v1/id"): RA,
    ("GET", "/api/v1/node_info"): RA,
    ("GET", "/api/v1/healthz"): RA,
    ("GET", "/metrics"): RA,  # Prometheus' scrape: what the node does, as /agent/debug
    ("POST", "/api/v1/version"): None,
    ("GET", "/"): None,
    **{(m, "/api/v1/requester/{rest:path}"): None for m in ("GET", "POST", "PUT", "DELETE")},
}


def concrete(path: str) -> str:
    return path.replace("{job_id}", "j-0d1f").replace("{node_id}", "n-5e7a").replace("{rest:path}", "list")


def test_every_route_of_the_api_needs_what_the_table_says() -> None:
    context = ApiContext(
        node_info=dict, node_state=dict, jobs=object(), nodes=object(), logs=object(), metrics=NodeMetrics()
    )
    app = create_app(context)
    routes = {
        (method, route.path) for route in iter_route_contexts(app.routes) for method in route.methods or ["WEBSOCKET"]
    }
    assert routes == set(EXPECTED), "a route was added or removed: say in EXPECTED what it needs"
    for (method, path), needed in EXPECTED.items():
        # A WebSocket's handshake is a GET, which is how the middleware asks.
        assert required_capability("GET" if method == "WEBSOCKET" else method, concrete(path)) == needed, path


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("HEAD", "/api/v1/orchestrator/jobs", WJ),  # only GET reads, as in the original
        ("OPTIONS", "/api/v1/agent/node", "write:agent"),
        ("PATCH", "/api/v1/orchestrator/nodes/n-1", WN),
        ("GET", "/api/v1/nope", WN),  # under no listed prefix: write:node
        ("GET", "/metrics/more", RA),  # under /metrics: read:agent, like /metrics itself
        ("GET", "/api/v1/agentx", WN),  # prefixes end at a "/": this is not under /api/v1/agent
        ("GET", "/api/v1/agent/alive/", None),
        ("GET", "/api/v1/agent/alive/more", None),
        ("GET", "/api/v1/auth/ClientKey", None),
        ("POST", "/api/v1/auth", None),
        ("GET", "//api/v1/agent/node", WN),
        ("GET", "/api/v1/orchestrator/jobs/../nodes", RJ),  # the router does not resolve "..", so nor does this
        ("PUT", "/api/v1/ui/summary", WJ),  # the web UI's routes only read
        ("GET", "/api/v1/uix", WN),
    ],
)
def test_paths_outside_the_routes(method: str, path: str, needed: str | None) -> None:
    assert required_capability(method, path) == needed


def test_the_original_prefixes_are_kept() -> None:
    original = {
        "/api/v1/auth": "open",
        "/api/v1/version": "open",
        "/api/v1/agent": "agent",
        "/api/v1/agent/alive": "open",
        "/api/v1/agent/version": "open",
        "/api/v1/agent/authconfig": "open",
        "/api/v1/orchestrator/jobs": "job",
        "/api/v1/orchestrator/nodes": "node",
    }
    assert {prefix: ROUTES[prefix] for prefix in original} == original


# ---- the list of users


def user(**fields: Any) -> AuthUserSection:
    fields.setdefault("Capabilities", [{"Actions": ["read:job"]}])
    return AuthUserSection(AUTH_USER.check(fields))


KEY = "P7D4CBB284634DD081FAC33868436ECCL"


@pytest.mark.parametrize(
    ("users", "message"),
    [
        (
            [user(Alias="both", Username="u", Password="p" * 10, APIKey=KEY)],
            "user 'both' has both username/password and API key, must have only one authentication method",
        ),
        (
            [user(Alias="none", Username="lonely")],
            "user 'none' has neither username/password nor API key, must have one authentication method",
        ),
        (
            [user(Username="u" * 101, Password="p" * 10)],
            f"username for user '{'u' * 101}' exceeds maximum length of 100 characters",
        ),
        ([user(Alias="blank", Username="   ", Password="p" * 10)], "username for user 'blank' should not be empty"),
        (
            [user(Username="snoopy-1", Password="p" * 10)],
            "username for user 'snoopy-1' must contain only alphanumeric characters (a-z, A-Z, 0-9)",
        ),
        (
            [user(Username="snoopy", Password="short")],
            "password for user 'snoopy' is too short, minimum length is 10 characters",
        ),
        (
            [user(Username="snoopy", Password="p" * 256)],
            "password for user 'snoopy' exceeds maximum length of 255 characters",
        ),
        (
            [user(APIKey="0123456789abcdefghij" + "k" * 236)],
            "API key for user 'API key ending in ...kkkkk' exceeds maximum length of 255 characters",
        ),
        (
            [user(APIKey="short-key-12345")],
            "API key for user 'API key ending in ...12345' is too short, minimum length is 20 characters",
        ),
        ([user(APIKey="abc")], "API key for user 'API key of 3 characters' is too short, minimum length is 20"),
        (
            [user(Alias="nocaps", APIKey=KEY, Capabilities=[])],
            "user 'nocaps' has no capabilities defined, must have at least one capability",
        ),
        (
            [user(Alias="Snoopy", APIKey=KEY), user(Alias="snoopy", Username="other", Password="p" * 10)],
            "duplicate alias detected: 'Snoopy' and 'snoopy' (aliases are case-insensitive)",
        ),
        (
            [user(Username="Snoopy", Password="p" * 10), user(Username="SNOOPY", Password="q" * 10)],
            "duplicate username detected: 'Snoopy' and 'SNOOPY' (usernames are case-insensitive)",
        ),
        (
            [user(Alias="first", APIKey=KEY), user(Alias="second", APIKey=KEY)],
            "duplicate API key detected for user 'second'",
        ),
        (
            # Lengths are counted in UTF-8 bytes, as Go counts them: 5 characters of 2 bytes are 10.
            [user(Username="u", Password="é" * 4)],
            "password for user 'u' is too short, minimum length is 10 characters",
        ),
    ],
)
def test_each_rule_for_users_is_the_original_one(users: list[AuthUserSection], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        check_users(users)
    assert raised.value.message.startswith(f"invalid API.Auth.Users: {message}")


def test_a_valid_list_and_what_it_warns_about() -> None:
    users = [
        user(Alias="a", Username="alpha", Password="p" * 10, Capabilities=[{"Actions": ["read:jobs", "*"]}]),
        user(Username="beta", Password="$2a$10$" + "!" * 53),  # a hash's shape, not a hash
        user(Username="gamma", Password="é" * 5),  # 10 bytes
        user(APIKey=KEY, Capabilities=[{"Actions": []}]),  # accepted, as in the original: it allows nothing
    ]
    check_users(users)
    assert Authorizer(users).warnings == [
        "user 'a' has the unknown capability 'read:jobs', which allows nothing",
        "the password of user 'beta' looks like a bcrypt hash but is not one: no login matches",
    ]


def test_keys_are_never_shown_whole() -> None:
    assert user_identifier(user(APIKey=KEY)) == "API key ending in ...6ECCL"
    assert user_identifier(user(APIKey="12345")) == "API key of 5 characters"
    assert user_identifier(user(Alias="al", Username="us", APIKey=KEY)) == "al"
    assert user_identifier(user(Username="us", APIKey=KEY)) == "us"


def test_what_this_node_cannot_enforce_stops_it() -> None:
    assert authorizer_for(BacalhauConfig.defaults().api.auth) is None
    for key, value in (("API.Auth.Oauth2.ProviderID", "okta"), ("API.Auth.AccessPolicyPath", "/etc/policy.rego")):
        with pytest.raises(ConfigurationError, match="supports neither SSO logins nor access policies"):
            authorizer_for(BacalhauConfig.defaults().with_settings({key: value}).api.auth)


# ---- requests


HASHED_PASSWORD = "bcrypt-password"


@pytest.fixture(scope="module")
def authorizer() -> Authorizer:
    cheap = bcrypt.hashpw(HASHED_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    return Authorizer(
        [
            user(
                Alias="snoopy",
                Username="snoopyusername",
                Password="snoopypassword",
                Capabilities=[{"Actions": [WJ, RJ]}],
            ),
            user(Username="reader", Password="readerpassword", Capabilities=[{"Actions": ["read:*"]}]),
            user(Username="writer", Password="writerpassword", Capabilities=[{"Actions": ["write:*"]}]),
            user(Username="admin", Password=cheap, Capabilities=[{"Actions": ["*"]}]),
            user(Username="yhash", Password=cheap.replace("$2b$", "$2y$"), Capabilities=[{"Actions": ["*"]}]),
            user(Username="plainish", Password="$2a$10$notahash", Capabilities=[{"Actions": ["*"]}]),
            user(APIKey=KEY, Capabilities=[{"Actions": [RN, RA, RJ]}]),
        ]
    )


def basic(credentials: bytes | str) -> bytes:
    raw = credentials.encode() if isinstance(credentials, str) else credentials
    return b"Basic " + base64.b64encode(raw)


def run(
    authorizer: Authorizer, headers: list[bytes], method: str = "GET", path: str = "/api/v1/orchestrator/jobs"
) -> str:
    return asyncio.run(authorizer.authorize(method, path, headers))


def refusal(
    authorizer: Authorizer, headers: list[bytes], method: str = "GET", path: str = "/api/v1/orchestrator/jobs"
) -> tuple[str, str]:
    with pytest.raises((Unauthorized, Forbidden)) as raised:
        run(authorizer, headers, method, path)
    error = raised.value
    assert error.component == "Authorizer"
    return error.code, error.details["reason"]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([], "Missing Authorization header"),
        ([basic("snoopyusername:snoopypassword")] * 2, "more than one Authorization header"),
        ([b"Basic !!!!"], "failed to decode basic auth credentials"),
        ([b"Basic YWI"], "failed to decode basic auth credentials"),  # no padding: Go's StdEncoding refuses it
        ([b"Basic"], "invalid basic auth credentials format"),
        ([basic("snoopyusername")], "invalid basic auth credentials format"),
        ([basic(":")], "invalid basic auth credentials"),
        ([basic("snoopyusername:wrong")], "invalid basic auth credentials"),
        ([basic("snoopyusername:")], "invalid basic auth credentials"),
        ([basic(b"\xff\xfe:\xff")], "invalid basic auth credentials"),  # not UTF-8
        ([basic("nobody:snoopypassword")], "invalid basic auth credentials"),
        ([basic("admin:" + "x" * 300)], "invalid basic auth credentials"),  # longer than any configured user's
        ([basic("admin:" + "x" * 73)], "invalid basic auth credentials"),  # more than bcrypt reads
        ([basic("plainish:$2a$10$notahash0")], "invalid basic auth credentials"),
        ([b"Bearer"], "empty API key provided"),
        ([b"Bearer "], "empty API key provided"),
        ([b"Bearer not-a-key-of-anyone-at-all"], "invalid API key"),
        ([b"Bearer " + KEY.encode() + b" extra"], "invalid API key"),
        ([b"Bearer " + KEY.encode().lower()], "invalid API key"),
        ([b"Bearer " + b"k" * 10_000], "invalid API key"),
        ([b"Bearer \xe9\xff\x80"], "invalid API key"),
        ([b"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"], NO_SSO),  # an SSO token: not configured here
        ([b"Bearer " + base64.urlsafe_b64encode(b"[" * 100_000) + b".e30.x"], "invalid API key"),  # too deep
        ([b"Digest username=snoopy"], "unsupported authentication method"),
        ([b"snoopyusername:snoopypassword"], "unsupported authentication method"),
        ([b""], "unsupported authentication method"),
    ],
)
def test_credentials_that_are_refused(authorizer: Authorizer, headers: list[bytes], reason: str) -> None:
    assert refusal(authorizer, headers) == ("Unauthorized", reason)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        (basic("snoopyusername:snoopypassword"), "snoopy"),
        (basic("SnoopyUserName:snoopypassword"), "snoopy"),  # usernames are case-insensitive
        (b"basic " + base64.b64encode(b"snoopyusername:snoopypassword"), "snoopy"),  # so are schemes (RFC 9110)
        (b"BEARER " + KEY.encode(), "API key ending in ...6ECCL"),
        (b"Bearer    " + KEY.encode(), "API key ending in ...6ECCL"),
        (basic(f"admin:{HASHED_PASSWORD}"), "admin"),
        (basic(f"yhash:{HASHED_PASSWORD}"), "yhash"),  # $2y$, as PHP and htpasswd write them
        (basic("plainish:$2a$10$notahash"), "plainish"),  # too short to be a hash: a plain password
        (basic("reader:readerpassword"), "reader"),
    ],
)
def test_credentials_that_are_accepted(authorizer: Authorizer, header: bytes, name: str) -> None:
    assert run(authorizer, [header]) == name


def test_open_routes_need_nothing_and_ignore_what_is_sent(authorizer: Authorizer) -> None:
    for headers in ([], [b"Digest nonsense"], [b"Bearer x", b"Bearer y"]):
        assert run(authorizer, headers, path="/api/v1/agent/alive") == ""


@pytest.mark.parametrize(
    ("header", "method", "path", "name", "needed"),
    [
        (basic("snoopyusername:snoopypassword"), "GET", "/api/v1/agent/node", "snoopy", RA),
        (b"Bearer " + KEY.encode(), "PUT", "/api/v1/orchestrator/jobs", "API key ending in ...6ECCL", WJ),
        (basic("reader:readerpassword"), "DELETE", "/api/v1/orchestrator/jobs/j-1", "reader", WJ),
        (basic("writer:writerpassword"), "GET", "/api/v1/orchestrator/jobs", "writer", RJ),
        (basic("reader:readerpassword"), "GET", "/api/v1/unlisted", "reader", WN),
    ],
)
def test_capabilities_that_are_missing(
    authorizer: Authorizer, header: bytes, method: str, path: str, name: str, needed: str
) -> None:
    reason = f"user '{name}' does not have the required capability '{needed}'"
    assert refusal(authorizer, [header], method, path) == ("Forbidden", reason)


def test_wildcards_grant_what_they_name(authorizer: Authorizer) -> None:
    reader, writer = basic("reader:readerpassword"), basic("writer:writerpassword")
    admin = basic(f"admin:{HASHED_PASSWORD}")
    for method, path in (("GET", "/api/v1/orchestrator/nodes"), ("GET", "/api/v1/agent/config")):
        assert run(authorizer, [reader], method, path) == "reader"
        assert run(authorizer, [admin], method, path) == "admin"
    for method, path in (("PUT", "/api/v1/orchestrator/nodes/n-1"), ("POST", "/api/v1/orchestrator/jobs")):
        assert run(authorizer, [writer], method, path) == "writer"
        assert run(authorizer, [admin], method, path) == "admin"
    assert run(authorizer, [writer], "GET", "/api/v1/anything-unlisted") == "writer"  # write:node


# ---- bcrypt passwords, checked once


def test_a_checked_password_is_remembered_by_digest_only() -> None:
    hashed = bcrypt.hashpw(HASHED_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    authorizer = Authorizer([user(Username="admin", Password=hashed)])

    async def scenario() -> None:
        wrong = basic("admin:wrong-password")
        for _ in range(2):
            with pytest.raises(Unauthorized):
                await authorizer.authorize("GET", "/api/v1/orchestrator/jobs", [wrong])
        assert not authorizer._verified  # a wrong password is checked again every time

        right = basic(f"admin:{HASHED_PASSWORD}")
        # Twenty requests at once with the same new credentials: one bcrypt check serves them all.
        requests = [
            asyncio.ensure_future(authorizer.authorize("GET", "/api/v1/orchestrator/jobs", [right])) for _ in range(20)
        ]
        await asyncio.sleep(0)
        assert len(authorizer._verifying) == 1
        assert await asyncio.gather(*requests) == ["admin"] * 20
        assert not authorizer._verifying
        [key] = authorizer._verified
        assert len(key) == 32 and HASHED_PASSWORD.encode() not in key and b"admin" not in key
        # Remembered: the user's own hash is no longer consulted.
        await authorizer.authorize("GET", "/api/v1/orchestrator/jobs", [right])
        assert list(authorizer._verified) == [key]

    asyncio.run(scenario())


def test_a_client_that_leaves_does_not_cancel_the_check_for_the_others() -> None:
    hashed = bcrypt.hashpw(HASHED_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    authorizer = Authorizer([user(Username="admin", Password=hashed)])
    right = [basic(f"admin:{HASHED_PASSWORD}")]

    async def scenario() -> None:
        first = asyncio.ensure_future(authorizer.authorize("GET", "/api/v1/orchestrator/jobs", right))
        second = asyncio.ensure_future(authorizer.authorize("GET", "/api/v1/orchestrator/jobs", right))
        await asyncio.sleep(0)
        first.cancel()
        assert await second == "admin"

    asyncio.run(scenario())


def test_the_cache_keeps_the_most_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 2)
    hashed = bcrypt.hashpw(HASHED_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    names = ("alpha", "beta", "gamma")
    authorizer = Authorizer([user(Username=name, Password=hashed) for name in names])

    async def login(name: str) -> None:
        await authorizer.authorize("GET", "/api/v1/orchestrator/jobs", [basic(f"{name}:{HASHED_PASSWORD}")])

    async def scenario() -> None:
        await login("alpha")
        await login("beta")
        await login("alpha")  # alpha is now the most recently used
        await login("gamma")  # evicts beta

    asyncio.run(scenario())
    remembered = [authorizer._digest(name.encode() + b"\0" + HASHED_PASSWORD.encode()) for name in ("alpha", "gamma")]
    assert list(authorizer._verified) == remembered


# ---- WebSocket handshakes: credentials offered as a subprotocol (browsers cannot set Authorization)


def protocol(credentials: bytes) -> bytes:
    return b"bacalhau.auth." + base64.urlsafe_b64encode(credentials).rstrip(b"=")


def handshake(*headers: tuple[bytes, bytes], kind: str = "websocket") -> dict[str, Any]:
    return {"type": kind, "path": "/api/v1/orchestrator/jobs/j-1/logs", "headers": list(headers)}


@pytest.mark.parametrize(
    ("headers", "found"),
    [
        ([], []),
        ([(b"sec-websocket-protocol", b"bacalhau.v1")], []),
        (
            [(b"sec-websocket-protocol", b"bacalhau.v1, " + protocol(b"Bearer " + KEY.encode()))],
            [b"Bearer " + KEY.encode()],
        ),
        # Any base64url length (no padding), and the header repeated.
        (
            [
                (b"sec-websocket-protocol", protocol(b"Basic YQ==")),
                (b"sec-websocket-protocol", protocol(b"Basic YWI=")),
            ],
            [b"Basic YQ==", b"Basic YWI="],
        ),
        ([(b"sec-websocket-protocol", b"bacalhau.auth.!!!")], [b""]),  # unreadable: refused as no method at all
        ([(b"sec-websocket-protocol", b"bacalhau.auth." + b"A" * 5000)], [b""]),  # longer than any credentials
        ([(b"sec-websocket-protocol", b"other.auth." + protocol(b"Bearer x")[14:])], []),
    ],
)
def test_websocket_credentials_are_read_from_the_offered_protocols(
    headers: list[tuple[bytes, bytes]], found: list[bytes]
) -> None:
    assert auth.websocket_credentials(handshake(*headers)) == found


def test_websocket_credentials_count_as_an_authorization_header(authorizer: Authorizer) -> None:
    key = b"Bearer " + KEY.encode()
    offered = (b"sec-websocket-protocol", b"bacalhau.v1," + protocol(key))
    assert run(authorizer, auth._authorization(handshake(offered))) == "API key ending in ...6ECCL"
    # Both ways at once is ambiguous, as two headers are; plain HTTP requests never read the protocol header.
    both = auth._authorization(handshake(offered, (b"authorization", key)))
    assert refusal(authorizer, both) == ("Unauthorized", "more than one Authorization header")
    assert auth._authorization(handshake(offered, kind="http")) == []
    unreadable = auth._authorization(handshake((b"sec-websocket-protocol", b"bacalhau.auth.%%%")))
    assert refusal(authorizer, unreadable) == ("Unauthorized", "unsupported authentication method")


# ---- the refusal log


async def test_refusals_are_logged_without_secrets_and_throttled(caplog: pytest.LogCaptureFixture) -> None:
    """One line per kind of refusal at once; the rest of a flood summed up when its interval ends."""
    refusals = Throttle(logging.getLogger("bacalhau.api.auth"), 0.05)
    scope = {"type": "http", "method": "PUT", "path": "/api/v1/orchestrator/jobs\n", "client": ("10.1.2.3", 4567)}
    forbidden = Forbidden(
        "Request Forbidden", details={"reason": "user 'snoopy' does not have the required capability 'write:job'"}
    )
    with caplog.at_level(logging.WARNING, logger="bacalhau.api.auth"):
        for _ in range(20):
            auth._log_refusal(refusals, scope, forbidden)
        auth._log_refusal(refusals, scope, Unauthorized("Request Unauthorized", details={"reason": "invalid API key"}))
        lines = [record.getMessage() for record in caplog.records]
        assert lines == [
            "refused PUT '/api/v1/orchestrator/jobs\\n' from 10.1.2.3:4567 (403): "
            "user 'snoopy' does not have the required capability 'write:job'",
            "refused PUT '/api/v1/orchestrator/jobs\\n' from 10.1.2.3:4567 (401): invalid API key",
        ]
        await eventually(lambda: len(caplog.records) == 3)  # the interval ends: the 19 others are summed up
    assert (
        caplog.records[-1]
        .getMessage()
        .endswith("(403): user 'snoopy' does not have the required capability 'write:job' (19 such in the last 0 s)")
    )
