"""S3 inputs, the S3 publisher and pre-signed results, against a real S3 endpoint (moto) on loopback."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from bacalhau.compute.inputs.base import InputError
from bacalhau.compute.inputs.s3objects import S3Input, local_path
from bacalhau.compute.publishers.base import PublishError
from bacalhau.compute.publishers.s3results import S3Publisher, render_key
from bacalhau.lib.links import KEY_BYTES, LinkSigner
from bacalhau.models.execution import Execution
from bacalhau.models.ids import new_execution_id
from bacalhau.models.spec import InputSource, SpecConfig
from bacalhau.orchestrator.results import ResultTransformer
from tests.conftest import S3Bucket


def s3_input(bucket: S3Bucket, key: str, **params: Any) -> InputSource:
    spec = {"Bucket": bucket.name, "Key": key, "Endpoint": bucket.endpoint, "Region": "us-east-1", **params}
    return InputSource.model_validate({"Source": {"Type": "s3", "Params": spec}, "Target": "/inputs"})


def handed_out(result: SpecConfig, *, presign: bool = True, expires_in: int = 3600) -> SpecConfig:
    """What the results endpoint hands out for an execution that published ``result``."""
    execution = Execution(id=new_execution_id(), node_id="node-1", published_result=result)
    signer = LinkSigner(bytes(KEY_BYTES))
    return ResultTransformer(signer, presign=presign, expires_in=expires_in)(execution)


async def fetch(bucket: S3Bucket, key: str, tmp_path: Path, **params: Any) -> dict[str, bytes]:
    """Prepare the input and return what the job would see, by path relative to the target."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(parents=True)
    mount = await S3Input().prepare(s3_input(bucket, key, **params), scratch)
    assert mount.target == "/inputs" and mount.is_dir
    return {p.relative_to(mount.source).as_posix(): p.read_bytes() for p in mount.source.rglob("*") if p.is_file()}


@pytest.fixture
def dataset(s3_bucket: S3Bucket) -> S3Bucket:
    for key in ("data/a.csv", "data/b.csv", "data/notes.txt", "data/2024/c.csv", "other/d.csv", "data-extra.csv"):
        s3_bucket.put(key, key.encode())
    return s3_bucket


async def test_one_object_by_key(dataset: S3Bucket, tmp_path: Path) -> None:
    assert await fetch(dataset, "data/a.csv", tmp_path) == {"a.csv": b"data/a.csv"}


async def test_a_prefix_brings_everything_under_it(dataset: S3Bucket, tmp_path: Path) -> None:
    assert await fetch(dataset, "data/", tmp_path) == {
        "a.csv": b"data/a.csv",
        "b.csv": b"data/b.csv",
        "notes.txt": b"data/notes.txt",
        "2024/c.csv": b"data/2024/c.csv",
    }


async def test_a_trailing_star_matches_names_by_prefix(dataset: S3Bucket, tmp_path: Path) -> None:
    assert sorted(await fetch(dataset, "data*", tmp_path)) == [
        "data-extra.csv",
        "data/2024/c.csv",
        "data/a.csv",
        "data/b.csv",
        "data/notes.txt",
    ]


async def test_filter_is_a_regex_on_the_key_after_the_prefix(dataset: S3Bucket, tmp_path: Path) -> None:
    assert sorted(await fetch(dataset, "data/", tmp_path, Filter=r"^[a-z]+\.csv$")) == ["a.csv", "b.csv"]


async def test_empty_key_means_the_whole_bucket(dataset: S3Bucket, tmp_path: Path) -> None:
    assert len(await fetch(dataset, "", tmp_path)) == 6


async def test_an_empty_prefix_gives_an_empty_directory(dataset: S3Bucket, tmp_path: Path) -> None:
    assert await fetch(dataset, "nothing-here/", tmp_path) == {}


async def test_version_id_selects_an_older_version(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    first = s3_bucket.put("doc.txt", b"version one")
    s3_bucket.put("doc.txt", b"version two")
    assert await fetch(s3_bucket, "doc.txt", tmp_path, VersionID=first) == {"doc.txt": b"version one"}


async def test_checksum_is_verified(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("doc.txt", b"content")
    good = base64.b64encode(hashlib.sha256(b"content").digest()).decode()
    assert await fetch(s3_bucket, "doc.txt", tmp_path / "1", ChecksumSHA256=good) == {"doc.txt": b"content"}
    with pytest.raises(InputError, match=r"checksum mismatch for s3://.*/doc\.txt"):
        await fetch(s3_bucket, "doc.txt", tmp_path / "2", ChecksumSHA256="bm90IHRoZSBoYXNo")


async def test_missing_object_names_the_object_and_the_reason(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"s3://bucket-\w+/missing\.txt: NoSuchKey") as info:
        await fetch(s3_bucket, "missing.txt", tmp_path)
    assert not info.value.retryable


async def test_missing_bucket_is_a_clear_error(s3_endpoint: str, s3_bucket: S3Bucket, tmp_path: Path) -> None:
    gone = S3Bucket(s3_endpoint, "no-such-bucket", s3_bucket.client)
    with pytest.raises(InputError, match=r"s3://no-such-bucket/data/: NoSuchBucket"):
        await fetch(gone, "data/", tmp_path)


async def test_bad_filter_and_missing_bucket_param(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="invalid Filter regex"):
        await fetch(s3_bucket, "data/", tmp_path, Filter="(")
    with pytest.raises(InputError, match="bucket cannot be empty"):
        await S3Input().prepare(InputSource.model_validate({"Source": {"Type": "s3"}, "Target": "/x"}), tmp_path)


@pytest.mark.parametrize(
    ("key", "prefix", "expected"),
    [
        ("data/a.csv", "data/", "a.csv"),
        ("data/2024/c.csv", "data/", "2024/c.csv"),
        ("data/file-1.txt", "data/file-", "file-1.txt"),
        ("data-extra.csv", "data", "data-extra.csv"),
        ("a/b/c.txt", "", "a/b/c.txt"),
        ("a/x/c.txt", "a/b/", "x/c.txt"),
    ],
)
def test_local_paths_are_relative_to_the_prefix_directory(key: str, prefix: str, expected: str) -> None:
    assert local_path(key, prefix) == expected


def results_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    (folder / "outputs").mkdir(parents=True)
    (folder / "stdout").write_text("hello\n")
    (folder / "exitCode").write_text("0")
    (folder / "outputs" / "result.txt").write_text("42")
    return folder


def publisher_spec(bucket: S3Bucket, key: str, **params: Any) -> SpecConfig:
    return SpecConfig(type="s3", params={"Bucket": bucket.name, "Key": key, "Endpoint": bucket.endpoint, **params})


async def test_publish_gzip_is_one_archive_and_presigns_for_download(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    published = await S3Publisher("node-1").publish(
        "e-1", "j-1", results_dir(tmp_path), publisher_spec(s3_bucket, "results/{jobID}/{executionID}-{nodeID}")
    )
    assert published.type == "s3"
    assert published.params["Key"] == "results/j-1/e-1-node-1.tar.gz"
    assert published.params["Bucket"] == s3_bucket.name and published.params["VersionID"]
    assert s3_bucket.keys() == ["results/j-1/e-1-node-1.tar.gz"]

    signed = handed_out(published, expires_in=60)
    assert signed.type == "s3PreSigned"
    assert signed.params["Key"] == published.params["Key"]
    async with httpx.AsyncClient() as client:
        archive = (await client.get(signed.params["PreSignedURL"])).raise_for_status().content
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = {name.removeprefix("./") for name in tar.getnames()}
        member = tar.extractfile("./outputs/result.txt")
        assert member is not None and member.read() == b"42"
    assert {"stdout", "exitCode", "outputs/result.txt"} <= names


async def test_publish_plain_uploads_each_file(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    published = await S3Publisher("n").publish(
        "e-2", "j-2", results_dir(tmp_path), publisher_spec(s3_bucket, "{jobID}", Encoding="plain")
    )
    assert published.params["Key"] == "j-2/"
    assert s3_bucket.keys() == ["j-2/exitCode", "j-2/outputs/result.txt", "j-2/stdout"]
    assert s3_bucket.get("j-2/outputs/result.txt") == b"42"
    assert handed_out(published) == published, "a prefix cannot be pre-signed as one object"


async def test_publish_errors_name_the_destination(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    folder = results_dir(tmp_path)
    with pytest.raises(PublishError, match="needs Bucket and Key"):
        await S3Publisher("n").publish("e", "j", folder, SpecConfig(type="s3", params={"Bucket": s3_bucket.name}))
    with pytest.raises(PublishError, match="unknown Encoding 'zip'"):
        await S3Publisher("n").publish("e", "j", folder, publisher_spec(s3_bucket, "k", Encoding="zip"))
    missing = SpecConfig(type="s3", params={"Bucket": "missing-bucket", "Key": "k", "Endpoint": s3_bucket.endpoint})
    with pytest.raises(PublishError, match=r"publishing to s3://missing-bucket/k\.tar\.gz failed: NoSuchBucket"):
        await S3Publisher("n").publish("e", "j", folder, missing)


def test_presigning_can_be_turned_off(s3_bucket: S3Bucket) -> None:
    result = publisher_spec(s3_bucket, "a.tar.gz")
    assert handed_out(result, presign=False) == result


def test_key_templates() -> None:
    key = render_key("{jobID}/{executionID}/{nodeID}/{date}-{time}", job_id="j", execution_id="e", node_id="n", now=0)
    assert key == "j/e/n/19700101-000000"


async def test_object_keys_cannot_lead_outside_the_input_directory(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    """Keys are the bucket owner's choice: ``..`` in one is refused; a single object named ``..`` lands inside."""
    s3_bucket.put("data/../../escaped", b"x")
    with pytest.raises(InputError, match="escapes the input directory"):
        await fetch(s3_bucket, "data/", tmp_path)
    assert not (tmp_path / "escaped").exists()
    s3_bucket.put("x/..", b"y")
    assert await fetch(s3_bucket, "x/..", tmp_path / "single") == {"object": b"y"}


async def test_a_prefix_s_own_folder_marker_is_the_input_directory(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/", b"")
    s3_bucket.put("data/a.csv", b"a")
    assert await fetch(s3_bucket, "data/", tmp_path) == {"a.csv": b"a"}
