"""The secured broker and HTTPS S3 server of ``scripts/services up secure``: addresses,
credentials, client settings for each listener, and ACL grants through the super user.

Defaults match ``scripts/services env`` (the same variables override them).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from worker.config import Settings
from worker.lab import Lab
from worker.streaming.acls import AclSpec


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GUARDSTREAM_SECURE_{name}", default)


@dataclass(frozen=True)
class SecureServices:
    sasl_servers: str
    ssl_servers: str
    tls_dir: Path
    user: str
    password: str
    admin_user: str
    admin_password: str
    s3_endpoint: str

    @classmethod
    def from_env(cls) -> SecureServices:
        return cls(
            sasl_servers=_env("KAFKA_SASL_SERVERS", "127.0.0.1:9192"),
            ssl_servers=_env("KAFKA_SSL_SERVERS", "127.0.0.1:9193"),
            tls_dir=Path(_env("TLS_DIR", str(Path.home() / ".cache/guardstream/tls"))),
            user=_env("KAFKA_USER", "guardstream"),
            password=_env("KAFKA_PASSWORD", "guardstream-scram-secret"),
            admin_user=_env("ADMIN_USER", "admin"),
            admin_password=_env("ADMIN_PASSWORD", "admin-secret"),
            s3_endpoint=_env("S3_ENDPOINT_URL", "https://127.0.0.1:9443"),
        )

    @property
    def principal(self) -> str:
        return f"User:{self.user}"

    def reachable(self) -> bool:
        for server in (self.sasl_servers, self.ssl_servers):
            host, _, port = server.rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=2).close()
            except OSError:
                return False
        return (self.tls_dir / "ca.pem").exists()

    def tls(self, name: str) -> str:
        return str(self.tls_dir / name)

    # --- clients ---------------------------------------------------------------------

    def admin_config(self) -> dict[str, Any]:
        """kafka-python kwargs for the super user over SASL_SSL (test setup only)."""
        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": self.admin_user,
            "sasl_plain_password": self.admin_password,
            "ssl_cafile": self.tls("ca.pem"),
        }

    def sasl_settings(self, **overrides: Any) -> dict[str, Any]:
        """The worker's settings for the SASL_SSL listener as ``User:guardstream``."""
        return {
            "kafka_bootstrap_servers": self.sasl_servers,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": self.user,
            "kafka_sasl_password": self.password,
            "kafka_ssl_cafile": self.tls("ca.pem"),
            **overrides,
        }

    def mtls_settings(self, **overrides: Any) -> dict[str, Any]:
        """The worker's settings for the mTLS listener (certificate CN=guardstream)."""
        return {
            "kafka_bootstrap_servers": self.ssl_servers,
            "kafka_security_protocol": "SSL",
            "kafka_ssl_cafile": self.tls("ca.pem"),
            "kafka_ssl_certfile": self.tls("client.pem"),
            "kafka_ssl_keyfile": self.tls("client.key"),
            **overrides,
        }

    def admin_settings(self) -> dict[str, Any]:
        """Settings for the super user over SASL_SSL: the lab's own clients."""
        return self.sasl_settings(
            kafka_sasl_username=self.admin_user, kafka_sasl_password=self.admin_password
        )

    def lab(self, s3: Any, defaults: dict[str, Any], s3_endpoint: str, partitions: int = 1) -> Lab:
        """Private topics on the secure broker, created by the super user (who also
        produces the input and reads the outputs), and a bucket on ``s3``; its workers
        start from ``defaults`` (the test profile and the worker's security settings)."""
        lab = Lab(
            Settings(**self.admin_settings(), s3_endpoint_url=s3_endpoint),
            name=f"gs-sec-{uuid.uuid4().hex[:12]}",
            partitions=partitions,
            s3=s3,
            defaults=defaults,
        )
        return lab.create()

    # --- ACLs --------------------------------------------------------------------------

    def admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(bootstrap_servers=self.sasl_servers, **self.admin_config())

    def grant(self, specs: Iterable[AclSpec]) -> list[ACL]:
        acls = [to_acl(spec) for spec in specs]
        admin = self.admin()
        try:
            result = admin.create_acls(acls)
        finally:
            admin.close()
        assert not result["failed"], result["failed"]
        return acls

    def revoke(self, acls: Iterable[ACL]) -> None:
        filters = [
            ACLFilter(
                a.principal,
                a.host,
                a.operation,
                a.permission_type,
                ResourcePatternFilter(
                    a.resource_pattern.resource_type,
                    a.resource_pattern.resource_name,
                    a.resource_pattern.pattern_type,
                ),
            )
            for a in acls
        ]
        admin = self.admin()
        try:
            admin.delete_acls(filters)
        finally:
            admin.close()


_RESOURCES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional-id": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.CLUSTER,
}


def to_acl(spec: AclSpec) -> ACL:
    return ACL(
        principal=spec.principal,
        host="*",
        operation=ACLOperation[spec.operation.upper().replace("-", "_")],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            _RESOURCES[spec.resource],
            spec.name,
            ACLResourcePatternType.PREFIXED if spec.prefixed else ACLResourcePatternType.LITERAL,
        ),
    )
