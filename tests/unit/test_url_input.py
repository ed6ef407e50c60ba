"""``urlDownload`` inputs against a real HTTP server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from bacalhau.compute.inputs.base import InputError
from bacalhau.compute.inputs.urldownload import UrlDownloadInput, file_name
from bacalhau.models.spec import InputSource
from tests.http_recorder import QuietHandler

BODY = b"hello from the web\n"


class Handler(QuietHandler):
    failures_left: dict[str, int] = {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/data/file.txt":
            self._send(200, BODY)
        elif path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/data/file.txt")
            self.end_headers()
        elif path == "/export":
            self._send(200, BODY, {"Content-Disposition": 'attachment; filename="report.csv"'})
        elif path == "/flaky/file.txt":
            left = self.failures_left.get(path, 0)
            if left:
                self.failures_left[path] = left - 1
                self._send(503, b"busy")
            else:
                self._send(200, BODY)
        elif path == "/broken":
            self._send(500, b"always broken")
        elif path == "/big.bin":
            self._send(200, b"x" * 4096)
        elif path == "/streamed.bin":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(8):
                chunk = b"y" * 1024
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(404, b"not found")


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def url_input(url: str, target: str = "/inputs") -> InputSource:
    return InputSource.model_validate({"Source": {"Type": "urlDownload", "Params": {"URL": url}}, "Target": target})


async def fetch(provider: UrlDownloadInput, url: str, tmp_path: Path) -> Path:
    mount = await provider.prepare(url_input(url), tmp_path)
    assert mount.target == "/inputs"
    assert not mount.read_write
    return mount.source


async def test_downloads_into_a_directory_named_by_the_url(web: str, tmp_path: Path) -> None:
    folder = await fetch(UrlDownloadInput(), f"{web}/data/file.txt", tmp_path)
    assert [p.name for p in folder.iterdir()] == ["file.txt"]
    assert (folder / "file.txt").read_bytes() == BODY


async def test_follows_redirects_and_names_the_file_after_the_final_url(web: str, tmp_path: Path) -> None:
    folder = await fetch(UrlDownloadInput(), f"{web}/moved", tmp_path)
    assert (folder / "file.txt").read_bytes() == BODY


async def test_content_disposition_names_the_file(web: str, tmp_path: Path) -> None:
    folder = await fetch(UrlDownloadInput(), f"{web}/export", tmp_path)
    assert [p.name for p in folder.iterdir()] == ["report.csv"]


async def test_not_found_fails_at_once_naming_the_url(web: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"HTTP 404 Not Found from http://127\.0\.0\.1:\d+/missing\.txt") as info:
        await fetch(UrlDownloadInput(retries=5), f"{web}/missing.txt", tmp_path)
    assert not info.value.retryable, "another node would get the same 404"


async def test_transient_server_errors_are_retried(web: str, tmp_path: Path) -> None:
    Handler.failures_left["/flaky/file.txt"] = 2
    folder = await fetch(UrlDownloadInput(retries=3, backoff=0.01), f"{web}/flaky/file.txt", tmp_path)
    assert (folder / "file.txt").read_bytes() == BODY
    assert Handler.failures_left["/flaky/file.txt"] == 0


async def test_gives_up_after_the_retry_count(web: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"HTTP 500 Internal Server Error .* \(gave up after 2 attempts\)") as info:
        await fetch(UrlDownloadInput(retries=1, backoff=0.01), f"{web}/broken", tmp_path)
    assert info.value.retryable


async def test_declared_size_over_the_limit_is_refused(web: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"big\.bin is larger than the limit of 1\.0 kB \(at least 4\.1 kB\)"):
        await fetch(UrlDownloadInput(max_bytes=1000), f"{web}/big.bin", tmp_path)


async def test_streamed_body_over_the_limit_is_cut_off(web: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"streamed\.bin is larger than the limit"):
        await fetch(UrlDownloadInput(max_bytes=3000), f"{web}/streamed.bin", tmp_path)


async def test_unreachable_host_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"could not download http://127\.0\.0\.1:9/x.*gave up after 1 attempts"):
        await fetch(UrlDownloadInput(retries=0), "http://127.0.0.1:9/x", tmp_path)


@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd", "not a url"])
async def test_only_http_urls_are_accepted(url: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must use http or https"):
        await fetch(UrlDownloadInput(), url, tmp_path)


@pytest.mark.parametrize(
    ("url", "disposition", "expected"),
    [
        ("http://h/a/b/data.csv?x=1", "", "data.csv"),
        ("http://h/a/my%20file.txt", "", "my file.txt"),
        ("http://h/download", 'attachment; filename="r.json"', "r.json"),
        ("http://h/download", "attachment; filename*=UTF-8''na%C3%AFve.txt", "naïve.txt"),
        ("http://h/x", 'attachment; filename="../../etc/passwd"', "passwd"),
    ],
)
def test_file_names(url: str, disposition: str, expected: str) -> None:
    assert file_name(url, disposition) == expected


def test_a_url_without_a_name_gets_a_uuid() -> None:
    assert len(file_name("http://h/", "")) == 36


@pytest.mark.parametrize(
    ("url", "disposition", "expected"),
    [("http://h/x", 'attachment; filename=".."', "x"), ("http://h/x", "attachment; filename=a%00b", "x")],
)
def test_a_server_cannot_name_the_file_outside_its_folder(url: str, disposition: str, expected: str) -> None:
    assert file_name(url, disposition) == expected


@pytest.mark.parametrize("url", ["http://h/a/..", "http://h/a/%2e%2e", "http://h/%00"])
def test_a_url_cannot_name_the_file_outside_its_folder(url: str) -> None:
    assert len(file_name(url, "")) == 36
