"""What every command gets: the global flags, the loaded config, and an API client built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from bacalhau.client.http import ApiClient
from bacalhau.config import BacalhauConfig, load_config


@dataclass
class CliContext:
    api_host: str | None = None
    api_port: int | None = None
    data_dir: str | None = None
    config_values: tuple[str, ...] = ()
    log_level: str | None = None
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

    def api_url(self) -> str:
        host = self.api_host or ""
        if host.startswith(("http://", "https://")):
            base = host.rstrip("/")
            return base if self.api_port is None or base.count(":") > 1 else f"{base}:{self.api_port}"
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.api_port or 1234}"

    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.api_url())
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
