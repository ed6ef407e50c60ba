"""The web UI's server (webui/server.py): what it serves, with which headers, where it tells the browser the API is,
and that no request path reaches a file outside its table."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest

from bacalhau.errors import ConfigurationError
from bacalhau.webui.server import ApiLocation, WebUiApp, check_backend, load_assets, parse_listen


class UiClient:
    """Requests straight to the ASGI app (httpx's transport), one event loop each."""

    def __init__(self, app: WebUiApp, base_url: str = "http://ui.example:8438") -> None:
        self.app = app
        self.base_url = base_url

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as client:
                return await client.request(method, path, **options)

        return asyncio.run(send())

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.request("GET", path, **options)

    def head(self, path: str, **options: Any) -> httpx.Response:
        return self.request("HEAD", path, **options)


@pytest.fixture(scope="module")
def app() -> WebUiApp:
    return WebUiApp(ApiLocation("http", "0.0.0.0", 1234))


@pytest.fixture
def client(app: WebUiApp) -> UiClient:
    return UiClient(app)


def asset_paths(page: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/assets/[^"]+)"', page)


def test_the_page_loads_its_assets_from_a_build_path_with_a_strict_policy(client: UiClient, app: WebUiApp) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "connect-src 'self' http://ui.example:1234 ws://ui.example:1234;" in policy
    assert "frame-ancestors 'none'" in policy and "form-action 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text and " style=" not in response.text  # nothing inline
    paths = asset_paths(response.text)
    assert paths and all(path.startswith(f"/assets/{app.build}/") for path in paths)
    assert client.get("/index.html").text == response.text


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("js/main.js", "text/javascript; charset=utf-8"),
        ("css/app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ],
)
def test_assets_have_their_types_and_are_cached_for_long(
    client: UiClient, app: WebUiApp, name: str, content_type: str
) -> None:
    response = client.get(f"/assets/{app.build}/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    again = client.get(f"/assets/{app.build}/{name}", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_every_module_the_pages_import_is_served(client: UiClient, app: WebUiApp) -> None:
    """The ES modules import each other by relative paths: each must resolve to a served file."""
    _, assets = load_assets()
    checked = 0
    for name, asset in assets.items():
        if not name.endswith(".js"):
            continue
        folder = name.rsplit("/", 1)[0]
        for target in re.findall(r"\bfrom '(\.[^']+)';", asset.body.decode()):
            parts = [*folder.split("/"), *target.split("/")]
            resolved: list[str] = []
            for part in parts:
                if part == "..":
                    resolved.pop()
                elif part != ".":
                    resolved.append(part)
            assert client.get(f"/assets/{app.build}/{'/'.join(resolved)}").status_code == 200, (name, target)
            checked += 1
    assert checked > 20  # (every page's imports, the multi-line ones too)


def test_no_script_builds_html_from_data() -> None:
    """What the API returns is attacker-controlled: the UI puts it in text nodes, never through HTML parsing."""
    _, assets = load_assets()
    for name, asset in assets.items():
        if name.endswith(".js"):
            text = asset.body.decode()
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
                assert sink not in text, (name, sink)


@pytest.mark.parametrize(
    "path",
    [
        "/assets/{build}/../server.py",
        "/assets/{build}/%2e%2e/server.py",
        "/assets/{build}/..%2fserver.py",
        "/assets/{build}//etc/passwd",
        "/assets/{build}/js/../../server.py",
        "/assets/{build}/index.html",  # the page only at /, with its policy
        "/assets/0000000000000000/js/main.js",  # another build
        "/assets/{build}/",
        "/../../etc/passwd",
        "/server.py",
        "/static/js/main.js",
        "/js/main.js",
        "/config.json/x",
    ],
)
def test_nothing_outside_the_table_is_served(client: UiClient, app: WebUiApp, path: str) -> None:
    response = client.get(path.format(build=app.build))
    assert response.status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"


def test_only_reads_are_answered(client: UiClient) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = client.request(method, "/")
        assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"
    head = client.head("/")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 100


@pytest.mark.parametrize(
    ("api", "host", "expected"),
    [
        (
            ApiLocation("http", "0.0.0.0", 1234),
            "ui.example:8438",
            "http://ui.example:1234",
        ),  # the host the browser used
        (ApiLocation("http", "", 1234), "10.1.2.3", "http://10.1.2.3:1234"),
        (ApiLocation("https", "::", 443), "[fd00::1]:8438", "https://[fd00::1]:443"),
        (ApiLocation("http", "127.0.0.1", 4321), "localhost:8438", "http://127.0.0.1:4321"),  # the API's own address
        (ApiLocation("http", "fd00::2", 1234), "ui.example", "http://[fd00::2]:1234"),
        (
            ApiLocation("http", "0.0.0.0", 1, "https://api.example/bacalhau"),
            "ui.example",
            "https://api.example/bacalhau",
        ),
    ],
)
def test_the_config_names_the_api_as_the_browser_reaches_it(api: ApiLocation, host: str, expected: str) -> None:
    client = UiClient(WebUiApp(api))
    response = client.get("/config.json", headers={"Host": host})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert json.loads(response.text) == {"api": expected}
    origin = expected.removesuffix("/bacalhau")  # the policy names the API's origin, whatever its path
    websocket = "ws" + origin.removeprefix("http")
    policy = client.get("/", headers={"Host": host}).headers["content-security-policy"]
    assert f"connect-src 'self' {origin} {websocket};" in policy


@pytest.mark.parametrize("host", ["evil.example; script-src *", "a b", "ui.example:8438:1", "[::1", "-bad.example", ""])
def test_a_host_header_no_browser_sends_is_refused(client: UiClient, host: str) -> None:
    response = client.get("/", headers={"Host": host})
    assert response.status_code == 400
    assert (
        "content-security-policy" in response.headers
        and "script-src *" not in response.headers["content-security-policy"]
    )


@pytest.mark.parametrize(
    ("backend", "problem"),
    [
        ("api.example:1234", "expected an http or https URL"),
        ("ftp://api.example", "expected an http or https URL"),
        ("javascript:alert(1)", "expected an http or https URL"),
        ("http://api.example/?x=1", "expected an http or https URL"),
        ("http://user:secret@api.example", "credentials"),
        ("http://api.example:99999", "bad port"),
    ],
)
def test_a_backend_is_an_address_a_browser_can_use(backend: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        check_backend(backend)


def test_backends_and_listen_addresses() -> None:
    assert check_backend("") == ""
    assert check_backend("https://api.example:8443/") == "https://api.example:8443"
    assert parse_listen("0.0.0.0:8438") == ("0.0.0.0", 8438)
    assert parse_listen(":8438") == ("0.0.0.0", 8438)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8438", "localhost:", "host:port", "host:70000"):
        with pytest.raises(ConfigurationError, match=r"invalid WebUI\.Listen"):
            parse_listen(bad)
