"""A Docker-compatible engine for the Docker tests (Podman's Docker API, set up by scripts/docker-engine)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import docker

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/busybox:latest"


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """DOCKER_HOST for the engine, exported so that nodes started by tests use it too; skips when there is none."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        result = subprocess.run([str(ROOT / "scripts" / "docker-engine")], capture_output=True, text=True, check=False)
        lines = result.stdout.strip().splitlines()
        if not lines or not lines[-1].startswith("DOCKER_HOST="):
            pytest.skip(f"no Docker-compatible engine: {result.stderr.strip() or result.stdout.strip()}")
        host = lines[-1].split("=", 1)[1]
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    yield host
    if previous is None:
        os.environ.pop("DOCKER_HOST", None)
    else:
        os.environ["DOCKER_HOST"] = previous


@pytest.fixture(scope="session")
def engine(docker_host: str) -> docker.DockerClient:
    client = docker.from_env()
    client.images.get(IMAGE)
    return client


def containers_labelled(engine: docker.DockerClient, label: str) -> list[str]:
    """Names from the listing alone: inspecting each container as well would fail for one removed meanwhile."""
    listed = engine.containers.list(all=True, filters={"label": label}, sparse=True)
    return [c.attrs["Names"][0].lstrip("/") for c in listed]
