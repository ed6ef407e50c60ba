"""CLI connection profiles, stored as the original stores them: ``$BACALHAU_DIR/profiles/<name>.yaml``.

A profile names a cluster endpoint with its auth token, TLS and timeout settings, so that ``--profile prod`` (or
``BACALHAU_PROFILE``, or the selected profile that the ``current`` symlink points at) replaces a set of flags.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bacalhau.config.durations import parse_duration
from bacalhau.config.keys import go_quote
from bacalhau.errors import ConfigurationError

DEFAULT_TIMEOUT = "30s"
DEFAULT_PORT = 1234
CURRENT_LINK = "current"
EXTENSION = ".yaml"


class ProfileError(ConfigurationError):
    """A missing or invalid profile: one line plus what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, code="ValidationError", component="profile", hint=hint)


@dataclass
class Profile:
    """One saved endpoint and how to talk to it."""

    endpoint: str
    description: str = ""
    timeout: str = ""
    token: str = ""
    insecure: bool = False

    def validate(self) -> None:
        if not self.endpoint.strip():
            raise ProfileError("endpoint is required", hint="give one with --endpoint host:port or a full URL")
        scheme = urlsplit(self.endpoint).scheme if "://" in self.endpoint else "http"
        if scheme not in ("http", "https"):
            raise ProfileError(f"invalid endpoint {go_quote(self.endpoint)}: the scheme must be http or https")
        try:
            parts = urlsplit(self.url)
            valid = bool(parts.hostname) and (parts.port or 0) >= 0  # .port raises ValueError on a bad port
        except ValueError:
            valid = False
        if not valid:
            raise ProfileError(
                f"invalid endpoint {go_quote(self.endpoint)}", hint="use host:port or a URL such as https://host:1234"
            )
        if self.timeout:
            try:
                parse_duration(self.timeout)
            except ValueError:
                raise ProfileError(
                    f"invalid timeout {go_quote(self.timeout)}", hint="use a duration such as 30s or 1m"
                ) from None

    @property
    def url(self) -> str:
        """The API base URL: ``host:port`` gets ``http://``, a bare host also gets the default port."""
        endpoint = self.endpoint.strip().rstrip("/")
        if "://" in endpoint:
            return endpoint
        host = urlsplit(f"http://{endpoint}")
        return f"http://{endpoint}" if host.port else f"http://{endpoint}:{DEFAULT_PORT}"

    @property
    def effective_timeout(self) -> str:
        return self.timeout or DEFAULT_TIMEOUT

    def to_document(self) -> dict[str, Any]:
        """The YAML document, with empty fields left out as the original leaves them out."""
        document: dict[str, Any] = {"endpoint": self.endpoint}
        if self.description:
            document["description"] = self.description
        if self.timeout:
            document["timeout"] = self.timeout
        if self.token:
            document["auth"] = {"token": self.token}
        if self.insecure:
            document["tls"] = {"insecure": True}
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Profile:
        auth, tls = document.get("auth") or {}, document.get("tls") or {}
        return cls(
            endpoint=str(document.get("endpoint") or ""),
            description=str(document.get("description") or ""),
            timeout=str(document.get("timeout") or ""),
            token=str(auth.get("token") or "") if isinstance(auth, dict) else "",
            insecure=bool(tls.get("insecure")) if isinstance(tls, dict) else False,
        )


class ProfileStore:
    """The profiles directory: one YAML file per profile, and a ``current`` symlink to the selected one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        check_name(name)
        return self.directory / f"{name}{EXTENSION}"

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            path.name.removesuffix(EXTENSION)
            for path in self.directory.iterdir()
            if path.name.endswith(EXTENSION) and path.is_file() and not path.is_symlink()
        )

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def load(self, name: str) -> Profile:
        import yaml  # only when there is a profile to read: most commands have none, and yaml costs 15 ms to load

        path = self._path(name)
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ProfileError(
                f"profile {go_quote(name)} not found", hint="run 'bacalhau profile list' to see the saved profiles"
            ) from None
        except (OSError, yaml.YAMLError) as exc:
            raise ProfileError(f"cannot read profile {go_quote(name)} ({path}): {exc}") from None
        if not isinstance(document, dict):
            raise ProfileError(f"profile {go_quote(name)} ({path}) is not a YAML mapping")
        return Profile.from_document(document)

    def save(self, name: str, profile: Profile) -> None:
        profile.validate()
        path = self._path(name)
        self.directory.mkdir(parents=True, exist_ok=True)
        import yaml

        text = yaml.safe_dump(profile.to_document(), sort_keys=False, allow_unicode=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text)
        os.chmod(temporary, 0o600)  # a profile may hold a token
        os.replace(temporary, path)

    def delete(self, name: str) -> None:
        if not self.exists(name):
            raise ProfileError(f"profile {go_quote(name)} not found")
        if self.current() == name:
            self._current_link.unlink(missing_ok=True)
        self._path(name).unlink()

    @property
    def _current_link(self) -> Path:
        return self.directory / CURRENT_LINK

    def current(self) -> str:
        """The selected profile's name, or '' when none is selected (or the link is unreadable)."""
        with contextlib.suppress(OSError):
            return os.readlink(self._current_link).removesuffix(EXTENSION)
        return ""

    def select(self, name: str) -> None:
        self.load(name)  # must exist and be readable
        link = self._current_link
        link.unlink(missing_ok=True)
        link.symlink_to(f"{name}{EXTENSION}")


def check_name(name: str) -> None:
    """Profile names are plain file names: no paths, no hidden files, not the ``current`` link's name."""
    if not name.strip():
        raise ProfileError("profile name cannot be empty")
    if "/" in name or "\\" in name or name.startswith(".") or name == CURRENT_LINK or "\0" in name:
        raise ProfileError(
            f"invalid profile name {go_quote(name)}",
            hint=f"use a plain name without '/', a leading '.', or the reserved name {CURRENT_LINK!r}",
        )
