"""The Kafka ACLs a worker needs, and the ``kafka-acls`` lines that grant them.

Least privilege, found against a broker with the StandardAuthorizer denying by default
(``tests/integration/test_secure_kafka.py`` grants exactly these and shows the worker
failing with one line when one is missing). READ and WRITE imply DESCRIBE, so DESCRIBE
is never listed on its own.

    at-least-once   READ   topic INPUT           fetch, list offsets, commit offsets
                    READ   group GROUP_ID        join, heartbeat, commit, fetch offsets
                    WRITE  topic OUTPUT, DLQ,    produce verdicts, dead letters and
                           REVIEW                review requests
    exactly-once    + WRITE transactional-id TRANSACTIONAL_ID (init, add partitions and
                    offsets, commit/abort; the offsets go in with the group's READ)

The idempotent producer (``acks=all``, ``enable_idempotence``) needs no cluster
IDEMPOTENT_WRITE on Kafka ≥ 3.0: WRITE on a topic is enough (KIP-679).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class AclSpec:
    principal: str
    """``User:name``."""
    operation: str
    """``Read``, ``Write``, ``Describe``, ``IdempotentWrite`` (kafka-acls spelling)."""
    resource: str
    """``topic``, ``group``, ``transactional-id`` or ``cluster``."""
    name: str = "kafka-cluster"
    prefixed: bool = False


def worker_acls(
    principal: str,
    *,
    input_topic: str,
    output_topics: Sequence[str],
    group_id: str,
    transactional_id: str | None = None,
    prefixed_transactional_id: bool = False,
) -> list[AclSpec]:
    """Everything ``guardstream run`` needs; ``transactional_id`` for exactly-once (a
    prefix, with ``prefixed_transactional_id``, covers a fleet of workers)."""
    specs = [
        AclSpec(principal, "Read", "topic", input_topic),
        AclSpec(principal, "Read", "group", group_id),
        *(AclSpec(principal, "Write", "topic", topic) for topic in output_topics),
    ]
    if transactional_id is not None:
        specs.append(
            AclSpec(
                principal,
                "Write",
                "transactional-id",
                transactional_id,
                prefixed=prefixed_transactional_id,
            )
        )
    return specs


def kafka_acls_lines(
    specs: Iterable[AclSpec],
    *,
    bootstrap: str = "BROKER:9092",
    command_config: str = "admin.properties",
    tool: str = "kafka-acls.sh",
) -> list[str]:
    """One ``kafka-acls --add`` line per principal, operation and pattern type (the tool
    applies its operations to every resource named on the line)."""
    groups: dict[tuple[str, str, bool], list[str]] = {}
    for spec in specs:
        where = f"--{spec.resource}" + ("" if spec.resource == "cluster" else f" {spec.name}")
        groups.setdefault((spec.principal, spec.operation, spec.prefixed), []).append(where)
    return [
        f"{tool} --bootstrap-server {bootstrap} --command-config {command_config} "
        f"--add --allow-principal {principal} --operation {operation} {' '.join(resources)}"
        + (" --resource-pattern-type prefixed" if prefixed else "")
        for (principal, operation, prefixed), resources in groups.items()
    ]
