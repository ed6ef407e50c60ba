"""Build information reported by the API and the CLI.

The wire API follows Bacalhau v1.9 (job versions and names; the official v1.4 Python client keeps working), so the
server reports the original's release whose API it serves to clients (the official clients and the node version
checks compare against it); the Python package has its own version beside it.
"""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from bacalhau import __version__

if TYPE_CHECKING:
    from bacalhau.models.node import BuildVersionInfo

API_VERSION = "v1.9.3"
BUILD_DATE = "2026-11-28T00:00:00Z"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


def goarch() -> str:
    machine = platform.machine().lower()
    return _ARCH.get(machine, machine)


def goos() -> str:
    return platform.system().lower()


@cache
def git_commit() -> str:
    """The commit this package was built from, when it runs from a checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return ""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def build_info() -> BuildVersionInfo:
    from bacalhau.models.node import BuildVersionInfo  # the wire models only for what sends or shows them whole
    from bacalhau.models.timefmt import parse_rfc3339

    major, minor = API_VERSION.lstrip("v").split(".")[:2]
    return BuildVersionInfo(
        major=major,
        minor=minor,
        git_version=API_VERSION,
        git_commit=git_commit(),
        build_date=parse_rfc3339(BUILD_DATE),
        goos=goos(),
        goarch=goarch(),
    )


def package_version() -> str:
    return __version__
