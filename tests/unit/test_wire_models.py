"""Wire models: PascalCase out, keys matched case-insensitively in, Go-style omitempty, the original's encodings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bacalhau.models.execution import Execution, RunCommandResult
from bacalhau.models.history import Event, JobHistory, JobHistoryType
from bacalhau.models.job import Job, Task
from bacalhau.models.node import NodeInfo, NodeState
from bacalhau.models.resources import Resources
from bacalhau.models.spec import Network, NetworkConfig
from bacalhau.models.state import ExecutionStateType, JobStateType


def normalized_job(**fields: Any) -> dict[str, Any]:
    job = Job.model_validate({"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "wasm"}}], **fields})
    job.normalize()
    return job.to_wire()


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored() -> None:
    job = Job.model_validate(
        {"type": "batch", "NAME": "n", "tasks": [{"name": "t", "engine": {"type": "docker", "params": {"Image": "x"}}}],
         "unknown": 1, "Tasks ": "ignored"}
    )  # fmt: skip
    assert (job.type, job.name, job.task.name, job.task.engine_spec.type) == ("batch", "n", "t", "docker")
    assert job.task.engine_spec.params == {"Image": "x"}


def test_a_normalized_task_has_every_object_and_omits_empty_collections() -> None:
    [task] = normalized_job()["Tasks"]
    assert task["Publisher"] == {"Type": ""}
    assert task["Network"] == {"Type": "None"}
    assert task["Timeouts"] == {}
    assert task["Resources"] == {}
    for absent in ("Env", "Meta", "InputSources", "ResultPaths"):
        assert absent not in task


def test_job_shape_after_normalize() -> None:
    job = normalized_job(ID="j-1")
    assert list(job) == [
        "ID", "Name", "Namespace", "Type", "Priority", "Count", "Constraints", "Meta", "Labels", "Tasks", "State",
        "Version", "Revision", "CreateTime", "ModifyTime",
    ]  # fmt: skip
    assert job["Name"] == "j-1" and job["Namespace"] == "default"
    assert job["Constraints"] == [] and job["Meta"] == {} and job["Labels"] == {}
    assert job["State"] == {"StateType": "Undefined"}
    assert isinstance(job["CreateTime"], int)


@pytest.mark.parametrize(
    ("job_type", "count", "expected"),
    [("batch", None, 1), ("batch", 0, 0), ("batch", 3, 3), ("service", None, 1), ("ops", None, 0), ("daemon", 1, 0)],
)
def test_count_rules(job_type: str, count: int | None, expected: int) -> None:
    fields = {} if count is None else {"Count": count}
    assert normalized_job(Type=job_type, **fields)["Count"] == expected


def test_job_state_parses_case_insensitively_and_unknown_is_undefined() -> None:
    assert Job.model_validate({"State": {"StateType": " running "}}).state.state_type == JobStateType.RUNNING
    assert Job.model_validate({"State": {"StateType": "weird"}}).state.state_type == JobStateType.UNDEFINED
    with pytest.raises(ValidationError):
        Job.model_validate({"State": {"StateType": 3}})


def test_execution_states_are_integers_with_the_v152_numbering() -> None:
    numbering = {state.label: int(state) for state in ExecutionStateType}
    assert numbering == {
        "Undefined": 0, "New": 1, "AskForBid": 2, "AskForBidAccepted": 3, "AskForBidRejected": 4, "BidAccepted": 5,
        "Running": 6, "Publishing": 7, "BidRejected": 8, "Completed": 9, "Failed": 10, "Cancelled": 11,
    }  # fmt: skip
    wire = Execution(id="e-1", compute_state={"StateType": 9}).to_wire()  # type: ignore[arg-type]
    assert wire["ComputeState"] == {"StateType": 9} and wire["DesiredState"] == {"StateType": 0}
    assert wire["PublishedResult"] == {"Type": ""} and wire["AllocatedResources"] == {"Tasks": {}}
    assert wire["RunOutput"] is None and "Job" not in wire and "PartitionIndex" not in wire


def test_run_output_has_a_lowercase_stderr_key() -> None:
    wire = RunCommandResult(stdout="o", stderr="e", exit_code=3).to_wire()
    assert wire == {
        "Stdout": "o", "StdoutTruncated": False, "stderr": "e", "StderrTruncated": False, "ExitCode": 3, "ErrorMsg": "",
    }  # fmt: skip
    assert RunCommandResult.model_validate(wire).stderr == "e"


def test_terminal_and_discarded_execution_states() -> None:
    terminal = {s.label for s in ExecutionStateType if s.is_terminal}
    assert terminal == {"AskForBidRejected", "BidRejected", "Completed", "Failed", "Cancelled"}
    assert {s.label for s in ExecutionStateType if s.is_discarded} == {
        "AskForBidRejected",
        "BidRejected",
        "Cancelled",
        "Failed",
    }


@pytest.mark.parametrize("name", ["none", "NONE", " Full ", "http", "Host", "bridge", "DEFAULT"])
def test_network_names_parse_case_insensitively(name: str) -> None:
    parsed = NetworkConfig.model_validate({"Type": name}).type
    assert parsed.value.lower() == name.strip().lower()


@pytest.mark.parametrize("value", ["Bogus", 1])
def test_unknown_networks_and_numbers_are_rejected(value: Any) -> None:
    """A JSON null is not among them: Go leaves the Network at its zero value (test_models_json.py)."""
    with pytest.raises(ValidationError):
        NetworkConfig.model_validate({"Type": value})


def test_default_network_is_none() -> None:
    assert NetworkConfig().type == Network.NONE


def test_history_times_are_rfc3339_and_execution_id_is_omitted_when_empty() -> None:
    item = JobHistory(seq_num=1, type=JobHistoryType.JOB_LEVEL, job_id="j", event=Event(topic="T", message="m"),
                      time=1_719_576_000_123_456_789)  # fmt: skip
    wire = item.to_wire()
    assert wire["Time"] == "2024-06-28T12:00:00.123456789Z"
    assert wire["Event"] == {"Message": "m", "Topic": "T", "Timestamp": "0001-01-01T00:00:00Z"}
    assert "ExecutionID" not in wire and "JobState" not in wire
    assert JobHistory.model_validate(wire).time == item.time


def test_resources_omit_zero_fields() -> None:
    assert Resources().to_wire() == {}
    assert Resources(cpu=0.5, memory=10).to_wire() == {"CPU": 0.5, "Memory": 10}


def test_node_state_shapes() -> None:
    wire = NodeState(info=NodeInfo(node_id="n-1")).to_wire()
    assert wire["Info"]["NodeID"] == "n-1" and wire["Info"]["NodeType"] == "Requester"
    assert "ComputeNodeInfo" not in wire["Info"]
    assert wire["Membership"] == "PENDING" and wire["Connection"] == "DISCONNECTED"


keys = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=8)


@given(
    name=st.text(max_size=20),
    meta=st.dictionaries(keys, st.text(max_size=10), max_size=4),
    priority=st.integers(-5, 100),
    count=st.integers(0, 10),
)
def test_jobs_round_trip_through_json(name: str, meta: dict[str, str], priority: int, count: int) -> None:
    job = Job(name=name, type="batch", meta=meta, priority=priority, count=count, tasks=[Task(name="main")])
    again = Job.model_validate(json.loads(job.to_json()))
    assert again == job
