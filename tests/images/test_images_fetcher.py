"""ImageFetcher: error mapping, bounded reads, the retry budget, thread safety.

Fakes of the S3 client cover the logic; a scripted local HTTP server covers what only
a real socket shows (botocore's own retries off, streaming caps, S3 error documents).
The real S3 server is exercised in test_images_s3.py.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from image_builders import FakeBody, FakeS3, client_error, encode, noise_rgb

from schemas.conversation import ImageContent
from worker.images.decode import ImageLimits, decode_image
from worker.images.exceptions import (
    AccessDenied,
    BucketNotAllowed,
    ChecksumMismatch,
    FetchRejected,
    FetchRetriesExhausted,
    ImageError,
    ImageTooLarge,
    InvalidImageUri,
    ObjectNotFound,
)
from worker.images.fetcher import ImageFetcher, RetryPolicy, make_s3_client
from worker.images.load import load_image
from worker.images.preprocess import prepare_image
from worker.images.types import TilingSpec
from worker.images.uri import BucketAllowlist

PNG = encode(noise_rgb(64, 32), "PNG")
PNG_SHA = hashlib.sha256(PNG).hexdigest()


def item(uri: str = "s3://bucket/k.png", sha256: str | None = None) -> ImageContent:
    return ImageContent(type="image", s3_uri=uri, sha256=sha256)


@dataclass
class Recorder:
    sleeps: list[float] = field(default_factory=list)
    retries: list[tuple[int, str]] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_retry(self, location: Any, attempt: int, error: BaseException, delay: float) -> None:
        self.retries.append((attempt, type(error).__name__))


def fetcher(
    s3: Any,
    recorder: Recorder | None = None,
    retry: RetryPolicy | None = None,
    limits: ImageLimits | None = None,
    allowed: tuple[str, ...] = (),
) -> ImageFetcher:
    recorder = recorder or Recorder()
    return ImageFetcher(
        s3,
        BucketAllowlist(allowed),
        limits or ImageLimits(),
        retry,
        on_retry=recorder.on_retry,
        sleep=recorder.sleep,
    )


def test_fetch_returns_bytes_and_sha256() -> None:
    s3 = FakeS3(PNG)
    fetched = fetcher(s3).fetch(item(sha256=PNG_SHA.upper()))
    assert (fetched.data, fetched.sha256, fetched.size) == (PNG, PNG_SHA, len(PNG))
    assert fetched.s3_uri == "s3://bucket/k.png"
    assert s3.calls == [("bucket", "k.png")]
    assert s3.bodies[0].closed


def test_sha256_mismatch() -> None:
    with pytest.raises(ChecksumMismatch) as caught:
        fetcher(FakeS3(PNG)).fetch(item(sha256="0" * 64))
    assert caught.value.permanent and caught.value.actual == PNG_SHA


def test_uri_and_allowlist_are_checked_before_any_request() -> None:
    s3 = FakeS3(PNG)
    with pytest.raises(BucketNotAllowed):
        fetcher(s3, allowed=("other",)).fetch(item())
    with pytest.raises(InvalidImageUri):
        fetcher(s3).fetch(item("s3://bucket@evil/x"))
    assert s3.calls == []


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, ObjectNotFound),
        ("NoSuchBucket", 404, ObjectNotFound),
        ("", 404, ObjectNotFound),
        ("AccessDenied", 403, AccessDenied),
        ("", 403, AccessDenied),
        ("InvalidObjectState", 403, AccessDenied),
        ("InvalidRequest", 400, FetchRejected),
        ("", 400, FetchRejected),
    ],
)
def test_permanent_errors_are_not_retried(
    code: str, status: int, expected: type[ImageError]
) -> None:
    recorder = Recorder()
    s3 = FakeS3(client_error(code, status), PNG)
    with pytest.raises(expected) as caught:
        fetcher(s3, recorder).fetch(item())
    assert caught.value.permanent and caught.value.attempts == 1
    assert len(s3.calls) == 1 and recorder.sleeps == []


@pytest.mark.parametrize(
    "error",
    [
        client_error("SlowDown", 503),
        client_error("ServiceUnavailable", 503),
        client_error("InternalError", 500),
        client_error("", 502),
        client_error("RequestTimeout", 400),
        client_error("", 429),
        client_error("SignatureDoesNotMatch", 403),  # our credentials, not the event's fault
        client_error("ExpiredToken", 400),
        EndpointConnectionError(endpoint_url="http://s3"),
        ReadTimeoutError(endpoint_url="http://s3"),
    ],
)
def test_transient_errors_are_retried(error: Exception) -> None:
    recorder = Recorder()
    s3 = FakeS3(error, error, PNG)
    assert fetcher(s3, recorder).fetch(item()).data == PNG
    assert len(s3.calls) == 3 and len(recorder.sleeps) == 2
    assert [attempt for attempt, _ in recorder.retries] == [1, 2]


def test_retries_exhausted_after_max_attempts() -> None:
    recorder = Recorder()
    s3 = FakeS3(client_error("SlowDown", 503))
    retry = RetryPolicy(max_attempts=4, base_delay_s=0.1, max_delay_s=1)
    with pytest.raises(FetchRetriesExhausted) as caught:
        fetcher(s3, recorder, retry).fetch(item())
    assert caught.value.permanent and caught.value.attempts == 4
    assert "SlowDown" in str(caught.value)
    assert len(s3.calls) == 4 and len(recorder.sleeps) == 3


def test_permanent_error_after_retries_reports_its_attempt() -> None:
    s3 = FakeS3(client_error("SlowDown", 503), client_error("NoSuchKey", 404))
    with pytest.raises(ObjectNotFound) as caught:
        fetcher(s3).fetch(item())
    assert caught.value.attempts == 2


def test_time_budget_stops_retrying() -> None:
    now = [0.0]
    s3: Any = FakeS3(client_error("SlowDown", 503))

    def sleep(seconds: float) -> None:
        now[0] += seconds

    retry = RetryPolicy(max_attempts=100, max_seconds=10, base_delay_s=1, max_delay_s=4, jitter=0)
    budgeted = ImageFetcher(
        s3, BucketAllowlist(), ImageLimits(), retry, sleep=sleep, clock=lambda: now[0]
    )
    with pytest.raises(FetchRetriesExhausted):
        budgeted.fetch(item())
    assert now[0] <= 10  # slept 1 + 2 + 4 = 7; the next 4 would pass the budget
    assert len(s3.calls) == 4


def test_default_budget_outlasts_a_30_second_outage() -> None:
    policy = RetryPolicy()
    retries = range(policy.max_attempts - 1)
    shortest = sum(policy.delay_s(n, 0.999999) for n in retries)
    longest = sum(policy.delay_s(n, 0.0) for n in retries)
    assert shortest >= 45 and longest <= 91 < policy.max_seconds


def test_content_length_over_limit_is_refused_without_reading() -> None:
    s3 = FakeS3(b"x" * 1001)
    with pytest.raises(ImageTooLarge) as caught:
        fetcher(s3, limits=ImageLimits(max_bytes=1000)).fetch(item())
    assert caught.value.size == 1001
    assert s3.bodies[0].amount_read == 0 and s3.bodies[0].closed


def test_stream_read_is_capped_when_content_length_lies() -> None:
    body = FakeBody(b"x" * 10_000_000)
    s3 = FakeS3({"Body": body, "ContentLength": 10})
    with pytest.raises(ImageTooLarge):
        fetcher(s3, limits=ImageLimits(max_bytes=1000)).fetch(item())
    assert body.amount_read == 1001 and body.closed


def test_load_image_from_many_threads(spec: TilingSpec) -> None:
    images = {
        f"k{i}.png": encode(noise_rgb(100 + 37 * i, 90 + 11 * i, seed=i), "PNG") for i in range(12)
    }

    class KeyedS3:
        def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
            return {"Body": FakeBody(images[Key]), "ContentLength": len(images[Key])}

    shared = fetcher(KeyedS3())
    items = [item(f"s3://bucket/{key}") for key in images] * 3
    with ThreadPoolExecutor(8) as pool:
        prepared = list(pool.map(lambda it: load_image(shared, it, spec), items))
    for it, result in zip(items, prepared, strict=True):
        data = images[it.s3_uri.rsplit("/", 1)[1]]
        expected = prepare_image(decode_image(data, ImageLimits()), spec, "")
        assert result.sha256 == hashlib.sha256(data).hexdigest()
        assert torch.equal(result.pixel_values, expected.pixel_values)


def test_load_image_tells_its_observer_the_bytes_and_seconds(
    spec: TilingSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, float]] = []
    ticks = iter([100.0, 100.25])  # load_image's clock: its start, then its end
    monkeypatch.setattr("worker.images.load.time", SimpleNamespace(monotonic=lambda: next(ticks)))
    prepared = load_image(
        fetcher(FakeS3(PNG)), item(), spec, observer=lambda n, s: seen.append((n, s))
    )
    assert seen == [(len(PNG), 0.25)]
    assert prepared.sha256 == PNG_SHA


def test_load_image_tells_its_observer_nothing_when_it_fails(spec: TilingSpec) -> None:
    seen: list[tuple[int, float]] = []
    with pytest.raises(ImageError):
        load_image(fetcher(FakeS3(b"<svg/>")), item(), spec, observer=lambda *a: seen.append(a))
    assert seen == []


def test_load_image_raises_image_errors_only(spec: TilingSpec) -> None:
    with pytest.raises(ImageError):
        load_image(fetcher(FakeS3(b"<svg/>")), item(), spec)


# --- a scripted HTTP server: real sockets, real botocore -----------------------------

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
)


class ScriptedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        step = self.server.script[min(len(self.server.requests), len(self.server.script)) - 1]
        if step == "503":
            self._send(503, SLOW_DOWN, "application/xml")
        elif step == "png":
            self._send(200, PNG, "image/png")
        elif step == "huge-length":  # claims 1 GB, sends a little, then stalls
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 30))
            self.end_headers()
            self.wfile.write(b"x" * 65536)
            time.sleep(5)
        elif step == "endless-chunked":  # no Content-Length: only the read cap stops it
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(1000):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass
        self.close_connection = True

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # The server closes after each reply: say so, or the client may reuse the
        # closed connection and count a ConnectionClosedError as an attempt instead.
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    scripted = ScriptedServer(list(request.param))
    thread = threading.Thread(target=scripted.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield scripted
    scripted.shutdown()
    scripted.server_close()


def _client(url: str, read_timeout_s: float = 10) -> Any:
    return make_s3_client(
        url, "us-east-1", 4, access_key_id="k", secret_access_key="s", read_timeout_s=read_timeout_s
    )


@pytest.mark.parametrize("server", [["503", "503", "png"]], indirect=True)
def test_503_twice_then_ok(server: ScriptedServer) -> None:
    recorder = Recorder()
    fetched = fetcher(_client(server.url), recorder).fetch(item("s3://bucket/a/b.png", PNG_SHA))
    assert fetched.data == PNG
    # Exactly three requests: botocore's own retries are off, ours did the two retries.
    assert server.requests == ["/bucket/a/b.png"] * 3
    assert recorder.retries == [(1, "ClientError"), (2, "ClientError")]


@pytest.mark.parametrize("server", [["503"]], indirect=True)
def test_503_forever_exhausts_the_budget(server: ScriptedServer) -> None:
    retry = RetryPolicy(max_attempts=3)
    with pytest.raises(FetchRetriesExhausted) as caught:
        fetcher(_client(server.url), retry=retry).fetch(item())
    assert caught.value.attempts == 3 and len(server.requests) == 3


@pytest.mark.parametrize("server", [["huge-length"]], indirect=True)
def test_huge_content_length_refused_at_once(server: ScriptedServer) -> None:
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge):
        fetcher(_client(server.url)).fetch(item())
    assert time.perf_counter() - started < 2  # did not wait for the stalled body


@pytest.mark.parametrize("server", [["endless-chunked"]], indirect=True)
def test_endless_body_read_is_capped(server: ScriptedServer) -> None:
    with pytest.raises(ImageTooLarge):
        fetcher(_client(server.url), limits=ImageLimits(max_bytes=1_000_000)).fetch(item())


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block exits


def test_closed_port_retries_then_gives_up() -> None:
    recorder = Recorder()
    client = _client(f"http://127.0.0.1:{_closed_port()}")
    retry = RetryPolicy(max_attempts=3, base_delay_s=0.01)
    with pytest.raises(FetchRetriesExhausted) as caught:
        fetcher(client, recorder, retry).fetch(item())
    assert caught.value.attempts == 3
    assert isinstance(caught.value.last_error, EndpointConnectionError)
    assert len(recorder.sleeps) == 2
