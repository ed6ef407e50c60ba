"""The web UI in a real browser, against a hybrid node that needs nodes approved by hand (its own compute half is
approved as the orchestrator itself is) and a second compute node left waiting for approval."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import Browser, UiNode, start_ui_node
from tests.conftest import ServeProcess, wait_until
from tests.helpers import get_job, submit, wait_for_state, wasm_job

pytestmark = pytest.mark.timeout(300)

APPROVAL = "Orchestrator.NodeManager.ManualApproval=true"


def node_ids(api: str) -> dict[str, str]:
    """Each node's ID by its membership."""
    nodes = httpx.get(f"{api}/api/v1/orchestrator/nodes", timeout=10).json()["Nodes"]
    return {node["Info"]["NodeID"]: node["Membership"] for node in nodes}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiNode, ServeProcess]]:
    root = tmp_path_factory.mktemp("webui")
    started: list[ServeProcess] = []
    try:
        ui = start_ui_node(root / "hybrid", "--orchestrator", "--compute", "--name", "hybrid", settings=(APPROVAL,))
        started.append(ui.node)
        run_file = (ui.node.data_dir / "bacalhau.run").read_text()
        nats = run_file.split("BACALHAU_COMPUTE_ORCHESTRATORS=")[1].split()[0]
        waiting = ServeProcess(root / "waiting", "--compute", "--name", "waiting", "--orchestrators", nats)
        waiting.config = ["-c", "Compute.Heartbeat.Interval=0.5s"]
        started.append(waiting.start())
        wait_until(lambda: node_ids(ui.api).get("waiting") == "PENDING", 30, "the second compute node to join")
        yield ui, waiting
    finally:
        for node in reversed(started):
            node.stop()


@pytest.fixture(scope="module")
def ui(site: tuple[UiNode, ServeProcess]) -> UiNode:
    return site[0]


@pytest.fixture(scope="module")
def finished_job(ui: UiNode, wasm: Callable[[str], bytes]) -> str:
    job_id = submit(ui.api, wasm_job(wasm("hello"), "browser", Name="hello-browser", Labels={"suite": "webui"}))
    assert wait_for_state(ui.api, job_id)["State"]["StateType"] == "Completed"
    return job_id


def test_the_dashboard_loads_without_console_errors(browser: Browser, ui: UiNode, finished_job: str) -> None:
    browser.console()  # (forget what came before)
    browser.open(ui.ui + "/#/")
    browser.wait_text("#job-stats", "Completed")
    browser.wait(
        lambda _: (
            "1 completed" in browser.text("#completions-chart") or "completed" in browser.text("#completions-chart")
        )
    )
    browser.wait_text("#node-stats", "Pending approval")
    assert browser.errors() == []
    browser.screenshot("dashboard", lambda _: browser.text("#job-stats"))
    assert browser.errors() == []


def test_jobs_submitted_while_watching_appear_without_a_reload(
    browser: Browser, ui: UiNode, finished_job: str, wasm: Callable[[str], bytes]
) -> None:
    browser.open(ui.ui + "/#/jobs")
    browser.wait_text("#jobs-table", "hello-browser")
    browser.driver.execute_script("window.sameDocument = true")
    name = f"appears-{uuid.uuid4().hex[:8]}"
    job_id = submit(ui.api, wasm_job(wasm("hello"), "late", Name=name))
    browser.wait_text("#jobs-table", name)
    first_row = browser.driver.find_element("css selector", "#jobs-table tbody tr")
    assert first_row.get_attribute("data-job-id") == job_id  # newest first
    assert browser.driver.execute_script("return window.sameDocument") is True  # no reload
    # Filters go to the API, and stay in the address for a reload.
    browser.driver.find_element("css selector", "#filter-name").send_keys(name)
    browser.click("#job-filters button[type=submit]")
    browser.wait(lambda d: len(d.find_elements("css selector", "#jobs-table tbody tr[data-job-id]")) == 1)
    assert f"name={name}" in browser.driver.current_url
    browser.driver.find_element("css selector", "#filter-name").clear()
    browser.click("#job-filters button[type=submit]")
    browser.wait(lambda d: len(d.find_elements("css selector", "#jobs-table tbody tr[data-job-id]")) >= 2)
    browser.screenshot("jobs", lambda _: "hello-browser" in browser.text("#jobs-table"))
    assert browser.errors() == []


def test_a_finished_job_shows_its_output_history_and_spec(browser: Browser, ui: UiNode, finished_job: str) -> None:
    browser.open(ui.ui + f"/#/jobs/{finished_job}")
    browser.wait_text("#job-name", "hello-browser")
    browser.wait_text("#job-state", "Completed")
    browser.wait_text("#job-output", "Hello, world! browser")
    browser.wait_text("#job-history", "Job submitted")
    browser.wait_text("#job-executions", "Completed")
    browser.wait_text("#job-results", "Download")
    link = browser.driver.find_element("css selector", "#job-results a").get_attribute("href")
    assert link.startswith("http://") and httpx.get(link, timeout=10).status_code == 200  # a signed, working link
    spec = browser.driver.execute_script("return document.getElementById('job-spec').textContent")
    assert "Name: hello-browser" in spec and "suite: webui" in spec and "Type: batch" in spec
    browser.screenshot("job-finished", lambda _: "Hello" in browser.text("#job-output"))
    # The whole log, streamed over the WebSocket.
    browser.click("#log-full")
    browser.wait_text("#log-status", "The whole log")
    assert "Hello, world! browser" in browser.text("#job-output")
    assert browser.errors() == []


def test_a_running_job_streams_its_logs_and_stops(browser: Browser, ui: UiNode, wasm: Callable[[str], bytes]) -> None:
    job_id = submit(ui.api, wasm_job(wasm("ticker"), "600", "200", Name="ticker-browser"))
    browser.open(ui.ui + f"/#/jobs/{job_id}")
    browser.wait_text("#job-state", "Running")
    browser.wait_text("#log-status", "Live")
    browser.wait_text("#job-output", "out 3")
    lines = browser.text("#job-output").count("\n")
    browser.wait(lambda _: browser.text("#job-output").count("\n") > lines + 2, message="more lines streamed")
    browser.screenshot("job-running", lambda _: browser.text("#job-output"))
    browser.click("#stop-job")
    browser.driver.find_element("css selector", "#stop-reason").send_keys("seen enough")
    browser.click("#stop-confirm")
    browser.wait_text("#job-state", "Stopped")
    assert get_job(ui.api, job_id)["Job"]["State"] == {"StateType": "Stopped", "Message": "seen enough"}
    browser.wait(lambda d: not d.find_elements("css selector", "#stop-job"), message="no Stop button once stopped")
    assert browser.errors() == []


def test_a_finished_job_can_be_rerun(browser: Browser, ui: UiNode, wasm: Callable[[str], bytes]) -> None:
    job_id = submit(ui.api, wasm_job(wasm("hello"), "again", Name="rerun-browser"))
    wait_for_state(ui.api, job_id)
    browser.open(ui.ui + f"/#/jobs/{job_id}")
    browser.wait_text("#job-state", "Completed")
    browser.click("#rerun-job")
    browser.wait_text("#toast", "Rerunning as version 2")
    wait_until(lambda: get_job(ui.api, job_id)["Job"]["Version"] == 2, 30, "version 2")
    browser.wait(lambda _: "2" in browser.text("#job-history") and browser.text("#job-state"))


def test_a_node_is_approved_from_its_page(browser: Browser, site: tuple[UiNode, ServeProcess]) -> None:
    from selenium.webdriver.support.select import Select

    ui, _ = site
    browser.open(ui.ui + "/#/nodes")
    browser.wait_text("#nodes-table", "PENDING")
    browser.screenshot("nodes", lambda _: "waiting" in browser.text("#nodes-table"))
    Select(browser.driver.find_element("css selector", "#filter-approval")).select_by_value("PENDING")
    browser.wait(lambda d: len(d.find_elements("css selector", "#nodes-table tr[data-node-id]")) == 1)
    assert "approval=PENDING" in browser.driver.current_url
    browser.driver.find_element("css selector", "#nodes-table tr[data-node-id=waiting] a").click()
    browser.wait_text("#node-name", "waiting")
    browser.wait_text("#node-state", "PENDING")
    browser.screenshot("node", lambda _: browser.text("#node-actions"))
    browser.click("#approve-node")
    browser.wait_text("#node-state", "APPROVED")
    assert node_ids(ui.api)["waiting"] == "APPROVED"
    browser.wait(lambda d: not d.find_elements("css selector", "#approve-node"), message="no Approve once approved")
    assert browser.errors() == []


def test_a_node_is_rejected_and_deleted_from_its_page(browser: Browser, site: tuple[UiNode, ServeProcess]) -> None:
    ui, _ = site
    browser.open(ui.ui + "/#/nodes/waiting")
    browser.wait_text("#node-name", "waiting")
    browser.click("#reject-node")
    browser.wait_text("#node-state", "REJECTED")
    assert node_ids(ui.api)["waiting"] == "REJECTED"
    browser.click("#delete-node")
    browser.click("#delete-confirm")
    browser.wait(lambda d: d.current_url.endswith("#/nodes"), message="back to the list")
    browser.wait_text("#toast", "Node deleted.")
    assert browser.errors() == []


def test_screenshots_were_written(screenshots: Path) -> None:
    """(Run last in this module: the pages above wrote theirs.)"""
    written = {path.name for path in screenshots.glob("*.png")}
    for page in ("dashboard", "jobs", "job-finished", "job-running", "nodes", "node"):
        assert {f"{page}-desktop.png", f"{page}-phone.png"} <= written, page


YAML_CASES: list[object] = [
    {"Name": "plain", "Count": 3, "Priority": -1, "Ratio": 0.5, "On": True, "Off": False, "Nothing": None},
    {"colon": "a: b", "hash": "a #b", "lead": " x", "trail": "x ", "quote": "'\"", "empty": "", "dash": "- x"},
    {"yes": "yes", "no": "No", "null": "null", "tilde": "~", "number": "123", "float": "1e3", "octal": "0o17"},
    {"hex": "0x1F", "date": "2026-12-02", "star": "*ref", "amp": "&anchor", "bang": "!tag", "pct": "%x", "at": "@x"},
    {"script": "echo hello\nexit 0\n", "no-newline": "a\nb", "blank-lines": "a\n\nb\n", "trailing-blank": "a\n\n"},
    {"crlf": "a\r\nb", "tab": "a\tb", "control": "a\u0007b", "unicode": "żółw 🐢", "line-sep": "a\u2028b"},
    {"key: with colon": 1, "": "empty key", "- dash": 2, "nested": {"deeper": {"list": [1, "two", None, [], {}]}}},
    {"Tasks": [{"Name": "main", "Env": {"A": "1"}, "Args": ["-c", "x: y"]}, {"Name": "second", "Args": []}]},
    [[1, 2], [], [{"a": [{"b": "c"}]}]],
    {"Labels": {"<b>x</b>": "\"'><img src=x onerror=alert(1)>"}, "Meta": {}},
]


def test_the_yaml_of_a_spec_reads_back_as_the_spec(browser: Browser, ui: UiNode, finished_job: str) -> None:
    """The spec view's YAML (js/yaml.js), read back by a real YAML parser, is the value it was made from."""
    import yaml

    browser.open(ui.ui + "/#/")
    browser.wait_text("#job-stats", "Completed")
    module = browser.driver.execute_script(
        "return document.querySelector('script[type=module]').getAttribute('src').replace('main.js', 'yaml.js')"
    )
    job = get_job(ui.api, finished_job)["Job"]
    script = (
        "const [module, value, done] = arguments;"
        "import(module).then((m) => done([m.toYaml(value), JSON.stringify(value)]));"
    )
    for value in [*YAML_CASES, job, "a\nb\n", "yes", 1.5, None, [], {}]:
        text, seen = browser.driver.execute_async_script(script, module, value)
        # (as JavaScript holds it: nanosecond times lose their last digits in a double, here as in the page)
        assert yaml.safe_load(text) == json.loads(seen), text
