"""parse_s3_uri reads a URI exactly one way; the allowlist matches bucket names exactly."""

from __future__ import annotations

import pytest

from worker.images.exceptions import BucketNotAllowed, InvalidImageUri
from worker.images.uri import BucketAllowlist, S3Location, parse_s3_uri


@pytest.mark.parametrize(
    ("uri", "bucket", "key"),
    [
        ("s3://allowed/x.jpg", "allowed", "x.jpg"),
        ("s3://my.dotted-bucket/a/b/c.png", "my.dotted-bucket", "a/b/c.png"),
        ("s3://allowed/with space/ü.jpg", "allowed", "with space/ü.jpg"),
        ("s3://allowed/a%2Fb%20c", "allowed", "a%2Fb%20c"),  # never URL-decoded
        ("s3://allowed/...jpg", "allowed", "...jpg"),
        ("s3://allowed//leading-slash", "allowed", "/leading-slash"),
        ("s3://abc/" + "k" * 1024, "abc", "k" * 1024),
    ],
)
def test_valid_uris(uri: str, bucket: str, key: str) -> None:
    location = parse_s3_uri(uri)
    assert location == S3Location(bucket, key)
    assert location.uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "s3://allowed@evil/x",  # userinfo
        "s3://allowed:80/x",  # port
        "s3:///x",  # no bucket
        "s3://allowed",  # no key
        "s3://allowed/",  # empty key
        "http://allowed/x",
        "https://allowed.s3.amazonaws.com/x",
        "S3://allowed/x",
        "s3:/allowed/x",
        " s3://allowed/x",  # no stripping
        "s3://allowed /x",
        "s3://allowed\t/x",
        "s3://allowed/x\n",
        "s3://allowed/x\x00.jpg",
        "s3://allowed/x\x85",  # C1 control (NEL)
        "s3://ALLOWED/x",  # bucket names are lowercase
        "s3://Allowed/x",
        "s3://\u0430llowed/x",  # Cyrillic а
        "s3://\uff41llowed/x",  # fullwidth ａ
        "s3://allowed%2Eevil/x",  # percent-encoding in the bucket
        "s3://allowed%40evil/x",
        "s3://allowed\\evil/x",
        "s3://allowed#evil/x",
        "s3://allowed?evil/x",
        "s3://ab/x",  # too short
        "s3://" + "a" * 64 + "/x",  # too long
        "s3://-allowed/x",
        "s3://allowed-/x",
        "s3://allowed./x",
        "s3://allo..wed/x",
        "s3://allo.-wed/x",
        "s3://192.168.1.10/x",
        "s3://xn--llowed-9ya/x",  # punycode
        "s3://allowed/../evil/x",  # servers that normalise paths would read bucket 'evil'
        "s3://allowed/a/./b",
        "s3://allowed/..",
        "s3://allowed/a\\..\\b",
        "s3://allowed/\udc80",  # lone surrogate
        "s3://abc/" + "k" * 1025,
        "s3://abc/" + "é" * 513,  # 1026 UTF-8 bytes
    ],
)
def test_tricks_are_refused(uri: str) -> None:
    with pytest.raises(InvalidImageUri) as caught:
        parse_s3_uri(uri)
    assert caught.value.permanent


def test_percent_encoded_traversal_is_a_literal_key_in_the_named_bucket() -> None:
    location = parse_s3_uri("s3://evil/..%2Fallowed/x")
    assert location == S3Location("evil", "..%2Fallowed/x")
    with pytest.raises(BucketNotAllowed):
        BucketAllowlist(["allowed"]).check(location)


@pytest.mark.parametrize(
    "uri",
    ["s3://allowed.evil/x", "s3://evil.allowed/x", "s3://allowed-evil/x", "s3://evil/allowed/x"],
)
def test_allowlist_is_exact(uri: str) -> None:
    allowlist = BucketAllowlist(["allowed", "other"])
    with pytest.raises(BucketNotAllowed) as caught:
        allowlist.check(parse_s3_uri(uri))
    assert caught.value.permanent
    allowlist.check(parse_s3_uri("s3://allowed/x"))
    allowlist.check(parse_s3_uri("s3://other/x"))


def test_empty_allowlist_allows_any_bucket() -> None:
    allowlist = BucketAllowlist(())
    assert allowlist.allows_any
    allowlist.check(parse_s3_uri("s3://anything-at-all/x"))


@pytest.mark.parametrize("bad", ["ALLOWED", "s3://allowed", "allowed/", "a", " allowed"])
def test_misconfigured_allowlist_fails_at_startup(bad: str) -> None:
    with pytest.raises(ValueError, match="allowed bucket"):
        BucketAllowlist(["ok-bucket", bad])
