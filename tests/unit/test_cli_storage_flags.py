"""``-i/--input`` and ``-p/--publisher`` values, read as the original's CLI reads them."""

from __future__ import annotations

from typing import Any

import pytest

from bacalhau.cli.jobspec import SpecError, parse_input, parse_publisher


def source(kind: str, target: str = "/inputs", alias: str = "", **params: Any) -> dict[str, Any]:
    return {"Source": {"Type": kind, "Params": params}, "Alias": alias, "Target": target}


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("ipfs://QmCid", source("ipfs", alias="ipfs://QmCid", CID="QmCid")),
        ("ipfs://QmCid:/mount/path", source("ipfs", "/mount/path", "ipfs://QmCid", CID="QmCid")),
        ("ipfs://QmCid,target=/t", source("ipfs", "/t", "ipfs://QmCid", CID="QmCid")),
        ("ipfs://QmCid,dst=/d", source("ipfs", "/d", "ipfs://QmCid", CID="QmCid")),
        ("ipfs://QmCid,destination=/x", source("ipfs", "/x", "ipfs://QmCid", CID="QmCid")),
        ("src=ipfs://QmCid,dst=/data", source("ipfs", "/data", "ipfs://QmCid", CID="QmCid")),
        (
            "https://example.com/a.csv?x=1:/in",
            source("urlDownload", "/in", "https://example.com/a.csv?x=1", URL="https://example.com/a.csv?x=1"),
        ),
        ("s3://bucket/data/", source("s3", alias="s3://bucket/data/", Bucket="bucket", Key="data/")),
        (
            "s3://bucket/data/*,opt=region=eu-west-1,opt=endpoint=http://127.0.0.1:9000,dst=/data",
            source(
                "s3",
                "/data",
                "s3://bucket/data/*",
                Bucket="bucket",
                Key="data/*",
                Region="eu-west-1",
                Endpoint="http://127.0.0.1:9000",
            ),
        ),
        (
            "src=s3://b/k.txt,option=versionID=v1,opt=checksum-256=abc,opt=filter=.*csv",
            source(
                "s3",
                alias="s3://b/k.txt",
                Bucket="b",
                Key="k.txt",
                VersionID="v1",
                ChecksumSHA256="abc",
                Filter=".*csv",
            ),
        ),
        (
            "file:///srv/data",
            source("localDirectory", alias="file:///srv/data", SourcePath="/srv/data", ReadWrite=False),
        ),
        (
            "file:///srv/out:/outputs,opt=rw=true",
            source("localDirectory", "/outputs", "file:///srv/out", SourcePath="/srv/out", ReadWrite=True),
        ),
    ],
)
def test_inputs(flag: str, expected: dict[str, Any]) -> None:
    assert parse_input(flag) == expected


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("s3://bucket/k,region=x", "unexpected key region in field region=x"),
        ("s3://bucket/k,plain", "invalid storage option: plain. Must be a key=value pair"),
        ("s3://bucket/k,opt=colour=red", "unknown option 'colour' for storage s3"),
        ("s3:///key", "bucket cannot be empty"),
        ("file:///x,opt=rw=maybe", "failed to parse read-write option"),
        ("file:///x,opt=mode=rw", "unknown option 'mode' for storage file"),
        ("git://github.com/x/y", "unsupported storage schema"),
        ("ftp://host/file", "unknown storage schema"),
        ("dst=/data", "has no source"),
    ],
)
def test_bad_inputs(flag: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_input(flag)


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("local", {"Type": "local"}),
        ("noop", {"Type": "noop"}),
        ("s3://bucket/results/{jobID}", {"Type": "s3", "Params": {"Bucket": "bucket", "Key": "results/{jobID}"}}),
        (
            "s3://b/k,opt=region=eu-west-1,option=endpoint=http://h:9000",
            {"Type": "s3", "Params": {"Bucket": "b", "Key": "k", "Region": "eu-west-1", "Endpoint": "http://h:9000"}},
        ),
    ],
)
def test_publishers(flag: str, expected: dict[str, Any]) -> None:
    assert parse_publisher(flag) == expected


@pytest.mark.parametrize("flag", ["ftp://x", "ipfs", "s3managed"])
def test_unknown_publisher(flag: str) -> None:
    """Publishers this implementation does not provide are refused before anything is sent."""
    with pytest.raises(SpecError, match=f"unknown publisher type '{flag}'"):
        parse_publisher(flag)
