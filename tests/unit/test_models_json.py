"""JSON shapes of the wire models (api-models.md §4, §6): PascalCase out, case-insensitive keys in, Go omitempty."""

from __future__ import annotations

import json
import random
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, ValidationError

from bacalhau.models.base import OMIT_EMPTY, WireModel, pascal_alias
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import AllocatedResources, Execution, RunCommandResult
from bacalhau.models.history import Event, JobHistory, JobHistoryType, StateChange
from bacalhau.models.job import Job, Task
from bacalhau.models.node import BuildVersionInfo, ComputeNodeInfo, ConnectionState, NodeInfo, NodeState
from bacalhau.models.resources import GPU, Resources, ResourcesConfig
from bacalhau.models.spec import (
    InputSource,
    LabelSelectorRequirement,
    Network,
    NetworkConfig,
    ResultPath,
    SpecConfig,
    TimeoutConfig,
)
from bacalhau.models.state import (
    ExecutionDesiredState,
    ExecutionDesiredStateType,
    ExecutionState,
    ExecutionStateType,
    JobState,
    JobStateType,
)

# 2024-06-28T12:00:00.123456789Z
NS = 1_719_576_000_123_456_789
STAMP = "2024-06-28T12:00:00.123456789Z"


def minimal_job(**fields: Any) -> Job:
    """A valid batch job with one docker task, from wire-format keys."""
    data: dict[str, Any] = {
        "Type": "batch",
        "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu"}}}],
    }
    data.update(fields)
    return Job.model_validate(data)


def normalized_wire(**fields: Any) -> dict[str, Any]:
    job = minimal_job(**fields)
    job.normalize()
    return job.to_wire()


# --- WireModel basics -------------------------------------------------------------------------------------------


class Sample(WireModel):
    """A model exercising every kind of omit-empty field."""

    job_id: str = ""
    text: Annotated[str, OMIT_EMPTY] = ""
    number: Annotated[int, OMIT_EMPTY] = 0
    ratio: Annotated[float, OMIT_EMPTY] = 0.0
    flag: Annotated[bool, OMIT_EMPTY] = False
    items: Annotated[list[str], OMIT_EMPTY] = Field(default_factory=list)
    mapping: Annotated[dict[str, str], OMIT_EMPTY] = Field(default_factory=dict)
    child: Annotated[SpecConfig | None, OMIT_EMPTY] = None
    always: SpecConfig | None = None


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        ("job_id", "JobID"),
        ("eval_id", "EvalID"),
        ("node_id", "NodeID"),
        ("cpu", "CPU"),
        ("gpu", "GPU"),
        ("gpus", "GPUs"),
        ("goos", "GOOS"),
        ("goarch", "GOARCH"),
        ("input_sources", "InputSources"),
        ("create_time", "CreateTime"),
        ("url", "URL"),
        ("name", "Name"),
    ],
)
def test_pascal_alias_follows_go_field_names(name: str, alias: str) -> None:
    """Python field names map to the Go JSON keys, with Go's initialisms."""
    assert pascal_alias(name) == alias


def test_omit_empty_drops_zero_values_and_keeps_the_rest() -> None:
    """Zero strings, numbers, bools, lists, maps and nil pointers are dropped; untagged fields stay."""
    assert Sample().to_wire() == {"JobID": "", "Always": None}


def test_omit_empty_never_drops_a_present_struct() -> None:
    """Go omits a nil pointer but never a struct value, even an empty one."""
    wire = Sample(child=SpecConfig(), always=SpecConfig()).to_wire()
    assert wire["Child"] == {"Type": ""}
    assert wire["Always"] == {"Type": ""}


def test_omit_empty_keeps_non_zero_values() -> None:
    """Every non-zero value is written under its PascalCase key."""
    wire = Sample(text="t", number=-1, ratio=0.5, flag=True, items=["a"], mapping={"k": "v"}).to_wire()
    assert wire == {
        "JobID": "",
        "Text": "t",
        "Number": -1,
        "Ratio": 0.5,
        "Flag": True,
        "Items": ["a"],
        "Mapping": {"k": "v"},
        "Always": None,
    }


def test_to_json_is_the_wire_dict() -> None:
    """to_json() encodes exactly what to_wire() returns."""
    job = minimal_job()
    assert json.loads(job.to_json()) == job.to_wire()


@pytest.mark.parametrize("transform", [str.lower, str.upper, str.swapcase], ids=["lower", "upper", "swapcase"])
def test_keys_are_matched_case_insensitively_at_every_level(transform: Any) -> None:
    """Go's decoder matches struct keys case-insensitively, nested ones included."""
    wire = normalized_wire(ID="j-1", Labels={"env": "prod"}, Meta={"Owner": "me"})
    recased = recase(wire, transform)
    assert Job.model_validate(recased) == Job.model_validate(wire)


def test_map_keys_are_kept_verbatim() -> None:
    """Keys inside free-form maps (Meta, Labels, Env, Params) are data, not field names."""
    job = Job.model_validate(
        {
            "meta": {"OWNER": "x"},
            "labels": {"Env": "prod"},
            "tasks": [{"name": "t", "env": {"lower": "v"}, "engine": {"type": "docker", "params": {"image": "u"}}}],
        }
    )
    assert job.meta == {"OWNER": "x"}
    assert job.labels == {"Env": "prod"}
    assert job.task.env == {"lower": "v"}
    assert job.task.engine_spec.params == {"image": "u"}


def test_unknown_keys_are_ignored() -> None:
    """Unknown keys, at any level, are dropped silently."""
    job = Job.model_validate(
        {
            "Type": "batch",
            "Bogus": 1,
            "Tasks": [{"Name": "t", "Extra": {"x": 1}, "Engine": {"Type": "docker", "Other": True}}],
            "State": {"StateType": "Running", "Whatever": []},
        }
    )
    assert job.type == "batch"
    assert job.task.name == "t"
    assert job.state.state_type is JobStateType.RUNNING
    assert "Bogus" not in job.to_wire()


def test_the_last_of_two_differently_cased_keys_wins() -> None:
    """Like Go's decoder, a later key overwrites an earlier one that matches the same field."""
    assert Job.model_validate({"Name": "first", "name": "second"}).name == "second"
    assert Job.model_validate({"name": "first", "NAME": "second"}).name == "second"


@pytest.mark.parametrize(
    "data",
    [
        {"Count": "1"},
        {"Priority": True},
        {"Priority": 1.0},
        {"CreateTime": "5"},
        {"Name": 5},
        {"Meta": {"k": 1}},
        {"Tasks": {"Name": "t"}},
    ],
    ids=["string-for-int", "bool-for-int", "float-for-int", "string-for-int64", "int-for-string", "int-map-value",
         "object-for-list"],
)  # fmt: skip
def test_type_mismatches_are_rejected(data: dict[str, Any]) -> None:
    """A JSON type mismatch is a binding error in Go (api-models.md §1.2), never a silent conversion."""
    with pytest.raises(ValidationError):
        Job.model_validate(data)


def test_a_string_for_a_bool_is_rejected() -> None:
    """Go does not turn the string "true" into a bool."""
    with pytest.raises(ValidationError):
        RunCommandResult.model_validate({"StdoutTruncated": "true"})


def test_json_null_leaves_scalars_at_their_zero_value() -> None:
    """Go's decoder ignores null for strings and numbers, leaving the zero value."""
    job = Job.model_validate({"Name": None, "Priority": None, "Type": "batch"})
    assert (job.name, job.priority, job.type) == ("", 0, "batch")


def test_json_null_for_maps_and_lists_means_empty() -> None:
    """Go decodes null into a nil map or slice; the Go CLI can send "Constraints": null and "Meta": null."""
    job = Job.model_validate({"Type": "batch", "Constraints": None, "Meta": None, "Labels": None})
    assert (job.constraints, job.meta, job.labels) == ([], {}, {})


# --- Job and Task -------------------------------------------------------------------------------------------------


def test_normalized_job_has_the_exact_shape() -> None:
    """The whole stored job, key for key (api-models.md §4.1, §4.2)."""
    assert normalized_wire() == {
        "ID": "",
        "Name": "",
        "Namespace": "default",
        "Type": "batch",
        "Priority": 0,
        "Count": 1,
        "Constraints": [],
        "Meta": {},
        "Labels": {},
        "Tasks": [
            {
                "Name": "main",
                "Engine": {"Type": "docker", "Params": {"Image": "ubuntu"}},
                "Publisher": {"Type": ""},
                "Resources": {},
                "Network": {"Type": "None"},
                "Timeouts": {},
            }
        ],
        "State": {"StateType": "Undefined"},
        "Version": 0,
        "Revision": 0,
        "CreateTime": 0,
        "ModifyTime": 0,
    }


def test_job_keys_come_in_go_declaration_order() -> None:
    """Field order is the Go struct's (not meaningful, but it keeps diffs with the original readable)."""
    assert list(normalized_wire()) == [
        "ID", "Name", "Namespace", "Type", "Priority", "Count", "Constraints", "Meta", "Labels", "Tasks", "State",
        "Version", "Revision", "CreateTime", "ModifyTime",
    ]  # fmt: skip


def test_task_optional_collections_appear_when_set() -> None:
    """Env, Meta, InputSources and ResultPaths are emitted once they hold something."""
    job = minimal_job()
    task = job.task
    task.env = {"A": "1"}
    task.meta = {"m": "v"}
    task.input_sources = [InputSource(source=SpecConfig(type="urlDownload", params={"URL": "http://x"}), target="/in")]
    task.result_paths = [ResultPath(name="out", path="/outputs")]
    job.normalize()
    wire = job.to_wire()["Tasks"][0]
    assert wire["Env"] == {"A": "1"}
    assert wire["Meta"] == {"m": "v"}
    assert wire["InputSources"] == [
        {"Source": {"Type": "urlDownload", "Params": {"URL": "http://x"}}, "Alias": "", "Target": "/in"}
    ]
    assert wire["ResultPaths"] == [{"Name": "out", "Path": "/outputs"}]


def test_a_raw_task_writes_nil_engine_and_publisher_as_null() -> None:
    """Engine and Publisher are Go pointers without omitempty; the other pointers are omitempty."""
    assert Task(name="t").to_wire() == {"Name": "t", "Engine": None, "Publisher": None}


def test_resources_key_is_resources_not_resources_config() -> None:
    """The Go field is ResourcesConfig but its JSON key is Resources."""
    task = Task.model_validate({"Name": "t", "Resources": {"CPU": "500m", "Memory": "1gb", "Disk": "", "GPU": "1"}})
    assert task.to_wire()["Resources"] == {"CPU": "500m", "Memory": "1gb", "GPU": "1"}


def test_create_and_modify_times_are_integer_nanoseconds() -> None:
    """Job CreateTime and ModifyTime are int64 Unix nanoseconds on the wire."""
    wire = normalized_wire(CreateTime=NS, ModifyTime=NS + 1)
    assert wire["CreateTime"] == NS and wire["ModifyTime"] == NS + 1
    assert isinstance(wire["CreateTime"], int)


def test_explicit_count_is_kept_apart_from_a_missing_one() -> None:
    """A missing Count and an explicit 0 are different before normalisation (v1.7 Count rules)."""
    assert minimal_job().count is None
    assert minimal_job(Count=0).count == 0


@pytest.mark.parametrize(
    ("job_type", "state", "long_running", "terminal"),
    [("batch", "Running", False, False), ("ops", "Completed", False, True), ("service", "Failed", True, True),
     ("daemon", "Queued", True, False)],
)  # fmt: skip
def test_job_accessors(job_type: str, state: str, long_running: bool, terminal: bool) -> None:
    """task is the first task; service and daemon jobs are long-running; terminal follows the state."""
    job = minimal_job(Type=job_type, State={"StateType": state})
    assert job.task.name == "main"
    assert job.is_long_running is long_running
    assert job.is_terminal is terminal


# --- SpecConfig, inputs, results, network, timeouts, constraints --------------------------------------------------


def test_spec_config_params_are_omitted_when_empty() -> None:
    """Params carries omitempty; Type is always written."""
    assert SpecConfig().to_wire() == {"Type": ""}
    assert SpecConfig(type="noop", params={}).to_wire() == {"Type": "noop"}
    assert SpecConfig(type="s3", params={"Bucket": "b"}).to_wire() == {"Type": "s3", "Params": {"Bucket": "b"}}


def test_spec_config_is_type_is_case_insensitive_and_trimmed() -> None:
    """IsType compares with EqualFold after trimming the argument."""
    spec = SpecConfig(type="urlDownload")
    assert spec.is_type("URLDOWNLOAD") and spec.is_type(" urldownload ")
    assert not spec.is_type("url")


def test_spec_config_is_empty() -> None:
    """Empty means neither a type nor params."""
    assert SpecConfig().is_empty()
    assert not SpecConfig(type="local").is_empty()
    assert not SpecConfig(params={"a": 1}).is_empty()


def test_input_source_always_writes_alias_and_target() -> None:
    """Alias and Target have no omitempty; a nil Source is null."""
    assert InputSource().to_wire() == {"Source": None, "Alias": "", "Target": ""}


def test_result_path_shape() -> None:
    """ResultPath is {"Name","Path"}."""
    assert ResultPath(name="out", path="/outputs").to_wire() == {"Name": "out", "Path": "/outputs"}


def test_network_config_shape() -> None:
    """Type is a string; Domains carries omitempty."""
    assert NetworkConfig().to_wire() == {"Type": "None"}
    assert NetworkConfig(type=Network.HTTP, domains=["a.com"]).to_wire() == {"Type": "HTTP", "Domains": ["a.com"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("None", Network.NONE),
        ("none", Network.NONE),
        ("NONE", Network.NONE),
        ("Full", Network.FULL),
        ("full", Network.FULL),
        ("http", Network.HTTP),
        ("Http", Network.HTTP),
        (" HTTP ", Network.HTTP),
        ("host", Network.HOST),
        ("bridge", Network.BRIDGE),
        ("default", Network.DEFAULT),
    ],
)
def test_network_names_parse_case_insensitively(text: str, expected: Network) -> None:
    """ParseNetwork trims and uses EqualFold; the v1.7 names are accepted too."""
    assert NetworkConfig.model_validate({"Type": text}).type is expected


@pytest.mark.parametrize("value", ["Bogus", "", "nonee", "HTTPS"])
def test_unknown_network_names_are_errors(value: str) -> None:
    """An unknown name fails decoding (a 400 for the whole request)."""
    with pytest.raises(ValidationError, match="unknown type"):
        NetworkConfig.model_validate({"Type": value})


@pytest.mark.parametrize("value", [0, 1, 2, True])
def test_network_numbers_are_rejected(value: Any) -> None:
    """The enum decodes only from JSON strings."""
    with pytest.raises(ValidationError):
        NetworkConfig.model_validate({"Type": value})


def test_timeout_config_fields_are_omitempty_integers() -> None:
    """All three timeouts are int seconds with omitempty."""
    assert TimeoutConfig().to_wire() == {}
    assert TimeoutConfig(execution_timeout=60, queue_timeout=0, total_timeout=120).to_wire() == {
        "ExecutionTimeout": 60,
        "TotalTimeout": 120,
    }


@pytest.mark.parametrize(
    ("timeouts", "expected"),
    [
        (TimeoutConfig(execution_timeout=30, total_timeout=60), 30),
        (TimeoutConfig(total_timeout=60), 60),
        (TimeoutConfig(), 0),
    ],
)
def test_effective_execution_timeout_falls_back_to_the_total(timeouts: TimeoutConfig, expected: int) -> None:
    """GetExecutionTimeout: ExecutionTimeout if set, else TotalTimeout."""
    assert timeouts.effective_execution_timeout() == expected


def test_label_selector_requirement_shape() -> None:
    """Values carries omitempty."""
    assert LabelSelectorRequirement(key="gpu", operator="exists").to_wire() == {"Key": "gpu", "Operator": "exists"}
    assert LabelSelectorRequirement(key="r", operator="in", values=["a", "b"]).to_wire() == {
        "Key": "r",
        "Operator": "in",
        "Values": ["a", "b"],
    }


# --- States -----------------------------------------------------------------------------------------------------


def test_job_state_shape() -> None:
    """StateType is a string; Message and Details are omitempty."""
    assert JobState().to_wire() == {"StateType": "Undefined"}
    state = JobState(state_type=JobStateType.FAILED, message="boom", details={"k": "v"})
    assert state.to_wire() == {"StateType": "Failed", "Message": "boom", "Details": {"k": "v"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Running", JobStateType.RUNNING),
        ("running", JobStateType.RUNNING),
        ("RUNNING", JobStateType.RUNNING),
        ("  Completed ", JobStateType.COMPLETED),
        ("pending", JobStateType.PENDING),
        ("queued", JobStateType.QUEUED),
        ("failed", JobStateType.FAILED),
        ("stopped", JobStateType.STOPPED),
        ("undefined", JobStateType.UNDEFINED),
        ("bogus", JobStateType.UNDEFINED),
        ("", JobStateType.UNDEFINED),
    ],
)
def test_job_state_strings_parse_case_insensitively(text: str, expected: JobStateType) -> None:
    """Case-insensitive and trimmed; an unknown string becomes Undefined without an error."""
    assert JobState.model_validate({"StateType": text}).state_type is expected


@pytest.mark.parametrize("value", [0, 3, 1.0, True])
def test_job_state_numbers_are_rejected(value: Any) -> None:
    """A JSON number for a job state is a decoding error (a 400)."""
    with pytest.raises(ValidationError):
        JobState.model_validate({"StateType": value})


@pytest.mark.parametrize(
    ("model", "field", "zero"),
    [(JobState, "state_type", JobStateType.UNDEFINED), (NetworkConfig, "type", Network.NONE)],
    ids=["job-state", "network"],
)
def test_null_enums_keep_their_zero_value(model: type[WireModel], field: str, zero: object) -> None:
    """Go ignores null for a text-unmarshalled enum (no error): it stays at its zero value."""
    assert getattr(model.model_validate({"StateType": None, "Type": None}), field) is zero


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        (JobStateType.UNDEFINED, False),
        (JobStateType.PENDING, False),
        (JobStateType.QUEUED, False),
        (JobStateType.RUNNING, False),
        (JobStateType.COMPLETED, True),
        (JobStateType.FAILED, True),
        (JobStateType.STOPPED, True),
    ],
)
def test_job_terminal_states(state: JobStateType, terminal: bool) -> None:
    """Completed, Failed and Stopped are terminal."""
    assert state.is_terminal is terminal


@pytest.mark.parametrize(
    ("number", "state", "label"),
    [
        (0, ExecutionStateType.UNDEFINED, "Undefined"),
        (1, ExecutionStateType.NEW, "New"),
        (2, ExecutionStateType.ASK_FOR_BID, "AskForBid"),
        (3, ExecutionStateType.ASK_FOR_BID_ACCEPTED, "AskForBidAccepted"),
        (4, ExecutionStateType.ASK_FOR_BID_REJECTED, "AskForBidRejected"),
        (5, ExecutionStateType.BID_ACCEPTED, "BidAccepted"),
        (6, ExecutionStateType.RUNNING, "Running"),
        (7, ExecutionStateType.PUBLISHING, "Publishing"),
        (8, ExecutionStateType.BID_REJECTED, "BidRejected"),
        (9, ExecutionStateType.COMPLETED, "Completed"),
        (10, ExecutionStateType.FAILED, "Failed"),
        (11, ExecutionStateType.CANCELLED, "Cancelled"),
    ],
)
def test_execution_states_use_the_v152_numbering(number: int, state: ExecutionStateType, label: str) -> None:
    """Execution states travel as integers, numbered as from v1.5.2 on."""
    assert ExecutionState(state_type=state).to_wire() == {"StateType": number}
    assert ExecutionState.model_validate({"StateType": number}).state_type is state
    assert state.label == label


def test_execution_state_predicates() -> None:
    """Terminal, discarded and executing sets of the original."""
    terminal = {s for s in ExecutionStateType if s.is_terminal}
    discarded = {s for s in ExecutionStateType if s.is_discarded}
    executing = {s for s in ExecutionStateType if s.is_executing}
    assert terminal == {
        ExecutionStateType.BID_REJECTED,
        ExecutionStateType.COMPLETED,
        ExecutionStateType.FAILED,
        ExecutionStateType.CANCELLED,
        ExecutionStateType.ASK_FOR_BID_REJECTED,
    }
    assert discarded == {
        ExecutionStateType.ASK_FOR_BID_REJECTED,
        ExecutionStateType.BID_REJECTED,
        ExecutionStateType.CANCELLED,
        ExecutionStateType.FAILED,
    }
    assert executing == {ExecutionStateType.BID_ACCEPTED, ExecutionStateType.RUNNING, ExecutionStateType.PUBLISHING}


@pytest.mark.parametrize(
    ("number", "state", "label"),
    [
        (0, ExecutionDesiredStateType.PENDING, "Pending"),
        (1, ExecutionDesiredStateType.RUNNING, "Running"),
        (2, ExecutionDesiredStateType.STOPPED, "Stopped"),
    ],
)
def test_desired_states_are_integers(number: int, state: ExecutionDesiredStateType, label: str) -> None:
    """ExecutionDesiredStateType: 0 Pending, 1 Running, 2 Stopped."""
    assert ExecutionDesiredState(state_type=state, message="m").to_wire() == {"StateType": number, "Message": "m"}
    assert ExecutionDesiredState.model_validate({"stateType": number}).state_type is state
    assert state.label == label


# --- Executions ---------------------------------------------------------------------------------------------------


def test_execution_shape() -> None:
    """Every Execution key of v1.9, with Job omitted when absent (api-models.md §4.10) and JobVersion (v1.8+)."""
    execution = Execution(
        id="e-1",
        namespace="default",
        eval_id="ev",
        node_id="n-1",
        job_id="j-1",
        job_version=2,
        allocated_resources=AllocatedResources(tasks={"main": Resources(cpu=0.5, memory=1024)}),
        desired_state=ExecutionDesiredState(
            state_type=ExecutionDesiredStateType.STOPPED, message="execution completed"
        ),
        compute_state=ExecutionState(state_type=ExecutionStateType.COMPLETED),
        published_result=SpecConfig(type="urlDownload", params={"URL": "http://h:6001/e-1.tar.gz"}),
        run_output=RunCommandResult(stdout="out", stderr="err", exit_code=1),
        followup_eval_id="f",
        revision=3,
        create_time=NS,
        modify_time=NS + 5,
    )
    assert execution.to_wire() == {
        "ID": "e-1",
        "Namespace": "default",
        "EvalID": "ev",
        "Name": "",
        "NodeID": "n-1",
        "JobID": "j-1",
        "JobVersion": 2,
        "AllocatedResources": {"Tasks": {"main": {"CPU": 0.5, "Memory": 1024}}},
        "DesiredState": {"StateType": 2, "Message": "execution completed"},
        "ComputeState": {"StateType": 9},
        "PublishedResult": {"Type": "urlDownload", "Params": {"URL": "http://h:6001/e-1.tar.gz"}},
        "RunOutput": {
            "Stdout": "out",
            "StdoutTruncated": False,
            "stderr": "err",
            "StderrTruncated": False,
            "ExitCode": 1,
            "ErrorMsg": "",
        },
        "PreviousExecution": "",
        "NextExecution": "",
        "FollowupEvalID": "f",
        "Revision": 3,
        "CreateTime": NS,
        "ModifyTime": NS + 5,
    }


def test_default_execution_has_empty_published_result_and_allocations() -> None:
    """PublishedResult is {"Type":""} and AllocatedResources {"Tasks":{}} when there is nothing."""
    wire = Execution().to_wire()
    assert wire["PublishedResult"] == {"Type": ""}
    assert wire["AllocatedResources"] == {"Tasks": {}}
    assert "Job" not in wire and "PartitionIndex" not in wire


def test_execution_carries_partition_index_and_job_when_set() -> None:
    """PartitionIndex (v1.7) and Job are omitempty."""
    wire = Execution(partition_index=2, job=minimal_job()).to_wire()
    assert wire["PartitionIndex"] == 2
    assert wire["Job"]["Type"] == "batch"


@pytest.mark.parametrize("key", ["stderr", "Stderr", "STDERR"])
def test_run_output_stderr_is_lowercase_on_the_wire(key: str) -> None:
    """RunOutput writes the lowercase `stderr` key and reads it in any case."""
    output = RunCommandResult.model_validate({key: "oops", "ExitCode": 2})
    assert output.stderr == "oops"
    wire = output.to_wire()
    assert wire["stderr"] == "oops" and "Stderr" not in wire


def test_execution_accessors() -> None:
    """state, desired and is_terminal read the nested states."""
    execution = Execution.model_validate({"ComputeState": {"StateType": 10}, "DesiredState": {"StateType": 2}})
    assert execution.state is ExecutionStateType.FAILED
    assert execution.desired is ExecutionDesiredStateType.STOPPED
    assert execution.is_terminal


# --- History ------------------------------------------------------------------------------------------------------


def test_job_history_shape() -> None:
    """Time and Event.Timestamp are RFC 3339 strings; ExecutionID and the deprecated states are omitempty; JobVersion
    (v1.8+) always present."""
    item = JobHistory(
        seq_num=1,
        type=JobHistoryType.JOB_LEVEL,
        job_id="j-1",
        job_version=1,
        event=Event(topic="Submission", message="Job submitted", timestamp=NS),
        time=NS,
    )
    assert item.to_wire() == {
        "SeqNum": 1,
        "Type": "JobLevel",
        "JobID": "j-1",
        "JobVersion": 1,
        "Event": {"Message": "Job submitted", "Topic": "Submission", "Timestamp": STAMP},
        "Time": STAMP,
    }


def test_execution_level_history_with_deprecated_state_changes() -> None:
    """Execution-level items carry ExecutionID; StateChange omits empty Previous/New."""
    item = JobHistory(
        seq_num=4,
        type=JobHistoryType.EXECUTION_LEVEL,
        job_id="j-1",
        execution_id="e-1",
        time=NS,
        job_state=StateChange(previous="", new="Running"),
        execution_state=StateChange(previous=0, new=9),
    )
    wire = item.to_wire()
    assert wire["Type"] == "ExecutionLevel"
    assert wire["ExecutionID"] == "e-1"
    assert wire["JobState"] == {"New": "Running"}
    assert wire["ExecutionState"] == {"New": 9}


def test_history_times_parse_from_rfc3339_with_offsets() -> None:
    """Incoming RFC 3339 strings (any offset) become the same instant."""
    item = JobHistory.model_validate(
        {"Time": "2024-06-28T14:00:00.123456789+02:00", "Event": {"Timestamp": "2024-06-28T12:00:00.123456789Z"}}
    )
    assert item.time == NS and item.event.timestamp == NS


def test_zero_history_time_is_go_zero_time() -> None:
    """An unset time is Go's zero time, not the Unix epoch."""
    wire = JobHistory().to_wire()
    assert wire["Time"] == "0001-01-01T00:00:00Z"
    assert wire["Event"]["Timestamp"] == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("JobLevel", JobHistoryType.JOB_LEVEL), ("joblevel", JobHistoryType.JOB_LEVEL),
     ("EXECUTIONLEVEL", JobHistoryType.EXECUTION_LEVEL), (" ExecutionLevel ", JobHistoryType.EXECUTION_LEVEL),
     ("nonsense", JobHistoryType.UNDEFINED)],
)  # fmt: skip
def test_history_type_parses_like_go(text: str, expected: JobHistoryType) -> None:
    """JobHistoryType.UnmarshalText: trimmed, EqualFold, unknown becomes Undefined."""
    assert JobHistory.model_validate({"Type": text}).type is expected


def test_error_events_carry_the_detail_keys() -> None:
    """Error events use IsError/Hint/FailsExecution/Retryable details with string values."""
    event = Event.error("Exec", "failed", hint="try again", fails_execution=True, retryable=True)
    assert event.details == {"IsError": "true", "Hint": "try again", "FailsExecution": "true", "Retryable": "true"}
    assert event.is_error
    assert not Event.new("Submission", "Job submitted").is_error
    assert "Details" not in Event.new("Submission", "Job submitted").to_wire()


# --- Resources and nodes ------------------------------------------------------------------------------------------


def test_resources_are_all_omitempty() -> None:
    """A zero capacity serialises as {}; GPU details use Go's untagged field names."""
    assert Resources().to_wire() == {}
    gpu = GPU(index=0, name="Tesla T4", vendor="NVIDIA", memory=15360, pci_address="0000:00:1e.0")
    assert Resources(cpu=0.5, memory=1073741824, gpu=1, gpus=[gpu]).to_wire() == {
        "CPU": 0.5,
        "Memory": 1073741824,
        "GPU": 1,
        "GPUs": [{"Index": 0, "Name": "Tesla T4", "Vendor": "NVIDIA", "Memory": 15360, "PCIAddress": "0000:00:1e.0"}],
    }


def test_resources_config_is_strings_and_omitempty() -> None:
    """ResourcesConfig fields are strings with omitempty."""
    assert ResourcesConfig().to_wire() == {}
    assert ResourcesConfig(cpu="500m", disk="10gb").to_wire() == {"CPU": "500m", "Disk": "10gb"}


def test_node_state_shape() -> None:
    """NodeState with v1.6 ConnectionState; seq nums and LastError are omitempty."""
    state = NodeState(
        info=NodeInfo(
            node_id="n-1",
            node_type="Compute",
            labels={"os_type": "linux"},
            supported_protocols=["ncl/v1"],
            compute_node_info=ComputeNodeInfo(
                execution_engines=["docker"],
                max_capacity=Resources(cpu=2),
                running_executions=1,
            ),
            bacalhau_version=BuildVersionInfo(git_version="v1.5.2", build_date=NS, goos="linux", goarch="amd64"),
        ),
        membership="APPROVED",
        connection="CONNECTED",
        connection_state=ConnectionState(status="CONNECTED", last_heartbeat=NS, connected_since=NS),
    )
    assert state.to_wire() == {
        "Info": {
            "NodeID": "n-1",
            "NodeType": "Compute",
            "Labels": {"os_type": "linux"},
            "SupportedProtocols": ["ncl/v1"],
            "ComputeNodeInfo": {
                "ExecutionEngines": ["docker"],
                "Publishers": [],
                "StorageSources": [],
                "MaxCapacity": {"CPU": 2.0},
                "QueueCapacity": {},
                "AvailableCapacity": {},
                "MaxJobRequirements": {},
                "RunningExecutions": 1,
                "EnqueuedExecutions": 0,
            },
            "BacalhauVersion": {
                "GitVersion": "v1.5.2",
                "GitCommit": "",
                "BuildDate": STAMP,
                "GOOS": "linux",
                "GOARCH": "amd64",
            },
        },
        "Membership": "APPROVED",
        "Connection": "CONNECTED",
        "ConnectionState": {
            "Status": "CONNECTED",
            "LastHeartbeat": STAMP,
            "ConnectedSince": STAMP,
            "DisconnectedSince": "0001-01-01T00:00:00Z",
        },
    }


def test_requester_node_omits_compute_info() -> None:
    """ComputeNodeInfo is a pointer with omitempty in v1.5; a requester is not schedulable."""
    node = NodeState(info=NodeInfo(node_id="n", node_type="Requester"), membership="APPROVED", connection="CONNECTED")
    assert "ComputeNodeInfo" not in node.to_wire()["Info"]
    assert not node.is_schedulable


def test_compute_node_address_and_version_parts_when_set() -> None:
    """address is lowercase (v1.7); Major/Minor appear only when set."""
    info = ComputeNodeInfo(address="10.0.0.1:1234")
    assert info.to_wire()["address"] == "10.0.0.1:1234"
    assert "address" not in ComputeNodeInfo().to_wire()
    version = BuildVersionInfo(major="1", minor="5").to_wire()
    assert (version["Major"], version["Minor"]) == ("1", "5")


def test_schedulable_needs_approved_connected_compute() -> None:
    """Only an approved, connected compute node can take work."""
    info = NodeInfo(node_type="Compute", compute_node_info=ComputeNodeInfo())
    assert NodeState(info=info, membership="APPROVED", connection="CONNECTED").is_schedulable
    assert not NodeState(info=info, membership="PENDING", connection="CONNECTED").is_schedulable
    assert not NodeState(info=info, membership="APPROVED", connection="DISCONNECTED").is_schedulable


def test_evaluation_shape() -> None:
    """WaitUntil is RFC 3339; CreateTime/ModifyTime are nanoseconds (api-models.md §4.12)."""
    evaluation = Evaluation(id="u", job_id="j", type="batch", wait_until=NS, create_time=NS)
    wire = evaluation.to_wire()
    assert wire["WaitUntil"] == STAMP
    assert wire["CreateTime"] == NS and wire["ModifyTime"] == 0
    assert wire["Status"] == "pending"


# --- Round trips --------------------------------------------------------------------------------------------------

FREE_FORM_MAPS = {"Meta", "Labels", "Env", "Params", "Details"}


def recase(value: Any, transform: Any) -> Any:
    """Apply ``transform`` to every model key, leaving the contents of free-form maps alone."""
    if isinstance(value, list):
        return [recase(item, transform) for item in value]
    if isinstance(value, dict):
        return {transform(k): (v if k in FREE_FORM_MAPS else recase(v, transform)) for k, v in value.items()}
    return value


names = st.text(st.characters(codec="utf-8"), max_size=12)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | names
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
string_maps = st.dictionaries(names, names, max_size=3)
spec_configs = st.builds(SpecConfig, type=names, params=st.dictionaries(names, json_values, max_size=3))

tasks = st.builds(
    Task,
    name=names,
    engine=st.none() | spec_configs,
    publisher=st.none() | spec_configs,
    env=string_maps,
    meta=string_maps,
    input_sources=st.lists(
        st.builds(InputSource, source=st.none() | spec_configs, alias=names, target=names), max_size=2
    ),
    result_paths=st.lists(st.builds(ResultPath, name=names, path=names), max_size=2),
    resources=st.none() | st.builds(ResourcesConfig, cpu=names, memory=names, disk=names, gpu=names),
    network=st.none() | st.builds(NetworkConfig, type=st.sampled_from(Network), domains=st.lists(names, max_size=2)),
    timeouts=st.none()
    | st.builds(TimeoutConfig, execution_timeout=st.integers(-5, 10**6), queue_timeout=st.integers(0, 10**6),
                total_timeout=st.integers(0, 10**6)),
)  # fmt: skip

jobs = st.builds(
    Job,
    id=names,
    name=names,
    namespace=names,
    type=st.sampled_from(["batch", "ops", "daemon", "service", "", "other"]),
    priority=st.integers(-100, 100),
    count=st.none() | st.integers(-2, 10),
    constraints=st.lists(
        st.builds(LabelSelectorRequirement, key=names, operator=st.sampled_from(["in", "=", "exists", "gt"]),
                  values=st.lists(names, max_size=2)),
        max_size=2,
    ),
    meta=string_maps,
    labels=string_maps,
    tasks=st.lists(tasks, max_size=2),
    state=st.builds(JobState, state_type=st.sampled_from(JobStateType), message=names, details=string_maps),
    version=st.integers(0, 2**63 - 1),
    revision=st.integers(0, 2**63 - 1),
    create_time=st.integers(0, 2**63 - 1),
    modify_time=st.integers(0, 2**63 - 1),
)  # fmt: skip


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(jobs)
def test_jobs_round_trip_through_json(job: Job) -> None:
    """Whatever a job holds survives encoding to JSON text and decoding again."""
    assert Job.model_validate(json.loads(job.to_json())) == job


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(jobs, st.randoms(use_true_random=False))
def test_jobs_decode_with_keys_in_any_case(job: Job, rnd: random.Random) -> None:
    """Randomly recased keys decode to the same job."""

    def flip(key: str) -> str:
        return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in key)

    assert Job.model_validate(recase(job.to_wire(), flip)) == job


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    st.builds(
        Execution,
        id=names,
        node_id=names,
        compute_state=st.builds(ExecutionState, state_type=st.sampled_from(ExecutionStateType), message=names),
        desired_state=st.builds(ExecutionDesiredState, state_type=st.sampled_from(ExecutionDesiredStateType)),
        run_output=st.none() | st.builds(RunCommandResult, stdout=names, stderr=names, exit_code=st.integers(-1, 255)),
        partition_index=st.integers(0, 5),
        create_time=st.integers(0, 2**63 - 1),
    )
)
def test_executions_round_trip_through_json(execution: Execution) -> None:
    """Executions survive a JSON round trip, integer states included."""
    assert Execution.model_validate(json.loads(execution.to_json())) == execution


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    st.builds(
        JobHistory,
        seq_num=st.integers(0, 2**32),
        type=st.sampled_from(JobHistoryType),
        job_id=names,
        execution_id=names,
        event=st.builds(Event, message=names, topic=names, timestamp=st.integers(1, 2**62), details=string_maps),
        time=st.integers(1, 2**62),
    )
)
def test_history_round_trips_through_json(item: JobHistory) -> None:
    """History items survive a JSON round trip, times as RFC 3339 strings."""
    assert JobHistory.model_validate(json.loads(item.to_json())) == item
