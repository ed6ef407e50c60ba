"""Browser tests of the web UI: a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, installed by
``scripts/browser``) driven by Selenium against real ``bacalhau serve`` processes.

Every test waits on a condition with a deadline (WebDriverWait), never a fixed sleep. Screenshots of each page, at
1280x800 and at a phone's width, go to ``webui-screenshots`` in the run's base temporary folder (``--basetemp``)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServeProcess, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 30.0  # seconds any one condition may take on a busy machine
DESKTOP = (1280, 800)
PHONE = (390, 844)

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover (selenium is in the test extra)
    webdriver = None


def _missing() -> str:
    if webdriver is None:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing: install Debian's {package} (scripts/browser does, as root)"
    return ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _missing()
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UiNode:
    """A node that serves the web UI, and where."""

    def __init__(self, node: ServeProcess, ui_port: int) -> None:
        self.node = node
        self.ui = f"http://127.0.0.1:{ui_port}"

    @property
    def api(self) -> str:
        return self.node.url

    def wait_ready(self) -> UiNode:
        def answers() -> bool:
            try:
                return httpx.get(self.ui + "/config.json", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, WAIT, f"the web UI at {self.ui}")
        return self


def start_ui_node(
    data_dir: Path, *args: str, settings: tuple[str, ...] = (), config: dict[str, Any] | None = None
) -> UiNode:
    """``bacalhau serve ARGS --webui`` with ``-c`` for each of ``settings`` and a config file of ``config``."""
    port = free_port()
    node = ServeProcess(data_dir, *args, "--webui")
    node.config += ["-c", f"WebUI.Listen=127.0.0.1:{port}"]
    for setting in settings:
        node.config += ["-c", setting]
    if config:
        node.with_config(config)
    node.start()
    return UiNode(node, port).wait_ready()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "webui-screenshots"
    folder.mkdir(exist_ok=True)
    return folder


class Browser:
    """One headless Chromium, with what the tests ask of it."""

    def __init__(self, driver: WebDriver, screenshots: Path) -> None:
        self.driver = driver
        self.screenshots = screenshots
        self.failures = 0

    def open(self, url: str) -> None:
        self.driver.get(url)

    def wait(self, condition: Callable[[WebDriver], Any], timeout: float = WAIT, message: str = "") -> Any:
        """``condition``'s first truthy result; at the deadline, a failure that shows the page (a screenshot
        beside the others, and its text)."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition, message)
        except TimeoutException:
            self.failures += 1
            shot = self.screenshots / f"timeout-{self.failures}.png"
            self.driver.save_screenshot(str(shot))
            page = self.text("body")[:2000]
            raise AssertionError(f"timed out waiting for {message or condition}; page ({shot}):\n{page}") from None

    def text(self, css: str) -> str:
        """The text of the first element matching ``css`` ('' if none)."""
        found = self.driver.find_elements("css selector", css)
        return str(found[0].text) if found else ""

    def wait_text(self, css: str, wanted: str, timeout: float = WAIT) -> str:
        return str(self.wait(lambda _: wanted in self.text(css) and self.text(css), timeout, f"{wanted!r} in {css}"))

    def click(self, css: str) -> None:
        self.wait(
            lambda d: d.find_elements("css selector", css) and d.find_element("css selector", css).is_displayed(),
            message=f"{css} to be shown",
        )
        self.driver.find_element("css selector", css).click()

    def console(self) -> list[dict[str, Any]]:
        """The browser's console entries since the last call."""
        return list(self.driver.get_log("browser"))

    def errors(self) -> list[dict[str, Any]]:
        return [entry for entry in self.console() if entry["level"] == "SEVERE"]

    def screenshot(self, name: str, ready: Callable[[WebDriver], Any] | None = None) -> None:
        """``name``-desktop.png at 1280x800 and ``name``-phone.png at a phone's width, each once ``ready`` holds at
        that size (the page lays itself out again in between)."""
        try:
            for suffix, (width, height), mobile in (("desktop", DESKTOP, False), ("phone", PHONE, True)):
                self.driver.execute_cdp_cmd(
                    "Emulation.setDeviceMetricsOverride",
                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
                )
                if ready is not None:
                    self.wait(ready)
                self.driver.save_screenshot(str(self.screenshots / f"{name}-{suffix}.png"))
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.fixture(scope="module")
def browser(screenshots: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}", f"--user-data-dir={profile}", "--disable-extensions",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield Browser(driver, screenshots)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
