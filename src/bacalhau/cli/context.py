"""What every command gets: the global flags, the loaded config, and an API client built from them.

Where the client connects, highest first: ``--api-host``/``--api-port`` (or ``-c API.Host=...``), then
``BACALHAU_API_HOST``/``BACALHAU_API_PORT``, then the profile (``--profile``, ``BACALHAU_PROFILE``, or the selected
one), then the config file, then ``127.0.0.1:1234``. What it sends as credentials: the ``BACALHAU_API_*`` variables
(see ``client.auth``), else the profile's token.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from bacalhau.client.auth import Credentials, from_environment, from_profile
from bacalhau.client.http import ApiClient
from bacalhau.config import BacalhauConfig, go_quote, load_config, lookup_key, parse_duration
from bacalhau.errors import BacalhauError
from bacalhau.profiles import Profile, ProfileStore

log = logging.getLogger("bacalhau.cli")
DEFAULT_API_PORT = 1234


@dataclass(frozen=True)
class Endpoint:
    """Where and how the CLI talks to a node."""

    url: str
    token: str = field(default="", repr=False)  # the profile's
    timeout: float = 30.0
    insecure: bool = False
    profile: str = ""  # the profile it came from, if any


def base_url(host: str, port: int | None) -> str:
    """``host``/``port`` as a URL; a host given as a URL keeps its own port unless one is given."""
    if host.startswith(("http://", "https://")):
        base = host.rstrip("/")
        return base if port is None or base.count(":") > 1 else f"{base}:{port}"
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port or DEFAULT_API_PORT}"


@dataclass
class CliContext:
    api_host: str | None = None
    api_port: int | None = None
    data_dir: str | None = None
    config_values: tuple[str, ...] = ()
    log_level: str | None = None
    profile: str | None = None
    _client: ApiClient | None = field(default=None, repr=False)

    def split_config_values(self) -> tuple[list[str], list[str]]:
        """``-c`` takes config files and ``Key=Value`` (or bare ``Key``, meaning true) alike."""
        files, overrides = [], []
        for value in self.config_values:
            if "=" not in value and (Path(value).expanduser().is_file() or value.endswith((".yaml", ".yml"))):
                files.append(value)
            else:
                overrides.append(value)
        return files, overrides

    def config(self, flags: dict[str, Any] | None = None) -> BacalhauConfig:
        files, overrides = self.split_config_values()
        return load_config(data_dir=self.data_dir, config_files=files, overrides=overrides, flags=flags)

    def api_flags(self) -> dict[str, Any]:
        """The global ``--api-host``/``--api-port`` as config flags (None when not given)."""
        return {"API.Host": self.api_host, "API.Port": self.api_port}

    def profile_store(self, config: BacalhauConfig | None = None) -> ProfileStore:
        return ProfileStore((config or self.config()).data_path / "profiles")

    def _api_set_explicitly(self) -> bool:
        if self.api_host is not None or self.api_port is not None:
            return True
        _, overrides = self.split_config_values()
        names = {lookup_key("API.Host").name, lookup_key("API.Port").name}
        return any(lookup_key(item.partition("=")[0]).name in names for item in overrides)

    def selected_profile(self, store: ProfileStore) -> tuple[str, Profile | None]:
        """``--profile`` (or ``BACALHAU_PROFILE``) must name a saved profile; a broken selection is ignored."""
        if self.profile:
            return self.profile, store.load(self.profile)
        name = store.current()
        if not name:
            return "", None
        try:
            return name, store.load(name)
        except BacalhauError as exc:
            log.debug("ignoring the selected profile %r: %s", name, exc)
            return "", None

    def endpoint(self) -> Endpoint:
        config = self.config(self.api_flags())
        if not self._api_set_explicitly():
            name, profile = self.selected_profile(self.profile_store(config))
            if profile is not None:
                return Endpoint(
                    profile.url,
                    token=profile.token,
                    timeout=parse_duration(profile.effective_timeout),
                    insecure=profile.insecure,
                    profile=name,
                )
        port = self.api_port if self.api_port is not None else config.api.port
        given_port = None if port == DEFAULT_API_PORT and self.api_port is None else port
        return Endpoint(base_url(config.api.host, given_port))

    def api_url(self) -> str:
        return self.endpoint().url

    def credentials(self, endpoint: Endpoint) -> Credentials | None:
        """The environment's credentials, else the profile's token."""
        return from_environment(os.environ) or from_profile(endpoint.profile, endpoint.token)

    def client(self, timeout: float | None = None, *, anonymous: bool = False) -> ApiClient:
        """The command's client (made on the first call); ``anonymous`` sends no credentials, for what is open."""
        if self._client is None:
            endpoint = self.endpoint()
            self._client = ApiClient(
                endpoint.url,
                timeout=endpoint.timeout if timeout is None else timeout,
                credentials=None if anonymous else self.credentials(endpoint),
                verify=not endpoint.insecure,
                unreachable_hint=(
                    f"it comes from the profile {go_quote(endpoint.profile)}: check it with 'bacalhau profile show "
                    f"{endpoint.profile}', or override it with --api-host/--api-port"
                    if endpoint.profile
                    else ""
                ),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def cli_context() -> CliContext:
    ctx = click.get_current_context()
    obj = ctx.find_object(CliContext)
    if obj is None:
        obj = ctx.ensure_object(CliContext)
    return obj
