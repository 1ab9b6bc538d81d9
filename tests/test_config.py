"""Settings: precedence (flags > env > file > defaults) and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.cli import main
from worker.commands.settings_flags import SettingsError, add_settings_flags, load_settings
from worker.config import Settings


def parse(argv: list[str]) -> Settings:
    import argparse

    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    return load_settings(parser.parse_args(argv))


def test_defaults_are_the_documented_topics_and_group() -> None:
    settings = Settings()
    assert (settings.input_topic, settings.output_topic, settings.dlq_topic, settings.group_id) == (
        "conversations",
        "moderation.verdicts",
        "conversations.dlq",
        "guardstream",
    )
    assert settings.allowed_buckets == ()


def test_flags_beat_env_beat_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "guardstream.toml"
    config.write_text('max_batch_size = 3\nmax_batch_wait_ms = 7\ninput_topic = "from-file"\n')
    monkeypatch.setenv("GUARDSTREAM_CONFIG_FILE", str(config))
    monkeypatch.setenv("GUARDSTREAM_MAX_BATCH_SIZE", "5")
    monkeypatch.setenv("GUARDSTREAM_INPUT_TOPIC", "from-env")
    settings = parse(["--input-topic", "from-flag"])
    assert settings.input_topic == "from-flag"
    assert settings.max_batch_size == 5
    assert settings.max_batch_wait_ms == 7


def test_lists_come_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDSTREAM_ALLOWED_BUCKETS", "uploads, avatars")
    monkeypatch.setenv("GUARDSTREAM_IMAGE_FORMATS", "jpeg,png")
    settings = Settings()
    assert settings.allowed_buckets == ("uploads", "avatars")
    assert settings.image_formats == ("JPEG", "PNG")


def test_static_member_id_alias_and_transactional_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDSTREAM_STATIC_MEMBER_ID", "pod-3")
    settings = Settings(group_id="g")
    assert settings.group_instance_id == "pod-3"
    assert settings.effective_transactional_id == "g-pod-3"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--unsafe-threshold", "1.5"],
            "GUARDSTREAM_UNSAFE_THRESHOLD: Input should be less than or equal to 1",
        ),
        (
            ["--dtype", "int8"],
            "GUARDSTREAM_DTYPE: Input should be 'auto', 'bfloat16', 'float16' or 'float32'",
        ),
        (["--kafka-security-protocol", "SASL_SSL"], "kafka_sasl_mechanism is required"),
    ],
)
def test_bad_settings_raise_one_clear_error(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(argv)


def test_secrets_are_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GUARDSTREAM_KAFKA_SASL_PASSWORD", "hunter2-secret")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "hunter2-secret" not in out
    assert "GUARDSTREAM_KAFKA_SASL_PASSWORD=**********" in out
