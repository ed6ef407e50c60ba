"""Job submission checks, store validation, normalisation and sanitisation, worded as Go v1.5.2 words them.

Go joins errors with errors.Join, so the expected messages below are the Go error text: lines joined with "\\n".
Sources: pkg/models/job.go, task.go, spec_config.go, input_source.go, path.go, timeout.go, resource.go, selector.go.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bacalhau.models.job import Job
from bacalhau.models.state import JobStateType

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)


def make_job(task: dict[str, Any] | None = None, **fields: Any) -> Job:
    """A valid batch job with one docker task; ``task`` replaces or adds task keys, ``fields`` job keys."""
    task_data: dict[str, Any] = {"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu"}}}
    task_data.update(task or {})
    data: dict[str, Any] = {"Type": "batch", "Tasks": [task_data]}
    data.update(fields)
    return Job.model_validate(data)


def submission_error(job: Job) -> str:
    """The Go error text of ValidateSubmission ("" when valid)."""
    return "\n".join(job.validate_submission())


def store_error(job: Job) -> str:
    """The Go error text of Validate, as run by the job store after normalisation."""
    return "\n".join(job.validate_job())


def stored(job: Job, job_id: str = "j-1") -> Job:
    """The job as the store sees it: an ID and normalised."""
    job.id = job_id
    job.normalize()
    return job


# --- ValidateSubmission: job level --------------------------------------------------------------------------------


def test_a_valid_job_passes() -> None:
    """The minimal batch job is valid."""
    assert make_job().validate_submission() == []


@pytest.mark.parametrize("job_type", ["batch", "ops", "daemon", "service"])
def test_every_job_type_is_accepted(job_type: str) -> None:
    """The four job types."""
    assert make_job(Type=job_type).validate_submission() == []


def test_missing_job_type() -> None:
    """An empty Type."""
    assert submission_error(make_job(Type="")) == "missing job type"


@pytest.mark.parametrize("job_type", ["Batch", "BATCH", " batch", "job", "docker"])
def test_invalid_job_type_is_quoted(job_type: str) -> None:
    """Types are case-sensitive; the message quotes with %q."""
    assert submission_error(make_job(Type=job_type)) == f'invalid job type: "{job_type}"'


def test_invalid_job_type_quotes_like_go() -> None:
    """%q escapes quotes and control characters."""
    assert submission_error(make_job(Type='a"b\n')) == 'invalid job type: "a\\"b\\n"'


@pytest.mark.parametrize(("job_type", "quoted"), [("a\x01", '"a\\x01"'), ("\x7f", '"\\x7f"'), ("é", '"é"')])
def test_invalid_job_type_escapes_like_go_q(job_type: str, quoted: str) -> None:
    """Go's %q (strconv.Quote) writes control bytes as \\xNN and keeps printable Unicode."""
    assert submission_error(make_job(Type=job_type)) == f"invalid job type: {quoted}"


def test_negative_count() -> None:
    """Count must be >= 0."""
    assert submission_error(make_job(Count=-1)) == "job count must be >= 0"


@pytest.mark.parametrize("job_type", ["daemon", "ops"])
def test_daemon_and_ops_cannot_ask_for_more_than_one(job_type: str) -> None:
    """v1.7+ rule: Count > 1 is invalid for daemon and ops jobs (they run on every matching node)."""
    assert (
        submission_error(make_job(Type=job_type, Count=3))
        == f"{job_type} jobs cannot specify count > 1 as they run on all matching nodes"
    )
    assert make_job(Type=job_type, Count=1).validate_submission() == []
    assert make_job(Type=job_type, Count=0).validate_submission() == []


@pytest.mark.parametrize("job_type", ["batch", "service"])
def test_batch_and_service_may_ask_for_many(job_type: str) -> None:
    """Any Count >= 0 is fine for batch and service jobs."""
    assert make_job(Type=job_type, Count=50).validate_submission() == []


def test_missing_tasks() -> None:
    """At least one task."""
    assert submission_error(make_job(Tasks=[])) == "missing job tasks"


def test_job_level_errors_come_in_go_order() -> None:
    """Type, count, tasks: each on its own line."""
    assert submission_error(Job.model_validate({"Count": -2})) == (
        "missing job type\njob count must be >= 0\nmissing job tasks"
    )


# --- ValidateSubmission: constraints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        ({"Key": "", "Operator": "exists"}, "selector key cannot be blank"),
        ({"Key": "  ", "Operator": "="}, "selector key cannot be blank\n"
                                         "selector values must have exactly one value for other operators"),
        ({"Key": "a", "Operator": "in"}, "selector values cannot be empty for In or NotIn operators"),
        ({"Key": "a", "Operator": "notin", "Values": []}, "selector values cannot be empty for In or NotIn operators"),
        ({"Key": "a", "Operator": "exists", "Values": ["x"]},
         "selector values must be empty for Exists or KeyNotInImap operators"),
        ({"Key": "a", "Operator": "!", "Values": ["x"]},
         "selector values must be empty for Exists or KeyNotInImap operators"),
        ({"Key": "a", "Operator": "=", "Values": ["x", "y"]},
         "selector values must have exactly one value for other operators"),
        ({"Key": "a", "Operator": "gt"}, "selector values must have exactly one value for other operators"),
        ({"Key": "a", "Operator": "!=", "Values": []},
         "selector values must have exactly one value for other operators"),
    ],
)  # fmt: skip
def test_constraint_errors(constraint: dict[str, Any], message: str) -> None:
    """LabelSelectorRequirement.Validate, prefixed with the constraint's 1-based index."""
    assert submission_error(make_job(Constraints=[constraint])) == f"constraint 1 validation failed: {message}"


@pytest.mark.parametrize(
    "constraint",
    [
        {"Key": "a", "Operator": "in", "Values": ["x", "y"]},
        {"Key": "a", "Operator": "notin", "Values": ["x"]},
        {"Key": "a", "Operator": "exists"},
        {"Key": "a", "Operator": "!"},
        {"Key": "a", "Operator": "=", "Values": ["x"]},
        {"Key": "a", "Operator": "==", "Values": ["x"]},
        {"Key": "a", "Operator": "!=", "Values": ["x"]},
        {"Key": "a", "Operator": "gt", "Values": ["1"]},
        {"Key": "a", "Operator": "lt", "Values": ["1"]},
    ],
)
def test_valid_constraints(constraint: dict[str, Any]) -> None:
    """Every operator with the right number of values."""
    assert make_job(Constraints=[constraint]).validate_submission() == []


def test_constraints_are_numbered_from_one() -> None:
    """Only the invalid constraints are reported, each with its position."""
    job = make_job(
        Constraints=[
            {"Key": "ok", "Operator": "exists"},
            {"Key": "", "Operator": "exists"},
            {"Key": "b", "Operator": "in"},
        ]
    )
    assert submission_error(job) == (
        "constraint 2 validation failed: selector key cannot be blank\n"
        "constraint 3 validation failed: selector values cannot be empty for In or NotIn operators"
    )


def test_unknown_constraint_operators_are_rejected() -> None:
    """Our addition: an operator outside the Kubernetes set is rejected at submission, naming the operator.

    (v1.5.2 only counts values here and fails such a job later, when it schedules it.)"""
    errors = make_job(Constraints=[{"Key": "a", "Operator": "like", "Values": ["x"]}]).validate_submission()
    assert len(errors) == 1
    assert errors[0].startswith("constraint 1 validation failed: ") and "like" in errors[0]


# --- ValidateSubmission: tasks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"Name": ""}, "task  validation failed: missing task name"),
        ({"Name": "   "}, "task     validation failed: missing task name"),
        ({"Name": "a\x00b"}, "task a\x00b validation failed: task name cannot contain null characters"),
        ({"Engine": None}, "task main validation failed: engine validation failed: nil spec config"),
        ({"Engine": {"Type": ""}}, "task main validation failed: engine validation failed: missing spec type"),
        ({"Engine": {"Type": " \t"}}, "task main validation failed: engine validation failed: missing spec type"),
        ({"Engine": {"Params": {"Image": "x"}}},
         "task main validation failed: engine validation failed: missing spec type"),
    ],
)  # fmt: skip
def test_task_name_and_engine(task: dict[str, Any], message: str) -> None:
    """Task name and engine checks, prefixed "task <name> validation failed: "."""
    assert submission_error(make_job(task)) == message


@pytest.mark.parametrize(
    ("timeouts", "message"),
    [
        ({"ExecutionTimeout": -1}, "invalid execution timeout value: -1s"),
        ({"QueueTimeout": -90}, "invalid queue timeout value: -1m30s"),
        ({"TotalTimeout": -3600}, "invalid total timeout value: -1h0m0s"),
        ({"TotalTimeout": -3661}, "invalid total timeout value: -1h1m1s"),
        ({"ExecutionTimeout": -5, "QueueTimeout": -6, "TotalTimeout": -7},
         "invalid execution timeout value: -5s\ninvalid queue timeout value: -6s\ninvalid total timeout value: -7s"),
    ],
)  # fmt: skip
def test_negative_timeouts(timeouts: dict[str, int], message: str) -> None:
    """Timeouts may not be negative; Go prints them as time.Duration strings."""
    expected = f"task main validation failed: task timeouts validation failed: {message}"
    assert submission_error(make_job({"Timeouts": timeouts})) == expected


def test_timeout_totals_are_not_checked_at_submission() -> None:
    """ExecutionTimeout + QueueTimeout > TotalTimeout is a store-time check (defaults may still change them)."""
    assert make_job({"Timeouts": {"ExecutionTimeout": 100, "TotalTimeout": 10}}).validate_submission() == []


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"CPU": "abc"}, "invalid CPU value: abc"),
        ({"CPU": "1.5m"}, "invalid CPU value: 1.5m"),
        ({"Memory": "10 zb"}, "invalid memory value: 10zb"),
        ({"Disk": "10 ZB"}, "invalid disk value: 10zb"),
        ({"GPU": "1.5"}, "invalid GPU value: 1.5"),
        ({"CPU": "-1"}, "invalid CPU value: -1.000000"),
        ({"CPU": "abc", "Memory": "xyz"}, "invalid CPU value: abc\ninvalid memory value: xyz"),
    ],
)
def test_invalid_resources(resources: dict[str, str], message: str) -> None:
    """Resource strings must parse (normalised values in the messages)."""
    expected = f"task main validation failed: task resources validation failed: {message}"
    assert submission_error(make_job({"Resources": resources})) == expected


def test_valid_resources() -> None:
    """Checklist item 8 values are all accepted."""
    job = make_job({"Resources": {"CPU": "100m", "Memory": "1Gi", "Disk": "10mb", "GPU": "1"}})
    assert job.validate_submission() == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"Source": {"Type": "urlDownload"}, "Target": ""}, "missing artifact target"),
        ({"Source": {"Type": "urlDownload"}, "Target": "  "}, "missing artifact target"),
        ({"Target": "/in"}, "invalid artifact source: nil spec config"),
        ({"Source": {"Type": " "}, "Target": "/in"}, "invalid artifact source: missing spec type"),
        ({}, "missing artifact target\ninvalid artifact source: nil spec config"),
    ],
)
def test_invalid_input_sources(source: dict[str, Any], message: str) -> None:
    """Each input needs a Target and a Source with a Type."""
    expected = f"task main validation failed: artifact validation failed: {message}"
    assert submission_error(make_job({"InputSources": [source]})) == expected


def test_only_the_first_invalid_input_source_is_reported() -> None:
    """Go's ValidateSlice stops at the first element that fails."""
    job = make_job({"InputSources": [{"Target": "/a"}, {"Source": {"Type": "ipfs"}}]})
    assert submission_error(job) == (
        "task main validation failed: artifact validation failed: invalid artifact source: nil spec config"
    )


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"Name": "out", "Path": "out"}, "result path `out` must be absolute"),
        ({"Name": "out", "Path": "./out"}, "result path `./out` must be absolute"),
        ({"Name": "", "Path": "/out"}, "missing name"),
        ({"Name": "out", "Path": ""}, "missing path\nresult path `` must be absolute"),
        ({"Name": " ", "Path": " "}, "missing path\nmissing name\nresult path ` ` must be absolute"),
    ],
)
def test_invalid_result_paths(result: dict[str, str], message: str) -> None:
    """Result paths need a name and an absolute path."""
    expected = f"task main validation failed: output validation failed: {message}"
    assert submission_error(make_job({"ResultPaths": [result]})) == expected


def test_only_the_first_invalid_result_path_is_reported() -> None:
    """Go's ValidateSlice stops at the first element that fails."""
    job = make_job({"ResultPaths": [{"Name": "a", "Path": "rel"}, {"Name": "", "Path": "/b"}]})
    assert submission_error(job) == (
        "task main validation failed: output validation failed: result path `rel` must be absolute"
    )


def test_duplicate_inputs_and_outputs() -> None:
    """Aliases, targets, result names and result paths must be unique within a task."""
    job = make_job(
        {
            "InputSources": [
                {"Source": {"Type": "ipfs"}, "Alias": "a", "Target": "/in"},
                {"Source": {"Type": "ipfs"}, "Alias": "a", "Target": "/in"},
            ],
            "ResultPaths": [{"Name": "out", "Path": "/out"}, {"Name": "out", "Path": "/out"}],
        }
    )
    assert submission_error(job) == (
        "task main validation failed: input source with alias 'a' already exists\n"
        "input source with target '/in' already exists\n"
        "result path with name 'out' already exists\n"
        "result path '/out' already exists"
    )


def test_empty_aliases_are_not_duplicates() -> None:
    """Only non-empty aliases are compared."""
    job = make_job(
        {"InputSources": [{"Source": {"Type": "ipfs"}, "Target": "/a"}, {"Source": {"Type": "ipfs"}, "Target": "/b"}]}
    )
    assert job.validate_submission() == []


def test_invalid_network_domain() -> None:
    """Domains must look like domains or IP addresses (v1.7 wraps this as "network validation failed")."""
    job = make_job({"Network": {"Type": "HTTP", "Domains": ["example.com", "10.0.0.1", "::1", "not a domain"]}})
    assert (
        submission_error(job) == 'task main validation failed: network validation failed: invalid domain "not a domain"'
    )


def test_every_task_error_is_reported_in_go_order() -> None:
    """Name, engine, timeouts, resources, inputs, outputs: one prefix for the whole task."""
    job = make_job(
        {
            "Name": "",
            "Engine": None,
            "Timeouts": {"ExecutionTimeout": -5},
            "Resources": {"CPU": "x"},
            "InputSources": [{"Source": {"Type": "ipfs"}}],
            "ResultPaths": [{"Name": "o", "Path": "o"}],
        }
    )
    assert submission_error(job) == (
        "task  validation failed: missing task name\n"
        "engine validation failed: nil spec config\n"
        "task timeouts validation failed: invalid execution timeout value: -5s\n"
        "task resources validation failed: invalid CPU value: x\n"
        "artifact validation failed: missing artifact target\n"
        "output validation failed: result path `o` must be absolute"
    )


def test_job_and_task_errors_together() -> None:
    """Job-level errors first, then constraints, then each task."""
    job = make_job({"Engine": None}, Type="", Count=-1, Constraints=[{"Key": "", "Operator": "exists"}])
    assert submission_error(job) == (
        "missing job type\n"
        "job count must be >= 0\n"
        "constraint 1 validation failed: selector key cannot be blank\n"
        "task main validation failed: engine validation failed: nil spec config"
    )


def test_each_task_is_checked() -> None:
    """Every task of a multi-task submission is validated, with its own prefix."""
    job = make_job(Tasks=[{"Name": "a", "Engine": {"Type": "docker"}}, {"Name": "b"}, {"Name": "c", "Engine": {}}])
    assert submission_error(job) == (
        "task b validation failed: engine validation failed: nil spec config\n"
        "task c validation failed: engine validation failed: missing spec type"
    )


def test_a_nil_publisher_is_fine_at_submission() -> None:
    """The publisher is optional; results without one are only rejected by the store."""
    job = make_job({"Publisher": None, "ResultPaths": [{"Name": "out", "Path": "/out"}]})
    assert job.validate_submission() == []


# --- Validate (job store) -----------------------------------------------------------------------------------------


def test_a_stored_job_passes() -> None:
    """A normalised job with an ID is valid for the store."""
    assert stored(make_job()).validate_job() == []


@pytest.mark.parametrize(
    ("job_id", "message"),
    [
        ("", "missing job ID"),
        ("  ", "missing job ID\njob ID contains a space"),
        ("j 1", "job ID contains a space"),
        ("j\t1", "job ID contains a space"),
        ("j\n", "job ID contains a space"),
        ("j\u00a01", "job ID contains a space"),
        ("j\x001", "job ID contains a null character"),
    ],
)
def test_job_id_checks(job_id: str, message: str) -> None:
    """ID: not blank, no whitespace (unicode.IsSpace), no NUL."""
    job = stored(make_job(Name="n"), job_id=job_id)
    assert store_error(job) == message


def test_job_id_whitespace_is_go_whitespace() -> None:
    """unicode.IsSpace does not count the ASCII separators \\x1c-\\x1f, which Python's isspace() does."""
    job = stored(make_job(Name="n"), job_id="j\x1f1")
    assert job.validate_job() == []


def test_job_name_and_namespace_checks() -> None:
    """Name: not blank, no NUL; Namespace: not blank."""
    job = stored(make_job())
    job.name, job.namespace = "  ", ""
    assert store_error(job) == "missing job name\njob must be in a namespace"
    job.name, job.namespace = "a\x00", "default"
    assert store_error(job) == "job Name contains a null character"


def test_store_validation_includes_submission_checks() -> None:
    """ID, name and namespace first, then the submission checks."""
    assert store_error(Job()) == (
        "missing job ID\nmissing job name\njob must be in a namespace\nmissing job type\nmissing job tasks"
    )


def test_results_need_a_publisher() -> None:
    """After normalisation an empty publisher is {"Type":""}, which does not count."""
    job = stored(make_job({"ResultPaths": [{"Name": "out", "Path": "/outputs"}]}))
    assert store_error(job) == "task main validation failed: publisher must be set if result paths are set"
    job.task.publisher.type = "local"
    assert job.validate_job() == []


def test_a_publisher_with_only_params_is_set() -> None:
    """IsEmpty needs both an empty Type and no Params."""
    job = stored(make_job({"Publisher": {"Params": {"x": 1}}, "ResultPaths": [{"Name": "o", "Path": "/o"}]}))
    assert job.validate_job() == []


@pytest.mark.parametrize(
    ("timeouts", "message"),
    [
        ({"ExecutionTimeout": 60, "QueueTimeout": 30, "TotalTimeout": 60},
         "execution timeout 1m0s and queue timeout 30s should be less than total timeout 1m0s"),
        ({"QueueTimeout": 90, "TotalTimeout": 60},
         "execution timeout 1m0s and queue timeout 1m30s should be less than total timeout 1m0s"),
        ({"ExecutionTimeout": 7200, "TotalTimeout": 3600},
         "execution timeout 2h0m0s and queue timeout 0s should be less than total timeout 1h0m0s"),
    ],
)  # fmt: skip
def test_timeouts_must_fit_in_the_total(timeouts: dict[str, int], message: str) -> None:
    """Execution + queue may not exceed a non-zero total; the shown execution timeout falls back to the total."""
    job = stored(make_job({"Timeouts": timeouts}))
    assert store_error(job) == f"task main validation failed: task timeouts validation failed: {message}"


@pytest.mark.parametrize(
    "timeouts",
    [
        {"ExecutionTimeout": 30, "QueueTimeout": 30, "TotalTimeout": 60},
        {"ExecutionTimeout": 600},
        {"QueueTimeout": 600},
        {},
    ],
)
def test_timeouts_within_the_total(timeouts: dict[str, int]) -> None:
    """An equal sum, or no total, is fine."""
    assert stored(make_job({"Timeouts": timeouts})).validate_job() == []


def test_store_errors_for_one_task_share_one_prefix() -> None:
    """Task.Validate joins the publisher and timeout errors under one "task <name> validation failed"."""
    job = stored(
        make_job({"ResultPaths": [{"Name": "o", "Path": "/o"}], "Timeouts": {"ExecutionTimeout": 9, "TotalTimeout": 3}})
    )
    assert store_error(job) == (
        "task main validation failed: publisher must be set if result paths are set\n"
        "task timeouts validation failed: execution timeout 9s and queue timeout 0s should be less than "
        "total timeout 3s"
    )


# --- Normalize ----------------------------------------------------------------------------------------------------


def test_normalize_fills_namespace_and_name() -> None:
    """Namespace defaults to "default"; Name defaults to the ID."""
    job = make_job(ID="j-1")
    job.normalize()
    assert (job.namespace, job.name) == ("default", "j-1")
    kept = make_job(ID="j-1", Name="mine", Namespace="team")
    kept.normalize()
    assert (kept.namespace, kept.name) == ("team", "mine")


@pytest.mark.parametrize(
    ("job_type", "count", "expected"),
    [
        ("batch", None, 1),
        ("batch", 0, 0),
        ("batch", 3, 3),
        ("service", None, 1),
        ("service", 0, 0),
        ("service", 2, 2),
        ("daemon", None, 0),
        ("daemon", 0, 0),
        ("daemon", 1, 0),
        ("ops", None, 0),
        ("ops", 1, 0),
        ("ops", 5, 0),
    ],
)
def test_count_rules(job_type: str, count: int | None, expected: int) -> None:
    """v1.7+ rules (our documented choice): a missing batch/service Count is 1, an explicit 0 is kept;
    daemon and ops jobs always get 0."""
    fields: dict[str, Any] = {"Type": job_type}
    if count is not None:
        fields["Count"] = count
    job = make_job(**fields)
    job.normalize()
    assert job.count == expected
    assert job.desired_count == expected


def test_normalize_fills_every_task_object() -> None:
    """Publisher, Resources, Network and Timeouts become empty objects."""
    job = make_job()
    job.normalize()
    task = job.task
    assert task.publisher is not None and task.publisher.type == "" and task.publisher.params == {}
    assert task.resources is not None and task.resources.to_wire() == {}
    assert task.network is not None and task.network.type.value == "None"
    assert task.timeouts is not None and task.timeouts.to_wire() == {}


def test_normalize_trims_and_lowercases() -> None:
    """Types, aliases, targets and result paths are trimmed; resources and domains lowercased."""
    job = make_job(
        {
            "Engine": {"Type": " docker "},
            "Publisher": {"Type": " local\t"},
            "Resources": {"CPU": "500M", "Memory": "1 GB", "Disk": "10\nGiB", "GPU": " 1 "},
            "InputSources": [{"Source": {"Type": " ipfs "}, "Alias": " a ", "Target": " /in "}],
            "ResultPaths": [{"Name": " out ", "Path": " /outputs "}],
            "Network": {"Type": "http", "Domains": [" Example.COM "]},
        }
    )
    job.normalize()
    task = job.task
    assert task.engine_spec.type == "docker"
    assert task.publisher_spec.type == "local"
    assert task.resources_config.to_wire() == {"CPU": "500m", "Memory": "1gb", "Disk": "10gib", "GPU": "1"}
    source = task.input_sources[0]
    assert (source.source.type if source.source else None, source.alias, source.target) == ("ipfs", "a", "/in")
    assert (task.result_paths[0].name, task.result_paths[0].path) == ("out", "/outputs")
    assert task.network_config.domains == ["example.com"]


def test_input_without_source_is_left_alone() -> None:
    """InputSource.Normalize returns early when Source is nil (alias and target stay untrimmed)."""
    job = make_job({"InputSources": [{"Alias": " a ", "Target": " /in "}]})
    job.normalize()
    assert (job.task.input_sources[0].alias, job.task.input_sources[0].target) == (" a ", " /in ")


def test_normalize_is_idempotent() -> None:
    """Normalising twice changes nothing more."""
    job = make_job({"Resources": {"CPU": "1 "}}, ID="j-1")
    job.normalize()
    once = job.to_wire()
    job.normalize()
    assert job.to_wire() == once


def test_normalize_then_validate_the_checklist_defaults() -> None:
    """ "1GB" is stored as "1gb" and still valid."""
    job = stored(make_job({"Resources": {"CPU": "500m", "Memory": "1GB"}}))
    assert job.task.resources_config.memory == "1gb"
    assert job.validate_job() == []


# --- SanitizeSubmission -------------------------------------------------------------------------------------------


def test_a_clean_submission_has_no_warnings() -> None:
    """Nothing to reset, nothing to say."""
    job = make_job()
    assert job.sanitize_submission() == []


@pytest.mark.parametrize(
    ("fields", "warning"),
    [
        ({"State": {"StateType": "Running"}}, "job state is ignored when submitting a job"),
        ({"Revision": 5}, "job revision is ignored when submitting a job"),
        ({"Version": 2}, "job version is ignored when submitting a job"),
        ({"CreateTime": 1}, "job create time is ignored when submitting a job"),
        ({"ModifyTime": 1}, "job modify time is ignored when submitting a job"),
        ({"ID": "x"}, "job ID is ignored when submitting a batch job"),
        ({"ID": "x", "Type": "ops"}, "job ID is ignored when submitting a batch job"),
        ({"Meta": {"bacalhau.org/foo": "1"}}, 'job meta key "bacalhau.org/foo" is reserved and will be ignored'),
        ({"Tasks": [{"Name": "a", "Engine": {"Type": "docker"}}, {"Name": "b", "Engine": {"Type": "docker"}}]},
         "only one task is supported per job"),
    ],
)  # fmt: skip
def test_each_sanitisation_warning(fields: dict[str, Any], warning: str) -> None:
    """Each reset comes with the original's warning."""
    job = make_job(**fields)
    assert job.sanitize_submission() == [warning]


def test_sanitisation_resets_the_fields() -> None:
    """State, counters, times, batch ID, extra tasks and reserved meta keys are reset or dropped."""
    job = make_job(
        ID="x",
        State={"StateType": "Completed", "Message": "m"},
        Revision=5,
        Version=2,
        CreateTime=10,
        ModifyTime=11,
        Meta={"bacalhau.org/requester.id": "n", "bacalhau.orgx": "keep", "mine": "keep"},
        Tasks=[{"Name": "a", "Engine": {"Type": "docker"}}, {"Name": "b", "Engine": {"Type": "docker"}}],
    )
    warnings = job.sanitize_submission()
    assert warnings == [
        "job state is ignored when submitting a job",
        "job revision is ignored when submitting a job",
        "job version is ignored when submitting a job",
        "job create time is ignored when submitting a job",
        "job modify time is ignored when submitting a job",
        "job ID is ignored when submitting a batch job",
        "only one task is supported per job",
        'job meta key "bacalhau.org/requester.id" is reserved and will be ignored',
    ]
    assert job.state.state_type is JobStateType.UNDEFINED and job.state.message == ""
    assert (job.revision, job.version, job.create_time, job.modify_time, job.id) == (0, 0, 0, 0, "")
    assert [t.name for t in job.tasks] == ["a"]
    assert job.meta == {"bacalhau.orgx": "keep", "mine": "keep"}


@pytest.mark.parametrize("job_type", ["service", "daemon"])
def test_long_running_jobs_keep_their_id(job_type: str) -> None:
    """Only batch and ops IDs are discarded."""
    job = make_job(ID="my-service", Type=job_type)
    assert job.sanitize_submission() == []
    assert job.id == "my-service"


def test_unknown_or_undefined_state_is_not_a_warning() -> None:
    """An unknown state string decodes to Undefined, which needs no reset."""
    assert make_job(State={"StateType": "bogus"}).sanitize_submission() == []
    assert make_job(State={"StateType": "undefined"}).sanitize_submission() == []


def test_checklist_item_5_warnings() -> None:
    """ID, Running state, Revision 5 and a reserved meta key give the four matching warnings."""
    job = make_job(ID="x", State={"StateType": "Running"}, Revision=5, Meta={"bacalhau.org/foo": "bar"})
    assert sorted(job.sanitize_submission()) == sorted(
        [
            "job state is ignored when submitting a job",
            "job revision is ignored when submitting a job",
            "job ID is ignored when submitting a batch job",
            'job meta key "bacalhau.org/foo" is reserved and will be ignored',
        ]
    )
    assert "bacalhau.org/foo" not in job.meta


@DETERMINISTIC
@given(st.dictionaries(st.text(max_size=20), st.text(max_size=5), max_size=6))
def test_only_reserved_meta_keys_are_dropped(meta: dict[str, str]) -> None:
    """Exactly the keys starting with "bacalhau.org/" go, one warning each."""
    job = make_job(Meta=dict(meta))
    warnings = job.sanitize_submission()
    reserved = [k for k in meta if k.startswith("bacalhau.org/")]
    assert job.meta == {k: v for k, v in meta.items() if k not in reserved}
    assert len(warnings) == len(reserved)


@DETERMINISTIC
@given(st.integers(-10, 10), st.sampled_from(["batch", "ops", "daemon", "service"]))
def test_sanitised_and_normalised_submissions_pass_the_count_checks(count: int, job_type: str) -> None:
    """After normalisation, a job that passed the submission count checks keeps a valid count."""
    job = make_job(Type=job_type, Count=count)
    passed = not any("count" in e for e in job.validate_submission())
    job.normalize()
    if passed:
        assert job.count is not None and job.count >= 0
        if job_type in ("daemon", "ops"):
            assert job.count == 0
