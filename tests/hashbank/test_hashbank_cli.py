"""``guardstream hashbank``: bad input is one line and exit 2; on the real broker, add /
import / remove / export round-trip through a private compacted topic."""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hashbank_photos import half, jpeg, natural_photo

from worker.cli import main
from worker.hashbank import hash_image, pdq_hash
from worker.streaming.drivers.kafka_python import KafkaPythonDriver
from worker.streaming.kafka_config import KafkaConnection
from worker.streaming.topics import TopicSpec, ensure_topics

PDQ = "ab" * 32
MD5 = "cd" * 16
SERVERS = os.environ.get("GUARDSTREAM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture(autouse=True)
def bank_topic_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Banks are off unless the topic is set; these commands need it (a flag overrides)."""
    monkeypatch.setenv("GUARDSTREAM_HASH_BANK_TOPIC", "moderation.hashbank")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["hashbank", *argv, "--log-level", "WARNING"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["add", "--pdq", "abc", "--bank", "b", "--categories", "S4"], "--pdq: a pdq hash is 64"),
        (["add", "--md5", PDQ, "--bank", "b", "--categories", "S4"], "--md5: a md5 hash is 32"),
        (["add", "--pdq", PDQ, "--bank", "b", "--categories", "violence"], "--categories"),
        (["add", "--pdq", PDQ, "--bank", "bad bank", "--categories", "S4"], "--bank"),
        (
            ["add", "--image", "/nonexistent.jpg", "--bank", "b", "--categories", "S4"],
            "No such file",
        ),
        (["remove", "--pdq", "zz"], "--pdq"),
        (["import", "/nonexistent.csv"], "No such file"),
        (
            ["add", "--pdq", PDQ, "--bank", "b", "--categories", "S4", "--hash-bank-topic", ""],
            "banks are off",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_bad_files_and_images_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad_csv = tmp_path / "bank.csv"
    bad_csv.write_text(f"signal,hash,bank,categories\npdq,{PDQ},b,S4\nmd5,xyz,b,S4\n")
    code, _, err = run_cli(capsys, "import", str(bad_csv))
    assert code == 2 and "bank.csv line 3: hash" in err
    not_image = tmp_path / "x.jpg"
    not_image.write_bytes(b"<svg></svg>")
    code, _, err = run_cli(
        capsys, "add", "--image", str(not_image), "--bank", "b", "--categories", "S4"
    )
    assert code == 2 and "x.jpg" in err and err.count("\n") == 1


@pytest.fixture
def bank_topic() -> Iterator[str]:
    name = f"gs-test-hashbank-cli-{uuid.uuid4().hex[:10]}"
    admin = KafkaPythonDriver().admin(KafkaConnection(SERVERS))
    try:
        ensure_topics(admin, [TopicSpec(name, 2, 1, {"cleanup.policy": "compact"})])
        yield name
        admin.delete_topics([name])
    finally:
        admin.close()


def export_rows(capsys: pytest.CaptureFixture[str], topic: str) -> list[dict[str, str]]:
    code, out, err = run_cli(capsys, "export", "--hash-bank-topic", topic, "--timeout-s", "30")
    assert code == 0, err
    return list(csv.DictReader(io.StringIO(out)))


@pytest.mark.integration
def test_add_import_remove_export_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bank_topic: str
) -> None:
    topic = ["--hash-bank-topic", bank_topic]
    photo = natural_photo(800, 600, seed=11)
    image_file = tmp_path / "known-bad.png"
    photo.save(image_file)
    hashes = hash_image(photo, image_file.read_bytes())

    code, out, err = run_cli(
        capsys,
        "add",
        "--image",
        str(image_file),
        "--bank",
        "takedowns",
        "--label",
        "case 7",
        "--categories",
        "S4,S12",
        *topic,
    )
    assert code == 0, err
    assert f"published pdq:{hashes.pdq}" in out and f"published md5:{hashes.md5}" in out

    table = tmp_path / "shared.tsv"
    table.write_text(f"signal\thash\tlabel\npdq\t{PDQ}\tshared 1\nmd5\t{MD5}\tshared 2\n")
    code, out, err = run_cli(
        capsys, "import", str(table), "--bank", "industry", "--categories", "S1", *topic
    )
    assert code == 0, err
    assert out.count("published") == 2

    rows = export_rows(capsys, bank_topic)
    assert {(r["signal"], r["hash"]) for r in rows} == {
        ("pdq", hashes.pdq),
        ("md5", hashes.md5),
        ("pdq", PDQ),
        ("md5", MD5),
    }
    mine = next(r for r in rows if r["hash"] == hashes.pdq)
    assert (mine["bank"], mine["label"], mine["categories"]) == ("takedowns", "case 7", "S4 S12")
    # the re-upload (half size, JPEG 60) is within the threshold of what was banked
    assert (int(pdq_hash(jpeg(half(photo), 60))[0], 16) ^ int(hashes.pdq, 16)).bit_count() <= 31

    code, out, err = run_cli(capsys, "remove", "--image", str(image_file), *topic)
    assert code == 0, err
    assert out.count("removed") == 2
    code, _, _ = run_cli(capsys, "remove", "--md5", MD5, *topic)
    assert code == 0
    backup = tmp_path / "backup.jsonl"
    code, _, err = run_cli(capsys, "export", "-o", str(backup), *topic)
    assert code == 0 and "exported 1 entries" in err
    assert PDQ in backup.read_text() and MD5 not in backup.read_text()
