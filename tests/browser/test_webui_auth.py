"""The web UI of a node that requires credentials: the login form gates it, credentials stay in the tab's session
(never in a URL), the log WebSocket authenticates with them, and a refusal (403) is shown as such."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.browser.conftest import Browser, UiNode, start_ui_node
from tests.helpers import wasm_job

pytestmark = pytest.mark.timeout(300)

READER = ("reader", "readerpassword")
JOBS_ONLY = ("jobsonly", "jobsonlypassword")
WRITER_KEY = "P7D4CBB284634DD081FAC33868436ECCL"
USERS = {
    "API": {
        "Auth": {
            "Users": [
                {"Username": READER[0], "Password": READER[1], "Capabilities": [{"Actions": ["read:*"]}]},
                {"Alias": "writer", "APIKey": WRITER_KEY, "Capabilities": [{"Actions": ["*"]}]},
                {"Username": JOBS_ONLY[0], "Password": JOBS_ONLY[1], "Capabilities": [{"Actions": ["read:job"]}]},
            ]
        }
    }
}
WRITER = {"Authorization": f"Bearer {WRITER_KEY}"}


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiNode]:
    node = start_ui_node(tmp_path_factory.mktemp("webui-auth") / "node", "--orchestrator", "--compute", config=USERS)
    yield node
    node.node.stop()


def submit(ui: UiNode, job: dict[str, object]) -> str:
    response = httpx.put(f"{ui.api}/api/v1/orchestrator/jobs", json={"Job": job}, headers=WRITER, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["JobID"])


def job_state(ui: UiNode, job_id: str) -> str:
    response = httpx.get(f"{ui.api}/api/v1/orchestrator/jobs/{job_id}", headers=WRITER, timeout=10)
    return str(response.json()["Job"]["State"]["StateType"])


def sign_in(browser: Browser, username: str, password: str) -> None:
    browser.click("#login-mode-password")
    for css, value in (("#login-username", username), ("#login-password", password)):
        field = browser.driver.find_element("css selector", css)
        field.clear()
        field.send_keys(value)
    browser.click("#login-submit")


def sign_out(browser: Browser) -> None:
    browser.click("#logout")
    browser.wait(lambda d: d.find_elements("css selector", "#login-submit"), message="the login form")


def stored(browser: Browser) -> tuple[str, int]:
    """What the tab keeps: its session's credentials, and how many entries its local storage has."""
    return tuple(
        browser.driver.execute_script(  # type: ignore[return-value]
            "return [sessionStorage.getItem('bacalhau.credentials') || '', localStorage.length]"
        )
    )


def test_the_login_form_gates_the_ui(browser: Browser, ui: UiNode, wasm: Callable[[str], bytes]) -> None:
    job_id = submit(ui, wasm_job(wasm("hello"), "gated", Name="gated-job"))
    browser.open(ui.ui + "/#/jobs")
    browser.wait(lambda d: d.find_elements("css selector", "#login-submit"), message="the login form")
    assert "gated-job" not in browser.text("main")
    browser.screenshot("login", lambda d: d.find_elements("css selector", "#login-submit"))

    sign_in(browser, READER[0], "wrong-password")
    browser.wait_text("#login-error", "Sign-in refused: Request Unauthorized: invalid basic auth credentials")
    assert stored(browser) == ("", 0)

    sign_in(browser, *READER)
    browser.wait_text("#jobs-table", "gated-job")  # the page asked for, once signed in
    browser.wait_text("#who", "reader")
    credentials, local = stored(browser)
    assert credentials.startswith("Basic ") and local == 0
    assert READER[1] not in browser.driver.current_url and "Basic" not in browser.driver.current_url

    # The job's log over the WebSocket, authenticated by the credentials it offers as a subprotocol.
    browser.open(ui.ui + f"/#/jobs/{job_id}")
    browser.wait_text("#job-state", "Completed")
    browser.click("#log-full")
    browser.wait_text("#log-status", "The whole log")
    assert "Hello, world! gated" in browser.text("#job-output")

    # A reader may not rerun: the refusal says so.
    browser.click("#rerun-job")
    browser.wait_text("#toast", "Forbidden")
    assert "write:job" in browser.text("#toast")
    sign_out(browser)
    assert stored(browser) == ("", 0)


def test_an_api_key_streams_a_running_job_and_stops_it(
    browser: Browser, ui: UiNode, wasm: Callable[[str], bytes]
) -> None:
    job_id = submit(ui, wasm_job(wasm("ticker"), "600", "200", Name="gated-ticker"))
    browser.open(ui.ui + f"/#/jobs/{job_id}")
    if not browser.driver.find_elements("css selector", "#login-submit"):
        browser.wait(lambda d: d.find_elements("css selector", "#login-submit"), message="the login form")
    browser.click("#login-mode-key")
    browser.driver.find_element("css selector", "#login-apikey").send_keys(WRITER_KEY)
    browser.click("#login-submit")
    browser.wait_text("#job-state", "Running")
    browser.wait_text("#log-status", "Live")
    browser.wait_text("#job-output", "out 3")
    browser.click("#stop-job")
    browser.click("#stop-confirm")
    browser.wait_text("#job-state", "Stopped")
    assert job_state(ui, job_id) == "Stopped"
    sign_out(browser)


def test_what_a_user_may_not_read_is_shown_as_forbidden(browser: Browser, ui: UiNode) -> None:
    browser.open(ui.ui + "/#/")
    browser.wait(lambda d: d.find_elements("css selector", "#login-submit"), message="the login form")
    sign_in(browser, *JOBS_ONLY)
    browser.wait_text("#job-stats", "All jobs")  # jobs it may read
    browser.wait_text("main", "Forbidden (403)")  # nodes it may not
    assert "read:node" in browser.text("main")
    browser.open(ui.ui + "/#/nodes")
    browser.wait_text("#nodes-table", "Forbidden (403)")
    sign_out(browser)
