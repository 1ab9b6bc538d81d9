"""The worker against a broker that demands credentials (``scripts/services up secure``):
SASL_SSL with SCRAM-SHA-512, mTLS, the StandardAuthorizer denying by default, and only
the ACLs ``guardstream acls`` prints (granted with the real ``kafka-acls`` tool).

Start-up failures (wrong password, unknown CA, no client certificate, a missing ACL) are
one line and exit 1, after a single connection attempt, with no secret in the output.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from secure_harness import SecureServices

from worker.cli import main
from worker.config import Settings, flag_name
from worker.engine.models import Models
from worker.lab import Lab, conversation, png_bytes, running_worker
from worker.streaming.acls import AclSpec, kafka_acls_lines, worker_acls

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "scripts" / "services"


@pytest.fixture(scope="module")
def secure() -> SecureServices:
    services = SecureServices.from_env()
    if not services.reachable():
        pytest.skip("the secure profile is not running (scripts/services up secure)")
    return services


@pytest.fixture
def make_lab(
    secure: SecureServices,
    s3_client: Callable[..., Any],
    s3_endpoint: str,
    test_worker: dict[str, Any],
) -> Callable[..., Lab]:
    """make_lab(security): a lab on the secure broker whose workers use ``security``."""

    def make(security: dict[str, Any]) -> Lab:
        return secure.lab(s3_client(), {**test_worker, **security}, s3_endpoint)

    return make


def needed_acls(secure: SecureServices, lab: Lab, txn_id: str | None = None) -> list[AclSpec]:
    return worker_acls(
        secure.principal,
        input_topic=lab.input_topic,
        output_topics=[lab.output_topic, lab.dlq_topic, lab.review_topic],
        group_id=lab.topics.group,
        transactional_id=txn_id,
    )


def kafka_acls_tool(lines: list[str]) -> None:
    """Run ``kafka-acls`` lines (as ``guardstream acls`` prints them) with the real tool;
    scripts/services supplies the broker address and the super user's client config."""
    for line in lines:
        words = line.split()
        assert words[0] == "kafka-acls.sh" and words[1] == "--bootstrap-server"
        done = subprocess.run(
            [str(SERVICES), "kafka-acls", *words[5:]],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def flags(**settings: Any) -> list[str]:
    args: list[str] = []
    for name, value in settings.items():
        args += [flag_name(name), str(value).lower() if isinstance(value, bool) else str(value)]
    return args


def security(lab: Lab) -> dict[str, Any]:
    """The worker's connection settings (in the lab's defaults; the lab's own wiring
    names the super user's listener)."""
    return {k: v for k, v in lab.defaults.items() if k.startswith("kafka_")}


def worker_settings(lab: Lab, **overrides: Any) -> Settings:
    return lab.worker_settings(**security(lab), **overrides)


def worker_flags(lab: Lab, model: str, **settings: Any) -> list[str]:
    values = {
        **lab.wiring(),
        **security(lab),
        "model": model,
        "device": "cpu",
        "dtype": "float32",
        "metrics_port": 0,
        "log_format": "json",
        "kafka_startup_timeout_s": 20,
        **settings,
    }
    return flags(**values)


def message_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip() and not line.startswith("{")]


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every TCP connection the broker check opens (to show it does not retry)."""
    import worker.streaming.preflight as preflight

    seen: list[tuple[str, int]] = []
    real = socket.create_connection

    def counting(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        seen.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(preflight.socket, "create_connection", counting)
    yield seen


# --- end to end ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listener", "exactly_once", "driver"),
    [
        ("sasl", False, "kafka-python"),
        ("mtls", False, "kafka-python"),
        ("sasl", True, "kafka-python"),
        ("sasl", True, "confluent"),
        ("mtls", False, "confluent"),
    ],
    ids=[
        "sasl_ssl-at-least-once",
        "mtls-at-least-once",
        "sasl_ssl-exactly-once",
        "sasl_ssl-exactly-once-confluent",
        "mtls-at-least-once-confluent",
    ],
)
def test_worker_end_to_end_with_least_privilege(
    secure: SecureServices,
    make_lab: Callable[..., Lab],
    models: Models,
    tiny_model_path: str,
    listener: str,
    exactly_once: bool,
    driver: str,
) -> None:
    """The same least-privilege ACLs serve both Kafka drivers (librdkafka's settings
    come from ``drivers.confluent_config``)."""
    if driver == "confluent":
        pytest.importorskip("confluent_kafka")
    security = secure.sasl_settings() if listener == "sasl" else secure.mtls_settings()
    lab = make_lab({**security, "kafka_driver": driver})
    txn_id = f"{lab.name}-txn" if exactly_once else None
    specs = needed_acls(secure, lab, txn_id)
    if listener == "sasl":  # the README's lines through the real kafka-acls
        kafka_acls_tool(kafka_acls_lines(specs))
    else:
        secure.grant(specs)
    image = lab.put_image("a.png", png_bytes())
    events = [conversation("img", images=(image,)), *(conversation(f"t{i}") for i in range(3))]
    lab.produce_events(events)
    lab.produce([b"not json"])
    settings = worker_settings(
        lab, model=tiny_model_path, exactly_once=exactly_once, transactional_id=txn_id or None
    )
    isolation = "read_committed" if exactly_once else "read_uncommitted"
    with running_worker(settings, models):
        outputs = lab.read_outputs(expected=5, timeout_s=90, isolation_level=isolation)
    assert set(outputs.verdicts) == {"img", "t0", "t1", "t2"}
    assert all(len(v) == 1 for v in outputs.verdicts.values())
    assert [h.stage.value for [(h, _)] in outputs.dead_letters.values()] == ["decode"]


def test_replay_and_topics_ensure_over_sasl_ssl(
    secure: SecureServices,
    make_lab: Callable[..., Lab],
    models: Models,
    tiny_model_path: str,
    capsys: pytest.CaptureFixture[str],
    kafka_driver: str,
) -> None:
    """The admin, replay's consumer and its producer of each driver, over SASL_SSL."""
    lab = make_lab({**secure.sasl_settings(), "kafka_driver": kafka_driver})
    # topics ensure, as the operator (the super user may create topics).
    admin = secure.sasl_settings(
        kafka_sasl_username=secure.admin_user, kafka_sasl_password=secure.admin_password
    )
    names = {
        "input_topic": f"{lab.name}.in2",
        "output_topic": lab.output_topic,
        "dlq_topic": lab.dlq_topic,
        "review_topic": lab.review_topic,
        "hash_bank_topic": "",
    }
    ensure = flags(**admin, **names, kafka_driver=kafka_driver)
    assert main(["topics", "ensure", "--partitions", "1", *ensure]) == 0
    out = capsys.readouterr().out
    assert f"{lab.name}.in2: created" in out and f"{lab.output_topic}: exists" in out

    # A dead letter, then replay as User:guardstream with only what replay needs.
    secure.grant(needed_acls(secure, lab))
    replay_group = f"{lab.topics.group}.replay"
    secure.grant(
        [
            AclSpec(secure.principal, "Read", "topic", lab.dlq_topic),
            AclSpec(secure.principal, "Read", "group", replay_group),
            AclSpec(secure.principal, "Write", "topic", lab.input_topic),
        ]
    )
    lab.produce([b"{broken"])
    with running_worker(worker_settings(lab, model=tiny_model_path), models):
        assert len(lab.read_outputs(expected=1).dead_letters) == 1
    args = [
        "replay",
        *flags(
            **secure.sasl_settings(),
            dlq_topic=lab.dlq_topic,
            input_topic=lab.input_topic,
            group_id=lab.topics.group,
            kafka_driver=kafka_driver,
        ),
    ]
    assert main(args) == 0
    assert "scanned=1 replayed=1" in capsys.readouterr().out
    assert main(args) == 0  # the replay group's committed offset, read back
    assert "scanned=0 replayed=0" in capsys.readouterr().out
    consumer = KafkaConsumer(group_id=None, **lab.kafka())
    try:
        tp = TopicPartition(lab.input_topic, 0)
        assert consumer.end_offsets([tp])[tp] == 2  # the original and its replay
    finally:
        consumer.close()


def test_readme_lists_the_acl_lines() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    specs = worker_acls(
        "User:guardstream",
        input_topic="conversations",
        output_topics=["moderation.verdicts", "conversations.dlq", "moderation.review"],
        group_id="guardstream",
        transactional_id="guardstream-",
        prefixed_transactional_id=True,
    )
    for line in kafka_acls_lines(specs):
        assert line in readme, line


# --- failures at start -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong-password", "rejected the SASL login of user 'guardstream'"),
        ("unknown-ca", "presented a certificate this host does not trust"),
        ("no-client-certificate", "requires a client certificate"),
        ("untrusted-client-certificate", "rejected the client certificate"),
    ],
)
def test_bad_credentials_fail_at_start_with_one_line(
    secure: SecureServices,
    make_lab: Callable[..., Lab],
    capsys: pytest.CaptureFixture[str],
    connects: list[tuple[str, int]],
    tmp_path: Path,
    case: str,
    expected: str,
) -> None:
    settings = {
        "wrong-password": secure.sasl_settings(kafka_sasl_password="not-the-password-8c1f"),
        "unknown-ca": secure.sasl_settings(kafka_ssl_cafile=secure.tls("rogue-ca.pem")),
        "no-client-certificate": {
            k: v
            for k, v in secure.mtls_settings().items()
            if "certfile" not in k and "keyfile" not in k
        },
        "untrusted-client-certificate": secure.mtls_settings(
            kafka_ssl_certfile=secure.tls("rogue-client.pem"),
            kafka_ssl_keyfile=secure.tls("rogue-client.key"),
        ),
    }[case]
    lab = make_lab(settings)
    # The model is never loaded: the broker check comes first.
    assert main(["run", *worker_flags(lab, str(tmp_path))]) == 1
    err = capsys.readouterr().err
    lines = message_lines(err)
    assert len(lines) == 1 and lines[0].startswith("guardstream: "), err
    assert expected in lines[0]
    assert "Traceback" not in err
    assert "not-the-password" not in err and secure.password not in err
    assert len(connects) == 1  # one attempt: misconfiguration is not retried


def test_wrong_password_as_a_user_sees_it(secure: SecureServices, tmp_path: Path) -> None:
    """The same through the console script in its own process: stderr and exit code."""
    env_settings = secure.sasl_settings(kafka_sasl_password="wrong-secret-5d2a", metrics_port=0)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker.cli",
            "run",
            "--model",
            str(tmp_path),
            *flags(**env_settings),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "GUARDSTREAM_LOG_FORMAT": "json"},
    )
    assert done.returncode == 1, done.stderr
    assert message_lines(done.stderr) == [
        f"guardstream: the Kafka broker at {secure.sasl_servers} rejected the SASL login of user "
        "'guardstream' (Authentication failed during authentication due to invalid credentials "
        "with SASL mechanism SCRAM-SHA-512): check GUARDSTREAM_KAFKA_SASL_USERNAME and "
        "GUARDSTREAM_KAFKA_SASL_PASSWORD"
    ]
    assert "wrong-secret" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("input topic", "may not use topic"),
        ("group", "READ on the group"),
        ("output topic", "may not use topic"),
        ("transactional id", "WRITE and DESCRIBE on that transactional id"),
    ],
)
def test_a_missing_acl_stops_the_worker_with_one_line(
    secure: SecureServices,
    make_lab: Callable[..., Lab],
    tiny_model_path: str,
    capsys: pytest.CaptureFixture[str],
    missing: str,
    expected: str,
) -> None:
    lab = make_lab(secure.sasl_settings())
    txn_id = f"{lab.name}-txn"
    exactly_once = missing == "transactional id"
    specs = needed_acls(secure, lab, txn_id if exactly_once else None)
    drop = {
        "input topic": ("topic", lab.input_topic),
        "group": ("group", lab.topics.group),
        "output topic": ("topic", lab.output_topic),
        "transactional id": ("transactional-id", txn_id),
    }[missing]
    secure.grant([s for s in specs if (s.resource, s.name) != drop])
    lab.produce_events([conversation("e1")])
    args = worker_flags(lab, tiny_model_path, exactly_once=exactly_once, transactional_id=txn_id)
    assert main(["run", *args]) == 1
    err = capsys.readouterr().err
    lines = message_lines(err)
    assert len(lines) == 1 and lines[0].startswith("guardstream: "), err
    assert expected in lines[0] and "README" in lines[0]
    assert "Traceback" not in err
    for line in err.splitlines():
        if line.startswith("{"):
            json.loads(line)  # everything else on stderr is a JSON log line
