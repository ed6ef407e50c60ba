"""What every command gets: the global flags, the loaded config, and an API client built from them.

Where the client connects, highest first: ``--api-host``/``--api-port`` (or ``-c API.Host=...``), then
``BACALHAU_API_HOST``/``BACALHAU_API_PORT``, then the profile (``--profile``, ``BACALHAU_PROFILE``, or the selected
one), then the config file, then ``127.0.0.1:1234``. What it sends as credentials: the ``BACALHAU_API_*`` variables
(see ``client.auth``), else the profile's token.

TLS, as the original's client does it: an endpoint from the config is https when its host is an https:// URL or
``API.TLS.UseTLS`` is set, and skips certificate checks with ``API.TLS.Insecure``; a profile's endpoint is https when
its URL says so, and skips the checks when it was saved with ``--insecure``. ``API.TLS.CAFile``, the CA to trust
instead of the usual ones, applies to both (the original ignores it with a profile, which has no place for one).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bacalhau.client.auth import Credentials, from_environment, from_profile
from bacalhau.config import BacalhauConfig, go_quote, load_config, lookup_key, parse_duration
from bacalhau.config.profiles import Profile, ProfileStore
from bacalhau.errors import BacalhauError

if TYPE_CHECKING:
    from bacalhau.client.http import ApiClient

log = logging.getLogger("bacalhau.cli")


@dataclass(frozen=True)
class Endpoint:
    """Where and how the CLI talks to a node."""

    url: str
    token: str = field(default="", repr=False)  # the profile's
    timeout: float = 30.0
    ca_file: str = ""
    insecure: bool = False
    profile: str = ""  # the profile it came from, if any


def base_url(host: str, port: int, *, use_tls: bool = False) -> str:
    """The API's URL from ``API.Host`` and ``API.Port``, as the original builds it: a host given as an http(s) URL
    keeps its scheme, and its port if it has one; a plain host (IPv6 in brackets or not) takes https with
    ``use_tls``."""
    host = host.strip().rstrip("/")
    scheme, separator, rest = host.partition("://")
    if separator and scheme in ("http", "https"):
        host = rest
    else:
        scheme = "https" if use_tls else "http"
    if host.startswith("[") and "]" in host:  # [v6] or [v6]:port
        address, _, given = host[1:].partition("]")
        given = given.removeprefix(":")
    elif host.count(":") == 1:  # name:port or v4:port
        address, _, given = host.partition(":")
    else:  # a name, v4, or bare v6 address
        address, given = host, ""
    if address in ("", "0.0.0.0", "::"):
        address = "127.0.0.1"
    address = f"[{address}]" if ":" in address else address
    return f"{scheme}://{address}:{given or port}"


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
                    ca_file=config.api.tls.ca_file,
                    insecure=profile.insecure,
                    profile=name,
                )
        tls = config.api.tls
        port = self.api_port if self.api_port is not None else config.api.port
        url = base_url(config.api.host, port, use_tls=tls.use_tls)
        return Endpoint(url, ca_file=tls.ca_file, insecure=tls.insecure)

    def api_url(self) -> str:
        return self.endpoint().url

    def credentials(self, endpoint: Endpoint) -> Credentials | None:
        """The environment's credentials, else the profile's token."""
        return from_environment(os.environ) or from_profile(endpoint.profile, endpoint.token)

    def client(self, timeout: float | None = None, *, anonymous: bool = False) -> ApiClient:
        """The command's client (made on the first call); ``anonymous`` sends no credentials, for what is open."""
        if self._client is None:
            from bacalhau.client.http import ApiClient  # the HTTP stack only for commands that talk to a node

            endpoint = self.endpoint()
            self._client = ApiClient(
                endpoint.url,
                timeout=endpoint.timeout if timeout is None else timeout,
                credentials=None if anonymous else self.credentials(endpoint),
                ca_file=endpoint.ca_file,
                insecure=endpoint.insecure,
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
