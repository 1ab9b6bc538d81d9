"""Fetch an event's image bytes from S3, with bounded reads and our own retry budget.

Thread-safe: one ``ImageFetcher`` (one boto3 client) serves a whole thread pool; boto3
clients are thread-safe, sessions are not, so ``make_s3_client`` uses a private session.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
)

from schemas.conversation import ImageContent
from worker.images.decode import ImageLimits
from worker.images.exceptions import (
    AccessDenied,
    ChecksumMismatch,
    FetchRejected,
    FetchRetriesExhausted,
    ImageError,
    ImageTooLarge,
    ObjectNotFound,
    TransientFetchError,
)
from worker.images.uri import BucketAllowlist, S3Location, parse_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

log = structlog.get_logger(__name__)


class ObjectGetter(Protocol):
    """The one S3 call the fetcher makes (a boto3 S3 client, or a test double)."""

    def get_object(self, *, Bucket: str, Key: str) -> Any: ...  # boto3 spells them so


_READ_CHUNK = 1 << 20
# Network-level failures: connection refused/reset/closed, timeouts, truncated or
# corrupted bodies. NoCredentialsError is here because it is the worker's problem (e.g.
# a web-identity token not mounted yet), not the event's.
_NETWORK_ERRORS = (
    HTTPClientError,
    ConnectionError,
    IncompleteReadError,
    FlexibleChecksumError,
    NoCredentialsError,
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound"})
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem"})
# Throttling and server trouble, plus credential/clock errors: those say our worker is
# misconfigured or mid-rotation, so dead-lettering the event right away would be wrong.
_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "ExpiredToken",
        "ExpiredTokenException",
        "TokenRefreshRequired",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "RequestTimeTooSkewed",
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and by total time.

    Defaults: up to 8 attempts; sleeps capped at 1, 2, 4, 8, 16, 30, 30 s. ``jitter``
    is the randomised fraction of each sleep: 0.5 ("equal jitter") keeps retries spread
    out while guaranteeing the seven sleeps add up to at least 45 s (at most 91 s), so an
    S3 outage of 30 s never dead-letters anything; 1.0 is full jitter, whose total can
    by chance be a few seconds.
    """

    max_attempts: int = 8
    max_seconds: float = 120.0
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_seconds <= 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid retry policy: {self}")

    def delay_s(self, retry: int, uniform: float) -> float:
        """Sleep before retry number ``retry`` (0-based), given ``uniform`` in [0, 1)."""
        cap = min(self.max_delay_s, self.base_delay_s * 2.0**retry)
        return cap * (1.0 - self.jitter * uniform)


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    sha256: str
    s3_uri: str

    @property
    def size(self) -> int:
        return len(self.data)


RetryHook = Callable[[S3Location, int, BaseException, float], None]


def make_s3_client(
    endpoint_url: str | None,
    region: str,
    max_pool_connections: int,
    *,
    connect_timeout_s: float = 5.0,
    read_timeout_s: float = 20.0,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    addressing_style: Literal["auto", "virtual", "path"] = "path",
) -> S3Client:
    """An S3 client for ``ImageFetcher``: botocore's retries off (ours apply), one pool
    connection per fetch thread, path-style URLs (S3-compatible servers, dotted buckets).

    Credentials left as None come from boto3's usual chain (env, profile, IRSA, ...).
    """
    config = Config(
        # total_max_attempts counts the first try; ``max_attempts: 1`` would mean 1 *retry*.
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": addressing_style},
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        config=config,
    )


class ImageFetcher:
    def __init__(
        self,
        s3_client: ObjectGetter,
        allowlist: BucketAllowlist,
        limits: ImageLimits,
        retry: RetryPolicy | None = None,
        *,
        on_retry: RetryHook | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self.s3 = s3_client
        self.allowlist = allowlist
        self.limits = limits
        self.retry = retry or RetryPolicy()
        self._on_retry = on_retry
        self._sleep = sleep
        self._clock = clock
        self._uniform = uniform

    def fetch(self, item: ImageContent) -> FetchedImage:
        """The image's bytes, verified; raises an ImageError (see its ``permanent``)."""
        location = parse_s3_uri(item.s3_uri)
        self.allowlist.check(location)
        data, attempts = self._get_with_retries(location)
        digest = hashlib.sha256(data).hexdigest()
        if item.sha256 is not None and digest != item.sha256.lower():
            mismatch = ChecksumMismatch(item.sha256.lower(), digest)
            mismatch.attempts = attempts
            raise mismatch
        return FetchedImage(data=data, sha256=digest, s3_uri=location.uri)

    def _get_with_retries(self, location: S3Location) -> tuple[bytes, int]:
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.get_once(location), attempt
            except TransientFetchError as exc:
                elapsed = self._clock() - started
                delay = self.retry.delay_s(attempt - 1, self._uniform())
                cause = exc.__cause__ or exc
                if attempt >= self.retry.max_attempts or elapsed + delay > self.retry.max_seconds:
                    raise FetchRetriesExhausted(location.uri, attempt, elapsed, cause) from cause
                log.warning(
                    "image_fetch_retry",
                    uri=location.uri,
                    attempt=attempt,
                    delay_s=round(delay, 2),
                    error=f"{type(cause).__name__}: {cause}",
                )
                if self._on_retry is not None:
                    self._on_retry(location, attempt, cause, delay)
                self._sleep(delay)
            except ImageError as exc:
                exc.attempts = attempt
                raise

    def get_once(self, location: S3Location) -> bytes:
        """One GET: the bytes, a permanent ImageError, or TransientFetchError."""
        limit = self.limits.max_bytes
        try:
            response = self.s3.get_object(Bucket=location.bucket, Key=location.key)
        except ClientError as exc:
            raise _classify(exc, location) from exc
        except _NETWORK_ERRORS as exc:
            raise TransientFetchError(f"{location.uri}: {type(exc).__name__}") from exc
        body = response["Body"]
        try:
            length = response.get("ContentLength")
            if length is not None and length > limit:
                raise ImageTooLarge(length, limit)  # refused without reading the body
            chunks: list[bytes] = []
            total = 0
            while True:
                # Never more than limit + 1 bytes, whatever Content-Length claimed.
                chunk = body.read(min(_READ_CHUNK, limit + 1 - total))
                if not chunk:  # botocore checks Content-Length on this final read
                    return b"".join(chunks)
                total += len(chunk)
                if total > limit:
                    raise ImageTooLarge(None, limit)
                chunks.append(chunk)
        except _NETWORK_ERRORS as exc:
            raise TransientFetchError(f"{location.uri}: {type(exc).__name__} reading body") from exc
        finally:
            body.close()  # on early exit this drops the connection instead of draining it


def _classify(exc: ClientError, location: S3Location) -> ImageError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    what = f"{location.uri}: {code or 'HTTP'} ({status})"
    if code in _NOT_FOUND_CODES or status == 404:
        return ObjectNotFound(what)
    if code in _RETRYABLE_CODES or status in (408, 429) or status >= 500:
        return TransientFetchError(what)
    if code in _DENIED_CODES or status == 403:
        return AccessDenied(what)
    return FetchRejected(what)
