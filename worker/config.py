"""Settings: environment (``GUARDSTREAM_*``), an optional TOML file, and CLI flags.

Precedence, highest first: CLI flags, environment, the file named by
``GUARDSTREAM_CONFIG_FILE``, defaults. Every field is one row of the README's
configuration table (``guardstream config --table`` prints it).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "GUARDSTREAM_"
CONFIG_FILE_ENV = "GUARDSTREAM_CONFIG_FILE"

CommaList = Annotated[tuple[str, ...], NoDecode]


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
        protected_namespaces=(),
        populate_by_name=True,
    )

    # --- Kafka -----------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated."
    )
    kafka_driver: Literal["kafka-python", "confluent"] = Field(
        "kafka-python",
        description="Kafka client library: kafka-python (pure Python), or confluent "
        "(librdkafka; needs the `confluent` extra).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    kafka_sasl_mechanism: (
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None
    ) = Field(None, description="SASL mechanism when the protocol is SASL_*.")
    kafka_sasl_username: str | None = Field(None, description="SASL username.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for SSL.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client key for mutual TLS.")
    kafka_ssl_password: SecretStr | None = Field(None, description="Password of the client key.")
    input_topic: str = Field("conversations", description="Topic of ConversationEvents.")
    output_topic: str = Field("moderation.verdicts", description="Topic of VerdictEvents.")
    dlq_topic: str = Field("conversations.dlq", description="Dead-letter topic.")
    review_topic: str = Field(
        "moderation.review",
        description="Topic of ReviewRequests: events whose action is review or that were sampled for audit.",
    )
    group_id: str = Field("guardstream", description="Consumer group id.")
    group_instance_id: str | None = Field(
        None,
        description="Static member id (e.g. the pod name): a restart within the session timeout keeps its partitions.",
        validation_alias=AliasChoices(
            "GUARDSTREAM_GROUP_INSTANCE_ID", "GUARDSTREAM_STATIC_MEMBER_ID"
        ),
    )
    session_timeout_ms: int = Field(45_000, ge=6_000, description="Consumer group session timeout.")
    max_poll_interval_ms: int = Field(
        300_000, ge=10_000, description="Kafka max.poll.interval.ms; the loop polls far more often."
    )
    max_poll_records: int = Field(256, ge=1, description="Records per consumer poll.")
    exactly_once: bool = Field(
        False,
        description="Transactional mode: verdicts, dead letters and offsets in one transaction.",
    )
    transactional_id: str | None = Field(
        None,
        description="Transactional id (exactly-once); default: '<group_id>-<group_instance_id or worker_id>'.",
    )
    max_record_bytes: int = Field(
        1_048_576,
        ge=65_536,
        description="Largest record the worker produces (kafka-python max_request_size). A "
        "dead letter that would be larger is sent without the original value "
        "(guardstream.omitted says so). Keep it ≤ the output topics' max.message.bytes.",
    )
    commit_interval_ms: int = Field(
        1_000, ge=0, description="How often done offsets (or transactions) are committed."
    )
    kafka_startup_timeout_s: float = Field(
        30.0,
        gt=0,
        description="How long a command waits at start for a broker to accept a connection, then exits 1 with one line (a crash-looping pod retries with the orchestrator's backoff).",
    )

    # --- Model -----------------------------------------------------------------
    model: str | None = Field(
        None, description="Llama Guard 3 Vision: local path or hub id (required by `run`)."
    )
    model_revision: str | None = Field(
        None, description="Hub revision (commit) of MODEL; pin it in production."
    )
    text_model: str | None = Field(
        None, description="Llama Guard 3 1B/8B for text-only events; unset: the vision model."
    )
    text_model_revision: str | None = Field(None, description="Hub revision of TEXT_MODEL.")
    device: str = Field("auto", description="'auto' (cuda if available), 'cpu', 'cuda', 'cuda:N'.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="'auto': bfloat16 on GPU, float32 on CPU."
    )
    unsafe_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Verdict is unsafe when P(unsafe) >= this."
    )
    policy_file: Path | None = Field(
        None,
        description="Tenant policy profiles (TOML, see Moderation policy); re-read when it changes and on SIGHUP. Unset: one threshold, block unsafe.",
    )
    max_batch_size: int = Field(32, ge=1, description="Prompts per model batch.")
    max_batch_wait_ms: int = Field(
        20, ge=0, description="How long a partial batch waits for more prompts."
    )
    max_batch_tiles: int = Field(
        32, ge=1, description="Image tiles per batch (4 per image prompt); bounds GPU memory."
    )
    max_in_flight: int = Field(
        64, ge=1, description="Events between consume and commit; beyond it partitions pause."
    )
    category_max_new_tokens: int = Field(
        12, ge=1, le=64, description="Tokens decoded for categories of unsafe prompts."
    )
    vision_cache_size: int = Field(
        32,
        ge=0,
        description="Images whose projected vision states stay on the model's device, so a repeated image skips the encoder (~52 MB each for the 11B in bf16); 0 = off.",
    )
    prefix_cache_size: int = Field(
        16,
        ge=0,
        description="Policy prefixes (one per policy and assessed role) whose KV cache stays on the model's device, so a text-only prompt computes only its conversation (default policy, bf16: ~4.5 MB each for the 1B, ~19 MB for the 8B); 0 = off.",
    )
    verdict_cache_size: int = Field(
        4096,
        ge=0,
        description="Results of exact-repeat prompts (same image sha256, prompt text and model revision) kept in memory; 0 = off.",
    )

    # --- S3 and images -----------------------------------------------------------
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint (MinIO, S3Proxy, ...); unset: AWS."
    )
    s3_region: str = Field(
        "us-east-1",
        description="S3 region.",
        validation_alias=AliasChoices("GUARDSTREAM_S3_REGION", "AWS_DEFAULT_REGION"),
    )
    allowed_buckets: CommaList = Field(
        (),
        description="Buckets images may come from, comma separated; set = deny all others; unset = any.",
    )
    fetch_concurrency: int = Field(16, ge=1, le=256, description="Parallel S3 fetches and decodes.")
    fetch_max_attempts: int = Field(
        8, ge=1, description="Attempts for a transient S3 error before dead-lettering."
    )
    fetch_max_seconds: float = Field(
        120.0, gt=0, description="Time budget for retries of one image."
    )
    image_max_bytes: int = Field(20_000_000, ge=1, description="Largest S3 object accepted.")
    image_max_pixels: int = Field(
        50_000_000, ge=1, description="Largest width×height accepted (checked before decoding)."
    )
    image_draft_decode: bool = Field(
        True,
        description="Decode large JPEGs at reduced scale (Pillow draft) when the tile canvas is smaller; false = exact reference pixels.",
    )
    image_formats: CommaList = Field(
        ("JPEG", "PNG", "WEBP", "GIF"), description="Accepted image formats."
    )
    decode_memory_budget_mb: int | None = Field(
        None,
        ge=0,
        description="Decoded pixels the fetch threads may hold at once, MB; a thread waits instead of allocating past it. Unset: 2 × the largest image IMAGE_MAX_PIXELS admits (8 bytes a pixel: 800 MB at 50 MP); 0 = no limit.",
    )

    # --- Event limits --------------------------------------------------------------
    max_messages: int = Field(64, ge=1, description="Messages per event.")
    max_text_chars: int = Field(16_000, ge=1, description="Characters per text item.")
    max_total_text_chars: int = Field(64_000, ge=1, description="Characters of text per event.")
    max_images: int = Field(8, ge=0, description="Images per event (one prompt each).")

    # --- Known-bad image banks -------------------------------------------------------
    hash_bank_topic: str | None = Field(
        None,
        description="Compacted topic of known-bad image hashes (HashBankEntry, key 'signal:hash', a tombstone removes), e.g. moderation.hashbank; every worker reads it from the beginning (not ready, and not consuming, until caught up), then follows it. Unset or empty = banks off: images are not hashed.",
    )
    hash_match_distance: int = Field(
        31,
        ge=0,
        le=64,
        description="A PDQ hash matches a bank entry within this Hamming distance (of 256 bits; Meta recommends 31). MD5 matches exactly.",
    )
    hash_match_action: Literal["block", "classify_too"] = Field(
        "block",
        description="On a bank match the image is unsafe with the bank's categories, score 1.0; 'block': its prompt skips the model; 'classify_too': the model classifies it as well (categories added).",
    )
    hash_min_pdq_quality: int = Field(
        50,
        ge=0,
        le=100,
        description="PDQ hashes below this quality (featureless images, whose hash is noise) are not matched; MD5 still is.",
    )

    # --- Operations ----------------------------------------------------------------
    metrics_port: int | None = Field(
        9108, ge=0, le=65535, description="Prometheus /metrics, /healthz, /readyz; 0 = off."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="'auto': console on a TTY, else JSON."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_content: bool = Field(False, description="Allow message text in logs (debugging only).")
    worker_id: str = Field(
        default_factory=_default_worker_id, description="Worker name in verdicts and dead letters."
    )
    shutdown_timeout_s: float = Field(
        60.0, gt=0, description="Time to drain in-flight work on SIGTERM."
    )
    ready_broker_timeout_s: float = Field(
        60.0,
        gt=0,
        description="/readyz turns unready when no broker connection was seen for this long.",
    )

    @field_validator("allowed_buckets", "image_formats", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("hash_bank_topic", mode="before")
    @classmethod
    def _empty_topic_is_off(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("image_formats")
    @classmethod
    def _upper_formats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(fmt.upper() for fmt in value)

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and self.kafka_sasl_mechanism is None:
            raise ValueError("kafka_sasl_mechanism is required with a SASL security protocol")
        return self

    @property
    def effective_decode_budget_bytes(self) -> int | None:
        """``DecodeBudget`` size (``worker.images.budget``), None when turned off."""
        if self.decode_memory_budget_mb is None:
            return 2 * self.image_max_pixels * 8  # = budget.default_budget_bytes
        return self.decode_memory_budget_mb * 1_000_000 or None

    @property
    def effective_transactional_id(self) -> str:
        return (
            self.transactional_id or f"{self.group_id}-{self.group_instance_id or self.worker_id}"
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def settings_table() -> str:
    """The README's configuration table, generated so it cannot drift."""
    rows = ["| env var | flag | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "(host-pid)" if name == "worker_id" else field.default
        if isinstance(default, tuple):
            default = ",".join(default) or "(empty)"
        rows.append(
            f"| `{env_name(name)}` | `{flag_name(name)}` | `{default}` | {field.description or ''} |"
        )
    return "\n".join(rows)
