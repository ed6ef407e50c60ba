"""Bounds on what a client controls (models/limits.py), and the hostile input that used to get past them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bacalhau.compute.executors.base import ExecutorError, RunRequest
from bacalhau.errors import InvalidRequest
from bacalhau.lib.paths import UnsafePath, child, within
from bacalhau.models import limits
from bacalhau.models.base import describe_validation_error
from bacalhau.models.job import Job
from bacalhau.models.paging import InvalidPagingToken, PagingToken
from bacalhau.models.resources import ResourcesConfig, parse_cpu
from bacalhau.models.spec import ResultPath, SpecConfig, is_result_name
from bacalhau.orchestrator.jobs import JobService, TaskDefaults
from bacalhau.orchestrator.store import JobStore


def job_data(task: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    task_data: dict[str, Any] = {"Name": "main", "Engine": {"Type": "noop"}, **(task or {})}
    return {"Type": "batch", "Tasks": [task_data], **fields}


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def refusal(data: dict[str, Any]) -> str:
    """The message a decode of ``data`` fails with (the field's location, then what is wrong)."""
    with pytest.raises(ValidationError) as raised:
        Job.model_validate(data)
    return describe_validation_error(raised.value)


# --- bounds declared on the wire models ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "location"),
    [
        (job_data(Priority=2**70), "Priority"),
        (job_data(Priority=-(2**63) - 1), "Priority"),
        (job_data(Count=2**63), "Count"),
        (job_data(CreateTime=2**64), "CreateTime"),
        (job_data({"Timeouts": {"ExecutionTimeout": 2**70}}), "Tasks.0.Timeouts.ExecutionTimeout"),
        (job_data({"Timeouts": {"QueueTimeout": 2**63}}), "Tasks.0.Timeouts.QueueTimeout"),
        (job_data({"Timeouts": {"TotalTimeout": limits.MAX_DURATION_SECONDS + 1}}), "Tasks.0.Timeouts.TotalTimeout"),
        (job_data(Name="n" * (limits.MAX_NAME_LENGTH + 1)), "Name"),
        (job_data(Namespace="n" * (limits.MAX_NAME_LENGTH + 1)), "Namespace"),
        (job_data(Labels={f"k{i}": "v" for i in range(limits.MAX_ENTRIES + 1)}), "Labels"),
        (job_data(Labels={"k": "v" * (limits.MAX_LABEL_VALUE_LENGTH + 1)}), "Labels.k"),
        (job_data(Meta={"k" * (limits.MAX_KEY_LENGTH + 1): "v"}), "Meta.kkkk"),
        (job_data({"Env": {"A": "v" * (limits.MAX_ENV_VALUE_LENGTH + 1)}}), "Tasks.0.Env.A"),
        (job_data({"Env": {f"K{i}": "v" for i in range(limits.MAX_ENV_ENTRIES + 1)}}), "Tasks.0.Env"),
        (job_data({"InputSources": [{"Target": "/i"}] * (limits.MAX_INPUTS + 1)}), "Tasks.0.InputSources"),
        (job_data({"ResultPaths": [{"Name": "a", "Path": "/" + "p" * limits.MAX_PATH_LENGTH}]}), "ResultPaths.0.Path"),
        (job_data(Constraints=[{"Key": "k", "Operator": "in", "Values": ["v"] * 65}]), "Constraints.0.Values"),
        (job_data({"Resources": {"CPU": "1" * (limits.MAX_NAME_LENGTH + 1)}}), "Tasks.0.Resources.CPU"),
    ],
)
def test_each_bound_is_refused_naming_the_field(data: dict[str, Any], location: str) -> None:
    assert location in refusal(data)


def test_the_largest_allowed_values_pass() -> None:
    job = Job.model_validate(
        job_data(
            {
                "Timeouts": {"ExecutionTimeout": limits.MAX_DURATION_SECONDS},
                "Env": {f"K{i}": "v" for i in range(limits.MAX_ENV_ENTRIES)},
                "Engine": {"Type": "noop", "Params": {"P": nested(limits.MAX_PARAMS_DEPTH - 1)}},
            },
            Priority=2**63 - 1,
            Name="n" * limits.MAX_NAME_LENGTH,
            Labels={f"k{i}": "v" * limits.MAX_LABEL_VALUE_LENGTH for i in range(limits.MAX_ENTRIES)},
        )
    )
    assert job.validate_submission() == []


def test_the_openapi_schema_states_the_bounds() -> None:
    schema = Job.model_json_schema()
    task = schema["$defs"]["Task"]["properties"]
    assert schema["properties"]["Priority"]["maximum"] == limits.INT64_MAX
    assert schema["properties"]["Labels"]["maxProperties"] == limits.MAX_ENTRIES
    assert task["Env"]["propertyNames"]["maxLength"] == limits.MAX_KEY_LENGTH
    assert schema["$defs"]["TimeoutConfig"]["properties"]["ExecutionTimeout"]["maximum"] == limits.MAX_DURATION_SECONDS


@pytest.mark.parametrize(
    ("task", "role"),
    [
        ({"Engine": {"Type": "noop", "Params": {"P": nested(limits.MAX_PARAMS_DEPTH)}}}, "engine"),
        ({"Publisher": {"Type": "local", "Params": {"P": nested(limits.MAX_PARAMS_DEPTH)}}}, "publisher"),
        (
            {"InputSources": [{"Target": "/i", "Source": {"Type": "inline", "Params": {"P": nested(40)}}}]},
            "input source",
        ),
    ],
)
def test_free_form_parameters_nest_at_most_32_deep(task: dict[str, Any], role: str) -> None:
    errors = Job.model_validate(job_data(task)).validate_submission()
    assert f"task main validation failed: {role} parameters nest deeper than 32 levels" in errors


# --- result names: one plain folder name ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["/", "/var/lib/x", "..", ".", "../..", "a/b", "a\\b", "x\x00", "stdout", "exitCode"])
def test_result_names_that_could_leave_the_results_folder_are_refused(name: str) -> None:
    job = Job.model_validate(job_data({"Publisher": {"Type": "local"}, "ResultPaths": [{"Name": name, "Path": "/o"}]}))
    assert not is_result_name(name)
    assert any("must be one folder name" in error for error in job.validate_submission())


@pytest.mark.parametrize("name", ["outputs", "out.1", "my_results", "A-b", "...x"])
def test_plain_result_names_pass(name: str) -> None:
    assert is_result_name(name)
    assert ResultPath(name=name, path="/o").validate_path() == []


def test_the_compute_node_refuses_an_escaping_result_name_whoever_sent_it(tmp_path: Path) -> None:
    request = RunRequest("e-1", "j-1", SpecConfig(type="wasm"), tmp_path / "results", tmp_path / "work")
    assert request.output_dir(ResultPath(name="out", path="/o")) == tmp_path / "results" / "out"
    for name in ("/", "../..", "/etc"):
        with pytest.raises(ExecutorError, match="must be one folder name"):
            request.output_dir(ResultPath(name=name, path="/o"))


def test_paths_from_other_peoples_strings_stay_in_their_folder(tmp_path: Path) -> None:
    assert child(tmp_path, "e-1") == tmp_path / "e-1"
    assert within(tmp_path, "a/../b") == (tmp_path / "b").resolve()
    (tmp_path / "link").symlink_to("/etc")
    for name in ("..", ".", "", "a/b", "x\x00"):
        with pytest.raises(UnsafePath):
            child(tmp_path, name)
    for relative in ("..", "../x", "/etc/passwd", "link/passwd", "a\x00"):
        with pytest.raises(UnsafePath):
            within(tmp_path, relative)


# --- the original's rules and ours on names, labels and env --------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"": "x"}, "environment variable name cannot be empty"),
        ({"lower": "x"}, "environment variable 'lower' must be uppercase"),
        ({"1A": "x"}, "environment variable '1A' must start with a letter"),
        ({"A=B": "x"}, "environment variable 'A=B' can only contain letters, numbers, and underscores"),
        ({"BACALHAU_X": "x"}, "environment variable 'BACALHAU_X' cannot start with BACALHAU_"),
        ({"A": ""}, "environment variable 'A' cannot have empty value"),
        ({"A": "x\x00y"}, "environment variable 'A' cannot contain null characters"),
    ],
)
def test_environment_variables_follow_the_original_rules(env: dict[str, str], message: str) -> None:
    assert message in "\n".join(Job.model_validate(job_data({"Env": env})).validate_submission())


def test_nul_characters_are_refused_in_labels_and_namespaces() -> None:
    assert (
        "job labels cannot contain null characters"
        in Job.model_validate(job_data(Labels={"a\x00": "b"})).validate_submission()
    )
    assert (
        "job labels cannot contain null characters"
        in Job.model_validate(job_data(Labels={"a": "\x00"})).validate_submission()
    )
    job = Job.model_validate(job_data(ID="j-1", Name="n", Namespace="ns\x00"))
    assert "job namespace contains a null character" in job.validate_job()


# --- numbers the arithmetic used to choke on ------------------------------------------------------------------------


@pytest.mark.parametrize("cpu", ["1e306", "1e400", "99999999999999999999999m", "9223372036854776"])
def test_cpu_values_beyond_int64_millicores_are_invalid(cpu: str) -> None:
    with pytest.raises(ValueError, match="invalid CPU value"):
        parse_cpu(cpu)
    assert ResourcesConfig(cpu=cpu).parse()[1] == [f"invalid CPU value: {cpu}"]


def test_paging_tokens_beyond_int64_are_invalid() -> None:
    token = PagingToken("created_at", False, 10, 10, (2**63, "j-1")).encode()
    with pytest.raises(InvalidPagingToken, match="malformed token"):
        PagingToken.decode(token)
    assert PagingToken.decode(PagingToken("", False, 1, 1, (2**63 - 1, "j")).encode()).after == (2**63 - 1, "j")


# --- the submission pipeline ---------------------------------------------------------------------------------------


@pytest.fixture
def service(store: JobStore) -> JobService:
    return JobService(store, "n-orchestrator", {"batch": TaskDefaults()}, max_count=10)


async def test_count_above_the_configured_maximum_is_refused(service: JobService, store: JobStore) -> None:
    for count in (11, 10**9, 2**62):
        with pytest.raises(InvalidRequest, match=f"job count {count} exceeds the maximum of 10"):
            await service.submit(Job.model_validate(job_data(Count=count)))
    assert (await service.list_jobs())[0] == [] and await store.open_evaluations() == []
    assert (await service.submit(Job.model_validate(job_data(Count=10)))).job_id


@pytest.mark.parametrize("publisher", ["ipfs", "s3managed"])
async def test_publishers_we_do_not_provide_are_refused(service: JobService, publisher: str) -> None:
    job = Job.model_validate(job_data({"Publisher": {"Type": publisher}}))
    with pytest.raises(InvalidRequest, match=f"unknown publisher type '{publisher}'"):
        await service.submit(job)


async def test_the_s3_pre_signed_input_source_is_refused(service: JobService) -> None:
    source = {"Target": "/in", "Source": {"Type": "s3PreSigned", "Params": {"PreSignedURL": "http://x"}}}
    with pytest.raises(InvalidRequest, match="unknown input source type 's3PreSigned'"):
        await service.submit(Job.model_validate(job_data({"InputSources": [source]})))


async def test_plugin_names_are_stored_in_the_registry_spelling(service: JobService, store: JobStore) -> None:
    """Matched as the original matches them (any case, trimmed), then stored so that every node's lookup is exact."""
    source = {"Target": "/in", "Source": {"Type": " URLDOWNLOAD", "Params": {"URL": "http://x/y"}}}
    task = {"Engine": {"Type": "NoOp"}, "Publisher": {"Type": "Local"}, "InputSources": [source]}
    job = await store.get_job((await service.submit(Job.model_validate(job_data(task)))).job_id)
    assert (job.task.engine_spec.type, job.task.publisher_spec.type) == ("noop", "local")
    assert job.task.input_sources[0].source is not None and job.task.input_sources[0].source.type == "urlDownload"


async def test_invalid_legacy_wasm_parameters_are_a_bad_request(service: JobService) -> None:
    engine = {"Type": "wasm", "Params": {"EntryModule": {"Source": 5}}}
    with pytest.raises(InvalidRequest, match="invalid legacy WASM engine parameters"):
        await service.submit(Job.model_validate(job_data({"Engine": engine})))


async def test_what_the_orchestrator_adds_must_fit_the_bounds_too(service: JobService, store: JobStore) -> None:
    """A client's meta at the limit leaves no room for the keys the orchestrator adds: refused, not stored broken."""
    meta = {f"k{i}": "v" for i in range(limits.MAX_ENTRIES)}
    with pytest.raises(InvalidRequest, match="exceeds a limit: Meta"):
        await service.submit(Job.model_validate(job_data(Meta=meta)))
    assert (await service.list_jobs())[0] == []


async def test_a_stop_reason_is_bounded(service: JobService) -> None:
    job_id = (await service.submit(Job.model_validate(job_data()))).job_id
    with pytest.raises(InvalidRequest, match="at most 4096 characters"):
        await service.stop(job_id, "x" * (limits.MAX_MESSAGE_LENGTH + 1))
    assert await service.stop(job_id, "x" * limits.MAX_MESSAGE_LENGTH)
