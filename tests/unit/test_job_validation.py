"""Submission checks and sanitisation, with the original's messages (Go v1.5.2, pkg/models)."""

from __future__ import annotations

from typing import Any

import pytest

from bacalhau.models.job import Job


def job(**fields: Any) -> Job:
    task = {"Name": "main", "Engine": {"Type": "wasm"}, **fields.pop("task", {})}
    return Job.model_validate({"Type": "batch", "Tasks": [task], **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"Type": ""}, "missing job type"),
        ({"Type": "Batch"}, 'invalid job type: "Batch"'),
        ({"Count": -1}, "job count must be >= 0"),
        ({"Type": "daemon", "Count": 3}, "daemon jobs cannot specify count > 1 as they run on all matching nodes"),
        ({"Tasks": []}, "missing job tasks"),
        (
            {"Constraints": [{"Key": "", "Operator": "=", "Values": ["a"]}]},
            "constraint 1 validation failed: selector key cannot be blank",
        ),
        (
            {"Constraints": [{"Key": "k", "Operator": "in"}]},
            "constraint 1 validation failed: selector values cannot be empty for In or NotIn operators",
        ),
        (
            {"Constraints": [{"Key": "k", "Operator": "exists", "Values": ["x"]}]},
            "constraint 1 validation failed: selector values must be empty for Exists or KeyNotInImap operators",
        ),
        ({"task": {"Name": " "}}, "task   validation failed: missing task name"),
        ({"task": {"Engine": None}}, "task main validation failed: engine validation failed: nil spec config"),
        (
            {"task": {"Engine": {"Type": " "}}},
            "task main validation failed: engine validation failed: missing spec type",
        ),
        (
            {"task": {"Timeouts": {"ExecutionTimeout": -90}}},
            "task main validation failed: task timeouts validation failed: invalid execution timeout value: -1m30s",
        ),
        (
            {"task": {"Resources": {"CPU": "abc"}}},
            "task main validation failed: task resources validation failed: invalid CPU value: abc",
        ),
        (
            {"task": {"Resources": {"Memory": "10 zb"}}},
            "task main validation failed: task resources validation failed: invalid memory value: 10zb",
        ),
        (
            {"task": {"ResultPaths": [{"Name": "out", "Path": "out"}]}},
            "task main validation failed: output validation failed: result path `out` must be absolute",
        ),
        (
            {"task": {"InputSources": [{"Target": "", "Source": {"Type": "inline"}}]}},
            "task main validation failed: artifact validation failed: missing artifact target",
        ),
        (
            {"task": {"InputSources": [{"Target": "/a", "Source": {"Type": ""}}]}},
            "task main validation failed: artifact validation failed: invalid artifact source: missing spec type",
        ),
        (
            {
                "task": {
                    "InputSources": [
                        {"Target": "/a", "Source": {"Type": "inline"}},
                        {"Target": "/a", "Source": {"Type": "inline"}},
                    ]
                }
            },
            "task main validation failed: input source with target '/a' already exists",
        ),
        (
            {"task": {"ResultPaths": [{"Name": "o", "Path": "/o"}, {"Name": "o", "Path": "/p"}]}},
            "task main validation failed: result path with name 'o' already exists",
        ),
    ],
)
def test_submission_errors(fields: dict[str, Any], message: str) -> None:
    assert message in job(**fields).validate_submission()


def test_several_problems_in_one_task_are_joined_with_newlines() -> None:
    errors = job(task={"Name": "t", "Resources": {"CPU": "x", "Memory": "y"}}).validate_submission()
    assert errors == [
        "task t validation failed: task resources validation failed: invalid CPU value: x\ninvalid memory value: y"
    ]


def test_a_valid_job_has_no_errors() -> None:
    assert job().validate_submission() == []


def test_checks_made_when_the_job_is_stored() -> None:
    spec = job(task={"ResultPaths": [{"Name": "o", "Path": "/o"}], "Timeouts": {"TotalTimeout": 10,
               "ExecutionTimeout": 8, "QueueTimeout": 5}})  # fmt: skip
    spec.normalize()
    errors = spec.validate_job()
    assert "missing job ID" in errors and "missing job name" in errors
    assert (
        "task main validation failed: publisher must be set if result paths are set\ntask timeouts validation "
        "failed: execution timeout 8s and queue timeout 5s should be less than total timeout 10s" in errors
    )


def test_sanitisation_warnings_match_the_original() -> None:
    spec = job(ID="given", State={"StateType": "Running"}, Revision=5, Version=2, CreateTime=1, ModifyTime=2,
               Meta={"bacalhau.org/x": "1", "keep": "2"})  # fmt: skip
    spec.tasks.append(spec.tasks[0].model_copy())
    assert spec.sanitize_submission() == [
        "job state is ignored when submitting a job",
        "job revision is ignored when submitting a job",
        "job version is ignored when submitting a job",
        "job create time is ignored when submitting a job",
        "job modify time is ignored when submitting a job",
        "job ID is ignored when submitting a batch job",
        "only one task is supported per job",
        'job meta key "bacalhau.org/x" is reserved and will be ignored',
    ]
    assert spec.id == "" and len(spec.tasks) == 1 and spec.meta == {"keep": "2"}


def test_service_and_daemon_jobs_keep_a_client_id() -> None:
    for job_type in ("service", "daemon"):
        spec = job(Type=job_type, ID="my-service")
        assert spec.sanitize_submission() == []
        assert spec.id == "my-service"
