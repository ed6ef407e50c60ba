"""Job and Task, with the submission checks, normalisation and sanitisation of the original (v1.5.2 wording, unchanged
to v1.9)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from bacalhau.models.base import OMIT_EMPTY, WireModel
from bacalhau.models.fields import EnvValue, Int64, Key, LabelValue, MetaValue, Name
from bacalhau.models.gostrings import has_space, quote
from bacalhau.models.limits import MAX_ENTRIES, MAX_ENV_ENTRIES, MAX_INPUTS
from bacalhau.models.plugins import ENGINES, INPUT_SOURCES, PUBLISHERS, canonical
from bacalhau.models.resources import ResourcesConfig
from bacalhau.models.spec import (
    InputSource,
    LabelSelectorRequirement,
    NetworkConfig,
    ResultPath,
    SpecConfig,
    TimeoutConfig,
    not_blank,
)
from bacalhau.models.state import JobState, JobStateType

DEFAULT_NAMESPACE = "default"
META_RESERVED_PREFIX = "bacalhau.org/"
META_ORCHESTRATOR_ID = "bacalhau.org/orchestrator.id"
META_ORCHESTRATOR_ID_LEGACY = "bacalhau.org/requester.id"
META_CLIENT_INSTALLATION_ID = "bacalhau.org/client.installation.id"
META_CLIENT_INSTANCE_ID = "bacalhau.org/client.instance.id"


class JobType(StrEnum):
    BATCH = "batch"
    OPS = "ops"
    DAEMON = "daemon"
    SERVICE = "service"


JOB_TYPES = frozenset(t.value for t in JobType)


ENV_RESERVED_PREFIX = "BACALHAU_"


def env_problems(env: dict[str, str]) -> list[str]:
    """The original's (v1.7+) rules for task environment variables; the first problem found, as it reports."""
    for name, value in env.items():
        if not name:
            return ["environment variable name cannot be empty"]
        if name != name.upper():
            return [f"environment variable '{name}' must be uppercase"]
        if not name[0].isalpha():
            return [f"environment variable '{name}' must start with a letter"]
        if not all(char.isalnum() or char == "_" for char in name):
            return [f"environment variable '{name}' can only contain letters, numbers, and underscores"]
        if name.startswith(ENV_RESERVED_PREFIX):
            return [f"environment variable '{name}' cannot start with {ENV_RESERVED_PREFIX}"]
        if not value:
            return [f"environment variable '{name}' cannot have empty value"]
        if "\x00" in value:
            return [f"environment variable '{name}' cannot contain null characters"]
    return []


def _with_prefix(prefix: str, errors: list[str]) -> list[str]:
    """``fmt.Errorf("<prefix>: %v", errors.Join(...))``: one message holding every inner line."""
    return [f"{prefix}: " + "\n".join(errors)] if errors else []


def _first_failure(results: Iterable[list[str]]) -> list[str]:
    """``ValidateSlice``: the errors of the first element that has any; the rest go unchecked."""
    return next((errors for errors in results if errors), [])


class Task(WireModel):
    name: Name = ""
    engine: Annotated[
        SpecConfig | None,
        Field(json_schema_extra={"properties": {"Type": {"enum": sorted(ENGINES)}}, "required": ["Type"]}),
    ] = None
    publisher: SpecConfig | None = None
    env: Annotated[dict[Key, EnvValue], OMIT_EMPTY, Field(max_length=MAX_ENV_ENTRIES)] = Field(default_factory=dict)
    meta: Annotated[dict[Key, MetaValue], OMIT_EMPTY, Field(max_length=MAX_ENTRIES)] = Field(default_factory=dict)
    input_sources: Annotated[list[InputSource], OMIT_EMPTY, Field(max_length=MAX_INPUTS)] = Field(default_factory=list)
    result_paths: Annotated[list[ResultPath], OMIT_EMPTY, Field(max_length=MAX_ENTRIES)] = Field(default_factory=list)
    resources: Annotated[ResourcesConfig | None, OMIT_EMPTY] = None
    network: Annotated[NetworkConfig | None, OMIT_EMPTY] = None
    timeouts: Annotated[TimeoutConfig | None, OMIT_EMPTY] = None

    def normalize(self) -> None:
        """Fill every optional part so that the stored task is complete (as Go's Normalize)."""
        if self.resources is None:
            self.resources = ResourcesConfig()
        if self.publisher is None:
            self.publisher = SpecConfig()
        if self.network is None:
            self.network = NetworkConfig()
        if self.timeouts is None:
            self.timeouts = TimeoutConfig()
        if self.engine is not None:
            self.engine.normalize()
            self.engine.type = canonical(self.engine.type, ENGINES)
        self.publisher.normalize()
        self.publisher.type = canonical(self.publisher.type, PUBLISHERS)
        self.resources.normalize()
        for source in self.input_sources:
            source.normalize()
            if source.source is not None:
                source.source.type = canonical(source.source.type, INPUT_SOURCES)
        for result in self.result_paths:
            result.normalize()
        self.network.normalize()

    def validate_submission(self) -> list[str]:
        errors = not_blank(self.name, "missing task name")
        if "\x00" in self.name:
            errors.append("task name cannot contain null characters")
        errors += env_problems(self.env)
        specs = [("engine", self.engine), ("publisher", self.publisher)]
        specs += [("input source", source.source) for source in self.input_sources]
        errors += [problem for role, spec in specs if spec is not None for problem in spec.nesting_problems(role)]
        if self.engine is None:
            errors.append("engine validation failed: nil spec config")
        else:
            errors += _with_prefix("engine validation failed", self.engine.validate_spec())
        errors += _with_prefix(
            "task timeouts validation failed", (self.timeouts or TimeoutConfig()).validate_submission()
        )
        if self.resources is not None:
            errors += _with_prefix("task resources validation failed", self.resources.parse()[1])
        input_errors = _first_failure(source.validate_input() for source in self.input_sources)
        errors += _with_prefix("artifact validation failed", input_errors)
        output_errors = _first_failure(result.validate_path() for result in self.result_paths)
        errors += _with_prefix("output validation failed", output_errors)
        if self.network is not None:
            errors += _with_prefix("network validation failed", self.network.validate_network())
        errors += self._duplicates()
        return errors

    def _duplicates(self) -> list[str]:
        errors: list[str] = []
        aliases: set[str] = set()
        targets: set[str] = set()
        for source in self.input_sources:
            if source.alias:
                if source.alias in aliases:
                    errors.append(f"input source with alias '{source.alias}' already exists")
                aliases.add(source.alias)
            if source.target:
                if source.target in targets:
                    errors.append(f"input source with target '{source.target}' already exists")
                targets.add(source.target)
        names: set[str] = set()
        paths: set[str] = set()
        for result in self.result_paths:
            if result.name:
                if result.name in names:
                    errors.append(f"result path with name '{result.name}' already exists")
                names.add(result.name)
            if result.path:
                if result.path in paths:
                    errors.append(f"result path '{result.path}' already exists")
                paths.add(result.path)
        return errors

    def validate_stored(self) -> list[str]:
        """The checks that only hold once defaults are applied, run when the job is stored."""
        errors = []
        if self.result_paths and (self.publisher is None or self.publisher.is_empty()):
            errors.append("publisher must be set if result paths are set")
        errors += _with_prefix("task timeouts validation failed", self.timeouts_config.validate_totals())
        return errors

    # Accessors that are safe after normalize().
    @property
    def engine_spec(self) -> SpecConfig:
        return self.engine or SpecConfig()

    @property
    def publisher_spec(self) -> SpecConfig:
        return self.publisher or SpecConfig()

    @property
    def resources_config(self) -> ResourcesConfig:
        return self.resources or ResourcesConfig()

    @property
    def network_config(self) -> NetworkConfig:
        return self.network or NetworkConfig()

    @property
    def timeouts_config(self) -> TimeoutConfig:
        return self.timeouts or TimeoutConfig()


class Job(WireModel):
    id: Name = ""
    name: Name = ""
    namespace: Name = ""
    type: Annotated[Name, Field(json_schema_extra={"enum": sorted(JOB_TYPES)})] = ""
    priority: Int64 = 0
    # None until normalised: a batch or service job that leaves Count out runs once (v1.7+ behaviour).
    count: Int64 | None = None
    constraints: Annotated[list[LabelSelectorRequirement], Field(max_length=MAX_ENTRIES)] = Field(default_factory=list)
    meta: Annotated[dict[Key, MetaValue], Field(max_length=MAX_ENTRIES)] = Field(default_factory=dict)
    labels: Annotated[dict[Key, LabelValue], Field(max_length=MAX_ENTRIES)] = Field(default_factory=dict)
    tasks: Annotated[list[Task], Field(max_length=MAX_ENTRIES, json_schema_extra={"minItems": 1, "maxItems": 1})] = (
        Field(default_factory=list)
    )
    state: JobState = Field(default_factory=JobState)
    version: Int64 = 0
    revision: Int64 = 0
    create_time: Int64 = 0
    modify_time: Int64 = 0

    @property
    def task(self) -> Task:
        return self.tasks[0]

    @property
    def is_terminal(self) -> bool:
        return self.state.state_type.is_terminal

    @property
    def is_long_running(self) -> bool:
        return self.type in (JobType.SERVICE.value, JobType.DAEMON.value)

    @property
    def desired_count(self) -> int:
        return self.count or 0

    def validate_submission(self) -> list[str]:
        errors: list[str] = []
        if not self.type:
            errors.append("missing job type")
        elif self.type not in JOB_TYPES:
            errors.append(f"invalid job type: {quote(self.type)}")
        count = self.count or 0
        if count < 0:
            errors.append("job count must be >= 0")
        if count > 1 and self.type in (JobType.DAEMON.value, JobType.OPS.value):
            errors.append(f"{self.type} jobs cannot specify count > 1 as they run on all matching nodes")
        if not self.tasks:
            errors.append("missing job tasks")
        if any("\x00" in key or "\x00" in value for key, value in self.labels.items()):
            errors.append("job labels cannot contain null characters")
        for index, constraint in enumerate(self.constraints, start=1):
            inner = constraint.validate_requirement()
            if inner:
                errors.append(f"constraint {index} validation failed: " + "\n".join(inner))
        for task in self.tasks:
            errors += _with_prefix(f"task {task.name} validation failed", task.validate_submission())
        return errors

    def validate_job(self) -> list[str]:
        """The full check run when the job is stored."""
        errors = not_blank(self.id, "missing job ID")
        if has_space(self.id):
            errors.append("job ID contains a space")
        if "\x00" in self.id:
            errors.append("job ID contains a null character")
        errors += not_blank(self.name, "missing job name")
        if "\x00" in self.name:
            errors.append("job Name contains a null character")
        errors += not_blank(self.namespace, "job must be in a namespace")
        if "\x00" in self.namespace:
            errors.append("job namespace contains a null character")
        errors += self.validate_submission()
        for task in self.tasks:
            errors += _with_prefix(f"task {task.name} validation failed", task.validate_stored())
        return errors

    def normalize(self) -> None:
        if not self.namespace:
            self.namespace = DEFAULT_NAMESPACE
        if not self.name:
            self.name = self.id
        if self.type in (JobType.DAEMON.value, JobType.OPS.value):
            self.count = 0
        elif self.count is None:
            self.count = 1
        for task in self.tasks:
            task.normalize()

    def sanitize_submission(self) -> list[str]:
        """Reset the fields a client may not set, returning the original's warning for each."""
        warnings: list[str] = []
        if self.state.state_type != JobStateType.UNDEFINED:
            warnings.append("job state is ignored when submitting a job")
            self.state = JobState()
        if self.revision:
            warnings.append("job revision is ignored when submitting a job")
            self.revision = 0
        if self.version:
            warnings.append("job version is ignored when submitting a job")
            self.version = 0
        if self.create_time:
            warnings.append("job create time is ignored when submitting a job")
            self.create_time = 0
        if self.modify_time:
            warnings.append("job modify time is ignored when submitting a job")
            self.modify_time = 0
        if self.type in (JobType.BATCH.value, JobType.OPS.value) and self.id:
            warnings.append("job ID is ignored when submitting a batch job")
            self.id = ""
        if len(self.tasks) > 1:
            warnings.append("only one task is supported per job")
            self.tasks = self.tasks[:1]
        for key in list(self.meta):
            if key.startswith(META_RESERVED_PREFIX):
                warnings.append(f"job meta key {quote(key)} is reserved and will be ignored")
                del self.meta[key]
        return warnings
