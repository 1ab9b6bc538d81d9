"""Strict ``s3://bucket/key`` parsing and the bucket allowlist.

The URI comes from the event, i.e. from whoever can write to the input topic, so it is
parsed to exactly one reading or refused: no stripping, no URL decoding, no userinfo,
ports or percent-escapes in the bucket, ASCII-only bucket names (no homoglyphs), and
no ``.``/``..`` key segments (a path-style request ``/allowed/../other/x`` is resolved
to another bucket by some S3-compatible servers and proxies).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from worker.images.exceptions import BucketNotAllowed, InvalidImageUri

SCHEME = "s3://"
MAX_KEY_BYTES = 1024  # S3's own limit on key length (UTF-8 bytes)
_MAX_SHOWN = 200

# S3 general-purpose bucket naming rules; re.ASCII so nothing but [a-z0-9.-] matches.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
_IP_ADDRESS = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", re.ASCII)
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# C0, DEL and C1 controls: S3 accepts some of them, logs and consoles mangle them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


def bucket_name_problem(bucket: str) -> str | None:
    """Why ``bucket`` is not a valid S3 bucket name, or None if it is."""
    if not _BUCKET.fullmatch(bucket):
        return "must be 3-63 characters of a-z, 0-9, '.', '-', starting and ending alphanumeric"
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "has adjacent separators"
    if _IP_ADDRESS.fullmatch(bucket):
        return "is formatted as an IP address"
    if bucket.startswith(_RESERVED_PREFIXES) or bucket.endswith(_RESERVED_SUFFIXES):
        return "uses a reserved prefix or suffix"
    return None


def parse_s3_uri(uri: str) -> S3Location:
    """``s3://bucket/key`` → its bucket and (literal, undecoded) key, or InvalidImageUri."""
    shown = repr(uri[:_MAX_SHOWN])
    if not uri.startswith(SCHEME):
        raise InvalidImageUri(f"{shown}: not an s3:// URI")
    bucket, slash, key = uri[len(SCHEME) :].partition("/")
    if not slash:
        raise InvalidImageUri(f"{shown}: no key")
    problem = bucket_name_problem(bucket)
    if problem is not None:
        raise InvalidImageUri(f"{shown}: bucket {problem}")
    if not key:
        raise InvalidImageUri(f"{shown}: empty key")
    if _CONTROL.search(key):
        raise InvalidImageUri(f"{shown}: key has control characters")
    if "\\" in key:
        raise InvalidImageUri(f"{shown}: key has a backslash")  # some servers read it as '/'
    if any(segment in (".", "..") for segment in key.split("/")):
        raise InvalidImageUri(f"{shown}: key has a '.' or '..' segment")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: no S3 key can hold them
        raise InvalidImageUri(f"{shown}: key is not valid Unicode") from None
    if size > MAX_KEY_BYTES:
        raise InvalidImageUri(f"{shown}: key is {size} bytes, over {MAX_KEY_BYTES}")
    return S3Location(bucket, key)


class BucketAllowlist:
    """Exact bucket-name allowlist. Empty (``ALLOWED_BUCKETS`` unset) allows any bucket."""

    def __init__(self, buckets: Iterable[str] = ()) -> None:
        names = frozenset(buckets)
        for name in names:
            problem = bucket_name_problem(name)
            if problem is not None:  # a typo here would silently deny everything
                raise ValueError(f"allowed bucket {name!r} {problem}")
        self._buckets = names

    @property
    def allows_any(self) -> bool:
        return not self._buckets

    def allows(self, bucket: str) -> bool:
        return self.allows_any or bucket in self._buckets

    def check(self, location: S3Location) -> None:
        if not self.allows(location.bucket):
            raise BucketNotAllowed(f"bucket {location.bucket!r} is not in ALLOWED_BUCKETS")

    def __repr__(self) -> str:
        return f"BucketAllowlist({sorted(self._buckets)!r})"
