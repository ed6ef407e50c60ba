"""End to end: job versions on a real cluster (an orchestrator and two compute nodes), driven by the CLI.

A spec with the name of a stored job is that job's next version; an unchanged one is refused unless forced; a job
can be rerun (its latest spec or an older one); every version keeps its own executions, history and results; a
daemon job's update replaces its execution on every node. Jobs are named by ID, name or unique ID prefix.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ServeProcess, wait_until
from tests.e2e.cluster import Cluster
from tests.helpers import get_job, submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e

JOBS = "/api/v1/orchestrator/jobs"
RUNNING, COMPLETED, CANCELLED = 6, 9, 11  # execution states
DESIRED_RUNNING, STOPPED = 1, 2  # desired execution states
NODES = ("c1", "c2")
WHOLE_NODE = {"CPU": "1", "Memory": "64mb"}  # each node has one CPU: two such executions never share one


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    stack = Cluster(tmp_path_factory.mktemp("versions"))
    stack.start_orchestrator()
    stack.add_computes(*NODES)
    yield stack
    stack.stop()


@pytest.fixture
def orchestrator(cluster: Cluster) -> ServeProcess:
    """The node that the CLI talks to."""
    assert cluster.orchestrator is not None
    return cluster.orchestrator


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Specs:
    """Job specs of one name, written as YAML files for ``job run``."""

    def __init__(self, folder: Path, module: bytes, name: str) -> None:
        self.folder = folder
        self.module = module
        self.name = name

    def hello(self, *parameters: str, **fields: Any) -> dict[str, Any]:
        """A batch job (of the module, by default ``Hello, world! <parameters>``) whose partitions each take a
        whole compute node."""
        job = wasm_job(self.module, *parameters, Count=len(NODES), Name=self.name, **fields)
        job["Tasks"][0]["Resources"] = WHOLE_NODE
        return job

    def write(self, job: dict[str, Any], label: str) -> str:
        path = self.folder / f"{self.name}-{label}.yaml"
        path.write_text(yaml.safe_dump(job))
        return str(path)


@pytest.fixture
def hello_specs(wasm: Callable[[str], bytes], tmp_path: Path) -> Specs:
    return Specs(tmp_path, wasm("hello"), unique("hello"))


def cli_json(node: ServeProcess, *args: str) -> Any:
    return json.loads(node.cli(*args, "--output", "json").stdout)


def versions_of(items: list[dict[str, Any]]) -> Counter[int]:
    return Counter(int(item["JobVersion"]) for item in items)


def stdouts(executions: list[dict[str, Any]]) -> list[str]:
    return [e["RunOutput"]["Stdout"] for e in executions]


def two_versions(node: ServeProcess, specs: Specs) -> str:
    """A completed job of two versions (``world1``, then ``world2``), set up over the API; its ID."""
    job_id = submit(node.url, specs.hello("world1"))
    assert wait_for_state(node.url, job_id)["State"]["StateType"] == "Completed"
    assert submit(node.url, specs.hello("world2")) == job_id
    assert wait_for_state(node.url, job_id)["State"]["StateType"] == "Completed"
    return job_id


def test_a_batch_job_updated_by_name_keeps_each_versions_executions(
    orchestrator: ServeProcess, hello_specs: Specs
) -> None:
    name = hello_specs.name
    v1 = orchestrator.cli("job", "run", hello_specs.write(hello_specs.hello("world1"), "v1"))
    assert "Completed successfully" in v1.stdout
    job_id = v1.stdout.split("Job ID: ")[1].split()[0]

    described = orchestrator.cli("job", "describe", name).stdout
    assert f"ID            = {job_id}" in described and "Version       = 1" in described
    assert described.count("Hello, world! world1") == 2

    v2 = orchestrator.cli("job", "run", hello_specs.write(hello_specs.hello("world2"), "v2"))
    assert f"Job ID: {job_id}" in v2.stdout, "the same job, in a new version"
    assert "Job updated" in v2.stdout and "Completed successfully" in v2.stdout
    assert "Job submitted" not in v2.stdout, "only the new version's events are followed"

    for ref in (job_id, name):
        latest = orchestrator.cli("job", "describe", ref).stdout
        assert "Version       = 2" in latest and "State         = Completed" in latest
        assert latest.count("Hello, world! world2") == 2 and "world1" not in latest
        assert "Job updated" in latest and "Job submitted" not in latest
        first = orchestrator.cli("job", "describe", ref, "--version", "1").stdout
        assert "Version       = 1" in first and "State         = Completed" in first
        assert first.count("Hello, world! world1") == 2 and "world2" not in first
        assert "Job submitted" in first and "Job updated" not in first

    for args, version in ((("-v", "1"), 1), ((), 2), (("--version", "2"), 2)):
        data = cli_json(orchestrator, "job", "describe", name, *args)
        assert data["Job"]["ID"] == job_id and data["Job"]["Version"] == version
        items = data["Executions"]["Items"]
        assert versions_of(items) == {version: 2}
        assert sorted(e["NodeID"] for e in items) == sorted(NODES), "one partition on each node"
        assert stdouts(items) == [f"Hello, world! world{version}\n"] * 2

    latest_only = cli_json(orchestrator, "job", "executions", name)
    assert versions_of(latest_only) == {2: 2}
    assert all(e["ComputeState"]["StateType"] == COMPLETED for e in latest_only)
    assert versions_of(cli_json(orchestrator, "job", "executions", name, "--version", "1")) == {1: 2}
    every = cli_json(orchestrator, "job", "executions", name, "--all-versions")
    assert versions_of(every) == {1: 2, 2: 2}
    assert len({e["ID"] for e in every}) == 4
    table = orchestrator.cli("job", "executions", name, "--all-versions").stdout
    assert table.count("Completed") == 4
    assert orchestrator.cli("job", "executions", name).stdout.count("Completed") == 2

    history = orchestrator.cli("job", "history", name, "--all-versions").stdout
    assert "Job submitted" in history and "Job updated" in history
    assert history.index("Job submitted") < history.index("Job updated")
    latest_history = cli_json(orchestrator, "job", "history", name)
    assert {item["JobVersion"] for item in latest_history} == {2}
    assert "Job updated" in [item["Event"]["Message"] for item in latest_history]
    first_history = cli_json(orchestrator, "job", "history", name, "--version", "1")
    assert {item["JobVersion"] for item in first_history} == {1}
    assert "Job updated" not in [item["Event"]["Message"] for item in first_history]

    listed = cli_json(orchestrator, "job", "versions", name)
    assert [(job["ID"], job["Version"]) for job in listed] == [(job_id, 1), (job_id, 2)]


def test_an_unchanged_spec_is_refused_unless_forced(orchestrator: ServeProcess, hello_specs: Specs) -> None:
    job_id = two_versions(orchestrator, hello_specs)
    unchanged = hello_specs.write(hello_specs.hello("world2"), "again")

    refused = orchestrator.cli("job", "run", unchanged, check=False)
    assert refused.returncode != 0
    assert f"no changes detected for new job spec. Job Name: '{hello_specs.name}', Job Id: '{job_id}'" in refused.stderr
    assert "Use the --force flag to override this warning" in refused.stderr
    assert "Job successfully submitted" not in refused.stdout
    assert get_job(orchestrator.url, job_id)["Job"]["Version"] == 2, "nothing was stored"

    response = httpx.put(f"{orchestrator.url}{JOBS}", json={"Job": hello_specs.hello("world2")}, timeout=10)
    assert response.status_code == 400
    assert response.json()["Hint"] == "Use the --force flag to override this warning"

    forced = orchestrator.cli("job", "run", "--force", "--id-only", unchanged)
    assert forced.stdout.strip() == job_id
    assert wait_for_state(orchestrator.url, job_id)["State"]["StateType"] == "Completed"
    data = cli_json(orchestrator, "job", "describe", hello_specs.name)
    assert data["Job"]["Version"] == 3
    assert versions_of(data["Executions"]["Items"]) == {3: 2}
    assert stdouts(data["Executions"]["Items"]) == ["Hello, world! world2\n"] * 2
    assert [job["Version"] for job in cli_json(orchestrator, "job", "versions", hello_specs.name)] == [1, 2, 3]


def test_rerun_makes_a_new_version_of_the_latest_or_an_older_spec(
    orchestrator: ServeProcess, hello_specs: Specs
) -> None:
    name = hello_specs.name
    job_id = two_versions(orchestrator, hello_specs)

    rerun = orchestrator.cli("job", "rerun", name)
    assert f"Job {job_id} rerun as version 3." in rerun.stdout
    assert "Job rerun requested" in rerun.stdout and "Completed successfully" in rerun.stdout
    data = cli_json(orchestrator, "job", "describe", name)
    assert data["Job"]["Version"] == 3 and data["Job"]["State"]["StateType"] == "Completed"
    assert stdouts(data["Executions"]["Items"]) == ["Hello, world! world2\n"] * 2, "the latest spec ran again"

    older = orchestrator.cli("job", "rerun", name, "--version", "1", "--reason", "back to world1", "--wait=false")
    assert older.stdout.strip().endswith(job_id)
    assert get_job(orchestrator.url, job_id)["Job"]["Version"] == 4
    assert wait_for_state(orchestrator.url, job_id)["State"]["StateType"] == "Completed"
    data = cli_json(orchestrator, "job", "describe", name)
    assert data["Job"]["Version"] == 4
    assert stdouts(data["Executions"]["Items"]) == ["Hello, world! world1\n"] * 2, "version 1's spec ran again"
    [requested] = [h for h in data["History"]["Items"] if h["Event"]["Message"] == "Job rerun requested"]
    assert requested["Event"]["Details"]["Reason"] == "back to world1"

    listed = cli_json(orchestrator, "job", "versions", name)
    assert [job["Version"] for job in listed] == [1, 2, 3, 4]
    assert {job["ID"] for job in listed} == {job_id}
    parameters = [job["Tasks"][0]["Engine"]["Params"]["Parameters"] for job in listed]
    assert parameters == [["world1"], ["world2"], ["world2"], ["world1"]]
    table = orchestrator.cli("job", "versions", name).stdout.splitlines()
    assert table[0].split() == ["CREATED", "AT", "JOB", "VERSION", "STATE"]
    assert [row.split()[2] for row in table[1:]] == ["1", "2", "3", "4"]
    assert versions_of(cli_json(orchestrator, "job", "executions", name, "--all-versions")) == dict.fromkeys(
        (1, 2, 3, 4), 2
    )

    # The API's exact shape, naming the job by name; a version that does not exist is refused.
    response = httpx.put(f"{orchestrator.url}{JOBS}/{name}/rerun", json={"JobVersion": 2}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"EvaluationID", "JobID", "JobVersion", "Warnings"}
    assert (body["JobID"], body["JobVersion"]) == (job_id, 5)
    assert wait_for_state(orchestrator.url, job_id)["State"]["StateType"] == "Completed"
    missing = orchestrator.cli("job", "rerun", name, "--version", "9", check=False)
    assert missing.returncode != 0 and f"job version 9 not found for job {job_id}" in missing.stderr


def test_job_get_and_logs_read_the_latest_or_a_chosen_version(
    orchestrator: ServeProcess, hello_specs: Specs, tmp_path: Path
) -> None:
    two_versions(orchestrator, hello_specs)
    latest, first = tmp_path / "latest", tmp_path / "first"
    latest.mkdir()
    first.mkdir()
    orchestrator.cli("job", "get", hello_specs.name, "--output-dir", str(latest))
    orchestrator.cli("job", "get", hello_specs.name, "--version", "1", "--output-dir", str(first))
    assert (latest / "stdout").read_text() == "Hello, world! world2\n" * 2
    assert (first / "stdout").read_text() == "Hello, world! world1\n" * 2
    assert (latest / "exitCode").read_text() == (first / "exitCode").read_text() == "00"

    assert orchestrator.cli("job", "logs", hello_specs.name).stdout == "Hello, world! world2\n"
    assert orchestrator.cli("job", "logs", hello_specs.name, "--version", "1").stdout == "Hello, world! world1\n"


def test_dry_run_prints_the_diff_and_submits_nothing(orchestrator: ServeProcess, hello_specs: Specs) -> None:
    job_id = two_versions(orchestrator, hello_specs)

    dry = orchestrator.cli("job", "run", "--dry-run", hello_specs.write(hello_specs.hello("world3"), "v3"))
    lines = dry.stdout.splitlines()
    assert f"--- {hello_specs.name} (version 2)" in lines
    assert "-      - world2" in lines and "+      - world3" in lines
    changed = [line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert len(changed) == 2, dry.stdout
    assert "Job successfully submitted" not in dry.stdout

    same = orchestrator.cli("job", "run", "--dry-run", hello_specs.write(hello_specs.hello("world2"), "same"))
    assert same.stdout == "" and "No diff detected." in same.stderr

    job = get_job(orchestrator.url, job_id, include="executions")
    assert job["Job"]["Version"] == 2, "a dry run stores nothing"
    assert versions_of(job["Executions"]["Items"]) == {2: 2}
    assert len(cli_json(orchestrator, "job", "versions", hello_specs.name)) == 2

    response = httpx.put(f"{orchestrator.url}{JOBS}/diff", json={"Job": hello_specs.hello("world3")}, timeout=10)
    assert response.status_code == 200
    assert set(response.json()) == {"Diff", "Warnings"}
    assert "+      - world3" in response.json()["Diff"].splitlines()


def executions_by_version(node: ServeProcess, name: str) -> dict[int, list[dict[str, Any]]]:
    """``job executions --all-versions``, grouped by job version."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    for item in cli_json(node, "job", "executions", name, "--all-versions"):
        grouped.setdefault(item["JobVersion"], []).append(item)
    return grouped


def stopped_for_update(node: ServeProcess, name: str, version: int) -> set[str]:
    """The executions of ``version`` that its job's next version stopped, from the job's history."""
    history = cli_json(node, "job", "history", name, "--version", str(version), "--event-type", "execution")
    return {h["ExecutionID"] for h in history if h["Event"]["Message"] == "Execution stopped for job update"}


def test_a_running_batch_job_updated_gives_way_to_its_new_version(
    orchestrator: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    """The first version's executions still run (and fill both nodes) when the second comes: they are cancelled,
    and the new version's take their place at once, without waiting in a queue."""
    specs = Specs(tmp_path, wasm("sleep"), unique("sleepy"))
    job_id = orchestrator.cli("job", "run", "--wait=false", specs.write(specs.hello("600000"), "v1")).stdout.strip()
    try:
        wait_for_state(orchestrator.url, job_id, ("Running",))
        first = cli_json(orchestrator, "job", "executions", specs.name)
        assert versions_of(first) == {1: 2}

        updated = orchestrator.cli("job", "run", specs.write(specs.hello("10"), "v2"))
        assert "Completed successfully" in updated.stdout
    finally:
        if get_job(orchestrator.url, job_id)["Job"]["Version"] == 1:
            orchestrator.cli("job", "stop", job_id, check=False)
    job = get_job(orchestrator.url, job_id)["Job"]
    assert (job["Version"], job["State"]["StateType"]) == (2, "Completed")

    grouped = executions_by_version(orchestrator, specs.name)
    assert {e["ID"] for e in grouped[1]} == {e["ID"] for e in first}
    assert [e["ComputeState"]["StateType"] for e in grouped[1]] == [CANCELLED] * 2
    assert [e["ComputeState"]["StateType"] for e in grouped[2]] == [COMPLETED] * 2
    assert sorted(e["NodeID"] for e in grouped[2]) == sorted(NODES)
    assert stopped_for_update(orchestrator, specs.name, 1) == {e["ID"] for e in first}
    events = [
        h["Event"]["Message"] for h in cli_json(orchestrator, "job", "history", specs.name, "--event-type", "job")
    ]
    assert events == ["Job updated", "Running", "Completed"], "not queued behind the old version's executions"
    described = orchestrator.cli("job", "describe", specs.name, "--version", "1").stdout
    assert described.count("Execution stopped for job update") >= 2
    assert "State         = Running" in described, "a version is kept as it was when the next one replaced it"


def test_a_daemon_job_update_replaces_its_execution_on_every_node(
    orchestrator: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    """Each version's executions take a whole node: the second version's can only run where the first's stopped."""
    specs = Specs(tmp_path, wasm("sleep"), unique("daemon"))

    def daemon(millis: str) -> str:
        job = wasm_job(specs.module, millis, job_type="daemon", publisher="", Name=specs.name)
        del job["Count"]
        job["Tasks"][0]["Resources"] = WHOLE_NODE
        return specs.write(job, millis)

    def running_on_every_node(version: int) -> bool:
        items = get_job(orchestrator.url, job_id, include="executions")["Executions"]["Items"]
        on_nodes = sorted(e["NodeID"] for e in items if e["ComputeState"]["StateType"] == RUNNING)
        return all(e["JobVersion"] == version for e in items) and on_nodes == sorted(NODES)

    job_id = orchestrator.cli("job", "run", "--id-only", daemon("600000")).stdout.strip()
    try:
        wait_until(lambda: running_on_every_node(1), 30, "version 1 to run on every node")
        first = executions_by_version(orchestrator, specs.name)[1]

        updated = orchestrator.cli("job", "run", "--wait=false", daemon("600001")).stdout.strip()
        assert updated == job_id
        wait_until(lambda: running_on_every_node(2), 30, "version 2 to run on every node")

        def old_ones_cancelled() -> dict[int, list[dict[str, Any]]] | None:
            grouped = executions_by_version(orchestrator, specs.name)
            done = all(e["ComputeState"]["StateType"] == CANCELLED for e in grouped[1])
            return grouped if done else None

        grouped = wait_until(old_ones_cancelled, 30, "version 1's executions to be cancelled")
        assert sorted(grouped) == [1, 2]
        assert {e["ID"] for e in grouped[1]} == {e["ID"] for e in first}, "version 1's executions were not replaced"
        assert sorted(e["NodeID"] for e in grouped[1]) == sorted(e["NodeID"] for e in grouped[2]) == sorted(NODES)
        assert all(e["DesiredState"]["StateType"] == STOPPED for e in grouped[1])
        assert all(e["DesiredState"]["StateType"] == DESIRED_RUNNING for e in grouped[2])
        assert stopped_for_update(orchestrator, specs.name, 1) == {e["ID"] for e in first}

        described = cli_json(orchestrator, "job", "describe", specs.name)
        assert described["Job"]["Version"] == 2 and described["Job"]["State"]["StateType"] == "Running"
        assert described["Job"]["Tasks"][0]["Engine"]["Params"]["Parameters"] == ["600001"]
        assert versions_of(described["Executions"]["Items"]) == {2: 2}
        first_version = cli_json(orchestrator, "job", "describe", specs.name, "-v", "1")
        assert versions_of(first_version["Executions"]["Items"]) == {1: 2}
    finally:
        orchestrator.cli("job", "stop", specs.name, check=False)
    assert wait_for_state(orchestrator.url, job_id)["State"]["StateType"] == "Stopped"


def test_ambiguous_prefixes_and_other_namespaces_do_not_find_a_job(orchestrator: ServeProcess) -> None:
    name = unique("noop")
    noop = {"Type": "batch", "Name": name, "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    ids = [submit(orchestrator.url, noop), submit(orchestrator.url, {**noop, "Name": unique("noop")})]
    for job_id in ids:
        wait_for_state(orchestrator.url, job_id)

    ambiguous = orchestrator.cli("job", "describe", "j-", check=False)
    assert ambiguous.returncode != 0
    assert "multiple jobs found for id j-: j-" in ambiguous.stderr
    candidates = ambiguous.stderr.split("multiple jobs found for id j-: ")[1].splitlines()[0]
    assert all(candidate.startswith("j-") for candidate in candidates.removesuffix(", ...").split(", "))
    assert "Use full job ID" in ambiguous.stderr
    assert orchestrator.cli("job", "executions", "j-", check=False).returncode != 0

    prefix = ids[0][:13]
    assert cli_json(orchestrator, "job", "describe", prefix)["Job"]["ID"] == ids[0], "a unique prefix names it"

    for args in (("describe", name), ("executions", name), ("history", name), ("versions", name), ("stop", name)):
        other = orchestrator.cli("job", *args, "--namespace", "other", check=False)
        assert other.returncode != 0, args
        assert f"job not found: {name}" in other.stderr, args
    assert cli_json(orchestrator, "job", "describe", name, "--namespace", "default")["Job"]["ID"] == ids[0]

    # The same name in another namespace is another job, with versions of its own.
    elsewhere = submit(orchestrator.url, {**noop, "Namespace": "other"})
    assert elsewhere not in ids
    wait_for_state(orchestrator.url, elsewhere)
    found = cli_json(orchestrator, "job", "describe", name, "--namespace", "other")["Job"]
    assert (found["ID"], found["Namespace"], found["Version"]) == (elsewhere, "other", 1)
    assert cli_json(orchestrator, "job", "describe", name)["Job"]["ID"] == ids[0]
