"""Job specs for the CLI: reading files (with templating), and building jobs from ``docker run``/``wasm run`` flags."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bacalhau.errors import InvalidRequest
from bacalhau.lib.yamlerror import describe_yaml_error
from bacalhau.models.base import describe_validation_error
from bacalhau.models.job import Job
from bacalhau.models.plugins import PUBLISHERS, PublisherType, SourceType
from bacalhau.models.selector import SelectorError, parse_selector, validate_key, validate_value
from bacalhau.models.spec import Network

ALLOWED_JOB_KEYS = ("Name", "Namespace", "Type", "Priority", "Count", "Constraints", "Meta", "Labels", "Tasks")
FORBIDDEN_JOB_KEYS = ("ID", "State", "Version", "Revision", "CreateTime", "ModifyTime")
INLINE_PLAIN_LIMIT = 512


SPEC_HINT = "Job Specification: https://docs.bacalhau.org/cli-api/specifications/job"


class SpecError(InvalidRequest):
    def __init__(self, message: str, *, hint: str = SPEC_HINT) -> None:
        super().__init__(f"the job provided is invalid: {message}", hint=hint)


def render_template(text: str, values: dict[str, str]) -> str:
    """The spec rendered as the original renders it, with Go's text/template (``missingkey=error``); its errors are
    the original's one line."""
    from bacalhau.lib.gotemplate import TemplateExecError, TemplateParseError, render  # only job run pays for it

    try:
        return render(text, values)
    except TemplateParseError as exc:
        raise SpecError(f"failed to parse template: {exc.message}", hint="") from None
    except TemplateExecError as exc:
        raise SpecError(f"failed to execute template: {exc.message}", hint="") from None


def template_values(pairs: tuple[str, ...], env_pattern: str) -> dict[str, str]:
    """The template's data, as the original builds it: each ``-V`` as pflag reads a string-to-string flag, then the
    environment variables whose name the ``-E`` regex matches anywhere (``*``: all), unless ``-V`` set them."""
    values: dict[str, str] = {}
    for item in pairs:
        values.update(_string_to_string(item, "-V, --template-vars"))
    if env_pattern:
        try:
            regex = re.compile(".*" if env_pattern == "*" else env_pattern)
        except re.error as exc:
            raise InvalidRequest(
                f"failed to create template parser: failed to compile environment variable pattern: {exc}"
            ) from None
        for name, value in os.environ.items():
            if regex.search(name):
                values.setdefault(name, value)
    return values


def _string_to_string(value: str, flag: str) -> dict[str, str]:
    """pflag's ``StringToString``: ``k=v`` (surrounding quotes dropped), or a CSV record of ``k=v`` pairs."""
    if value.count("=") == 1:
        pairs = [value.strip('"')]
    else:
        try:
            pairs = _csv_record(value) if "=" in value else [value]
        except ValueError as exc:
            raise _flag_error(value, flag, str(exc)) from None
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, setting = pair.partition("=")
        if not sep:
            raise _flag_error(value, flag, f"{pair} must be formatted as key=value")
        out[key] = setting
    return out


def _flag_error(value: str, flag: str, why: str) -> InvalidRequest:
    """A flag's value refused, in cobra's words."""
    from bacalhau.lib.gofmt import quote

    return InvalidRequest(f"invalid argument {quote(value)} for {quote(flag)} flag: {why}")


_MISSING_QUOTE = 'extraneous or missing " in quoted-field'


def _csv_record(text: str) -> list[str]:
    """The first record of ``text`` as Go's encoding/csv reads it (double quotes around a field, ``""`` inside)."""
    fields: list[str] = []
    index = 0
    while True:
        if text[index : index + 1] == '"':
            parts: list[str] = []
            index += 1
            while True:
                close = text.find('"', index)
                if close < 0:
                    raise ValueError(f"parse error on line 1, column {len(text) + 1}: {_MISSING_QUOTE}")
                parts.append(text[index:close])
                index = close + 1
                if text[index : index + 1] == '"':
                    parts.append('"')
                    index += 1
                elif index < len(text) and text[index] not in ",\n\r":
                    raise ValueError(f"parse error on line 1, column {index + 1}: {_MISSING_QUOTE}")
                else:
                    break
            fields.append("".join(parts))
        else:
            ends = [found for found in (text.find(",", index), text.find("\n", index)) if found >= 0]
            end = min(ends, default=len(text))
            field = text[index:end].removesuffix("\r")
            if '"' in field:
                column = index + field.index('"') + 1
                raise ValueError(f'parse error on line 1, column {column}: bare " in non-quoted-field')
            fields.append(field)
            index = end
        if index >= len(text) or text[index] != ",":
            return fields
        index += 1


def parse_spec(text: str, source: str = "") -> dict[str, Any]:
    """A job spec in YAML or JSON, with the original's strict check of top-level keys. A syntax error is one line
    naming ``source`` (the file), the line and the column."""
    if not text.strip():
        raise SpecError("no content provided")
    where = f"{source}: " if source else ""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(where + describe_yaml_error(exc, text), hint="") from None
    except RecursionError:
        raise SpecError(f"{where}invalid YAML: nested too deeply", hint="") from None
    if not isinstance(data, dict):
        raise SpecError("the spec must be a mapping of job fields")
    allowed = {k.lower(): k for k in ALLOWED_JOB_KEYS}
    forbidden = {k.lower(): k for k in FORBIDDEN_JOB_KEYS}
    for key in data:
        lowered = str(key).lower()
        if lowered in forbidden:
            raise SpecError(f"field: '{forbidden[lowered]}' in 'Job' is not allowed")
        if lowered not in allowed:
            raise SpecError(f"unknown field: '{key}' in 'Job'")
    return data


def validate_spec(data: dict[str, Any]) -> tuple[Job, list[str]]:
    """The checks the server makes at submission, run locally; returns the job and its sanitisation warnings."""
    try:
        job = Job.model_validate(data)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(exc)) from None
    errors = job.validate_submission()
    if errors:
        raise SpecError("\n".join(errors))
    warnings = job.model_copy(deep=True).sanitize_submission()
    return job, warnings


# ---- inputs from flags


def inline_source(path: Path) -> dict[str, Any]:
    """A local file as an inline input: small files as plain data, bigger ones as a tar.gz of the file."""
    data = path.read_bytes()
    if len(data) <= INLINE_PLAIN_LIMIT:
        url = "data:text/plain;base64," + base64.b64encode(data).decode()
    else:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            archive.add(path, arcname=path.name)
        url = "data:application/gzip;base64," + base64.b64encode(buffer.getvalue()).decode()
    return {"Type": "inline", "Params": {"URL": url}}


def _split_target(spec: str) -> tuple[str, str]:
    """``scheme://x/y:/target`` -> (``scheme://x/y``, ``/target``); the target is after the last colon."""
    scheme_end = spec.find("://")
    head = scheme_end + 3 if scheme_end >= 0 else 0
    colon = spec.rfind(":")
    if colon >= head and colon != len(spec) - 1:
        return spec[:colon], spec[colon + 1 :]
    return spec, ""


_S3_OPTIONS = {
    "endpoint": "Endpoint",
    "region": "Region",
    "versionID": "VersionID",  # the original's spellings; matched without regard to case
    "version-id": "VersionID",
    "version_id": "VersionID",
    "checksum-256": "ChecksumSHA256",
    "checksum256": "ChecksumSHA256",
    "checksum_256": "ChecksumSHA256",
    "filter": "Filter",
}


def _go_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise SpecError(f"failed to parse read-write option: {text!r} is not a boolean")


def storage_source(uri: str, options: dict[str, str] | None = None) -> dict[str, Any]:
    options = options or {}
    if uri.startswith("ipfs://"):
        return {"Type": SourceType.IPFS.value, "Params": {"CID": uri[len("ipfs://") :]}}
    if uri.startswith(("http://", "https://")):
        return {"Type": SourceType.URL.value, "Params": {"URL": uri}}
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket:
            raise SpecError(f"invalid s3 storage params in {uri!r}: bucket cannot be empty")
        params: dict[str, Any] = {"Bucket": bucket, "Key": key.lstrip("/")}
        for name, setting in options.items():
            param = next((p for option, p in _S3_OPTIONS.items() if option.lower() == name.lower()), None)
            if param is None:
                raise SpecError(f"unknown option {name!r} for storage s3: use {', '.join(sorted(set(_S3_OPTIONS)))}")
            params[param] = setting
        return {"Type": SourceType.S3.value, "Params": params}
    if uri.startswith("file://"):
        read_write = False
        for name, setting in options.items():
            if name.lower() not in ("rw", "read-write", "read_write", "readwrite"):
                raise SpecError(f"unknown option {name!r} for storage file: use rw=true")
            read_write = _go_bool(setting)
        return {
            "Type": SourceType.LOCAL_DIRECTORY.value,
            "Params": {"SourcePath": uri[len("file://") :], "ReadWrite": read_write},
        }
    if uri.startswith(("git://", "gitlfs://")):
        raise SpecError(f"unsupported storage schema in {uri!r}")
    raise SpecError(f"unknown storage schema in {uri!r}: use ipfs://, http(s)://, s3:// or file://")


def parse_input(value: str, default_target: str = "/inputs") -> dict[str, Any]:
    """``-i`` values, comma-separated fields as the original reads them: the first may be ``URI[:dst]``; the others
    (or all) are ``src=URI``, ``dst=PATH`` and ``opt=name=value``, e.g. ``s3://bucket/data/,opt=region=eu-west-1``."""
    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration):
        raise SpecError(f"invalid input {value!r}") from None
    uri, target = "", default_target
    options: dict[str, str] = {}
    for index, part in enumerate(fields):
        key, sep, setting = part.partition("=")
        if not sep or (index == 0 and "://" in key):
            if index:
                raise SpecError(f"invalid storage option: {part}. Must be a key=value pair")
            uri, explicit_target = _split_target(part)
            target = explicit_target or target
            continue
        key = key.strip().lower()
        if key in ("source", "src"):
            uri = setting
        elif key in ("target", "dst", "destination"):
            target = setting
        elif key in ("opt", "option"):
            name, _, option = setting.partition("=")
            if name:
                options[name.strip()] = option
        else:
            raise SpecError(f"unexpected key {key} in field {part}")
    uri, target = uri.strip(" '\""), target.strip(" '\"")
    if not uri:
        raise SpecError(f"input {value!r} has no source: use URI[:target] or src=URI,dst=PATH")
    return {"Source": storage_source(uri, options), "Alias": uri, "Target": target}


def parse_output(value: str) -> dict[str, str]:
    name, sep, path = value.partition(":")
    if not sep or not name or not path or ":" in path:
        raise SpecError(f"invalid output {value!r}: use name:path, e.g. outputs:/outputs")
    return {"Name": name, "Path": path}


def parse_publisher(value: str) -> dict[str, Any]:
    if value in ("", "none"):
        return {"Type": ""}
    if value in PUBLISHERS and value != PublisherType.S3:
        return {"Type": value}
    if value.startswith("s3://"):
        head, *options = value.split(",")
        bucket, _, key = head[len("s3://") :].partition("/")
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        for option in options:
            kind, _, rest = option.partition("=")
            if kind.strip() not in ("opt", "option"):
                raise SpecError(f"invalid publisher option {option!r}")
            name, _, setting = rest.partition("=")
            params[name.strip().capitalize() if name.strip() != "endpoint" else "Endpoint"] = setting
        return {"Type": PublisherType.S3.value, "Params": params}
    raise SpecError(f"unknown publisher type {value!r}: use local, noop or s3://bucket/key")


def parse_env(values: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in values:
        for pair in value.split(","):
            key, sep, setting = pair.partition("=")
            if not sep or not key:
                raise SpecError(f"invalid environment variable {pair!r}: use NAME=value")
            env[key] = setting
    return env


def parse_labels(values: tuple[str, ...]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            key, _, setting = item.partition("=")
            try:
                validate_key(key)
                validate_value(setting)
            except SelectorError as exc:
                raise SpecError(str(exc)) from None
            labels[key] = setting
    return labels


@dataclass
class JobFlags:
    """The flags ``docker run`` and ``wasm run`` share, as the original defines them."""

    name: str = ""
    namespace: str = "default"
    priority: int = 0
    count: int = 1
    target: str = "any"
    constraints: str = ""
    labels: tuple[str, ...] = ()
    task_name: str = "main"
    env: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    publisher: str = "local"
    cpu: str = ""
    memory: str = ""
    disk: str = ""
    gpu: str = ""
    network: str = "default"
    domains: tuple[str, ...] = ()
    timeout: int = 0
    queue_timeout: int = 0
    extra_inputs: list[dict[str, Any]] = field(default_factory=list)

    def build(self, engine: dict[str, Any]) -> dict[str, Any]:
        if self.target not in ("any", "all"):
            raise SpecError(f"invalid --target {self.target!r}: use any or all")
        try:
            constraints = [c.to_wire() for c in parse_selector(self.constraints)]
        except SelectorError as exc:
            raise SpecError(f"invalid --constraints: {exc}") from None
        constraints.sort(key=lambda c: c["Key"])
        task: dict[str, Any] = {"Name": self.task_name, "Engine": engine}
        publisher = parse_publisher(self.publisher)
        if publisher["Type"]:
            task["Publisher"] = publisher
        env = parse_env(self.env)
        if env:
            task["Env"] = env
        inputs = self.extra_inputs + [parse_input(value) for value in self.inputs]
        if inputs:
            task["InputSources"] = inputs
        if self.outputs:
            task["ResultPaths"] = [parse_output(value) for value in self.outputs]
        resources = {
            k: v for k, v in (("CPU", self.cpu), ("Memory", self.memory), ("Disk", self.disk), ("GPU", self.gpu)) if v
        }
        if resources:
            task["Resources"] = resources
        try:
            network = Network.parse(self.network) if self.network else Network.DEFAULT
        except ValueError:
            raise SpecError(
                f"invalid --network {self.network!r}: use none, host, full, http, bridge or default"
            ) from None
        if self.domains and network == Network.NONE:
            raise SpecError("--domain cannot be used with --network none")
        if network != Network.DEFAULT or self.domains:
            task["Network"] = {"Type": network.value, **({"Domains": list(self.domains)} if self.domains else {})}
        timeouts = {k: v for k, v in (("TotalTimeout", self.timeout), ("QueueTimeout", self.queue_timeout)) if v}
        if timeouts:
            task["Timeouts"] = timeouts
        job: dict[str, Any] = {
            "Type": "batch" if self.target == "any" else "ops",
            "Namespace": self.namespace,
            "Count": self.count if self.target == "any" else 0,
            "Priority": self.priority,
            "Constraints": constraints,
            "Labels": parse_labels(self.labels),
            "Tasks": [task],
        }
        if self.name:
            job["Name"] = self.name
        return job


def job_to_yaml(job: dict[str, Any]) -> str:
    return yaml.safe_dump(json.loads(json.dumps(job)), sort_keys=False, allow_unicode=True)
