"""``localDirectory``/``local`` inputs: only what the node's allow-list permits, read-only unless it says ``:rw``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute.executors.base import Mount
from bacalhau.compute.inputs import default_inputs
from bacalhau.compute.inputs.base import InputError
from bacalhau.compute.inputs.localdir import AllowedPath, LocalDirectoryInput
from bacalhau.models.spec import InputSource


def local(path: Path | str, **params: Any) -> InputSource:
    return InputSource.model_validate(
        {"Source": {"Type": "localDirectory", "Params": {"SourcePath": str(path), **params}}, "Target": "/data"}
    )


async def prepare(provider: LocalDirectoryInput, source: InputSource, tmp_path: Path) -> Mount:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return await provider.prepare(source, scratch)


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    (tmp_path / "shared" / "sub").mkdir(parents=True)
    (tmp_path / "shared" / "sub" / "a.txt").write_text("a")
    (tmp_path / "private").mkdir()
    return tmp_path / "shared"


async def test_allowed_path_is_mounted_read_only(shared: Path, tmp_path: Path) -> None:
    mount = await prepare(LocalDirectoryInput([str(shared)]), local(shared / "sub"), tmp_path)
    assert mount == Mount(source=shared / "sub", target="/data", read_write=False)


async def test_path_outside_the_allow_list_is_refused(shared: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"volume .*private is not allowlisted"):
        await prepare(LocalDirectoryInput([str(shared)]), local(tmp_path / "private"), tmp_path)


async def test_dot_dot_cannot_escape_the_allow_list(shared: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not allowlisted"):
        await prepare(LocalDirectoryInput([str(shared)]), local(f"{shared}/../private"), tmp_path)


async def test_symlink_cannot_escape_the_allow_list(shared: Path, tmp_path: Path) -> None:
    (shared / "link").symlink_to(tmp_path / "private")
    with pytest.raises(InputError, match="is not allowlisted"):
        await prepare(LocalDirectoryInput([str(shared)]), local(shared / "link"), tmp_path)


async def test_read_write_needs_an_rw_entry(shared: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not granted write access"):
        await prepare(LocalDirectoryInput([f"{shared}:ro"]), local(shared, ReadWrite=True), tmp_path)
    mount = await prepare(LocalDirectoryInput([f"{shared}:rw"]), local(shared, ReadWrite=True), tmp_path)
    assert mount.read_write


async def test_globs_in_the_allow_list(shared: Path, tmp_path: Path) -> None:
    provider = LocalDirectoryInput([f"{tmp_path}/sha*", f"{tmp_path}/deep/**/ok"])
    assert (await prepare(provider, local(shared / "sub" / "a.txt"), tmp_path)).source == shared / "sub" / "a.txt"
    (tmp_path / "deep" / "x" / "y" / "ok").mkdir(parents=True)
    assert (await prepare(provider, local(tmp_path / "deep" / "x" / "y" / "ok"), tmp_path)).read_write is False
    with pytest.raises(InputError, match="is not allowlisted"):
        await prepare(provider, local(tmp_path / "private"), tmp_path)


async def test_missing_path_is_created_only_when_asked(shared: Path, tmp_path: Path) -> None:
    provider = LocalDirectoryInput([f"{shared}:rw"])
    with pytest.raises(InputError, match="does not exist"):
        await prepare(provider, local(shared / "new"), tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        await prepare(provider, local(shared / "new", ReadWrite=True), tmp_path)
    mount = await prepare(provider, local(shared / "new", ReadWrite=True, CreateAs="dir"), tmp_path)
    assert mount.source.is_dir()
    mount = await prepare(provider, local(shared / "out" / "file.txt", ReadWrite="true", CreateAs="file"), tmp_path)
    assert mount.source.is_file()


async def test_source_path_is_required(shared: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="SourcePath is required"):
        await prepare(LocalDirectoryInput([str(shared)]), local(""), tmp_path)


@pytest.mark.parametrize(
    ("entry", "path", "covered", "read_write"),
    [
        ("/data", "/data", True, False),
        ("/data", "/data/x/y", True, False),
        ("/data:rw", "/data/x", True, True),
        ("/data:ro", "/data", True, False),
        ("/data", "/database", False, False),
        ("/data/*", "/data/x/y", True, False),
        ("/srv/*/in", "/srv/a/in", True, False),
        ("/srv/*/in", "/srv/a/b/in", False, False),
        ("/srv/**/in", "/srv/a/b/in", True, False),
    ],
)
def test_allow_list_entries(entry: str, path: str, covered: bool, read_write: bool) -> None:
    allowed = AllowedPath.parse(entry)
    assert allowed.covers(Path(path)) is covered
    assert allowed.read_write is read_write


def test_local_inputs_are_offered_only_with_an_allow_list() -> None:
    assert "localDirectory" not in default_inputs(allow_listed_paths=[], max_download_bytes=1, retries=0)
    offered = default_inputs(allow_listed_paths=["/tmp"], max_download_bytes=1, retries=0, disabled=["S3"])
    assert sorted(offered) == ["inline", "local", "localDirectory", "urlDownload"]
