"""Smoke tests of ``guardstream bench``: the JSON shape and the counts, never timings."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from worker.bench import BENCHMARKS, load
from worker.bench.report import emit, percentile
from worker.cli import build_parser

MACHINE_KEYS = {"date", "cpu", "cores", "torch", "transformers"}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """Parse argv as the CLI does, run the benchmark, and return its one JSON line."""
    args = build_parser().parse_args(["bench", *argv])
    emit(load(args.benchmark).run(args))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    result: dict[str, Any] = json.loads(lines[0])
    assert result["benchmark"] == args.benchmark
    assert result["machine"].keys() >= MACHINE_KEYS
    return result


def test_every_benchmark_is_a_subcommand() -> None:
    parser = build_parser()
    for name in BENCHMARKS:
        assert parser.parse_args(["bench", name]).benchmark == name


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile([0.0, 10.0], 99) == pytest.approx(9.9)


def test_preprocess(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run(
        capsys,
        "preprocess",
        "--images",
        "2",
        "--width",
        "1600",
        "--height",
        "1200",
        "--threads",
        "2",
    )
    assert result["images"] == 2
    assert result["unit"] == "images/s"
    for key in ("guardstream", "guardstream_1_thread", "baseline", "ratio"):
        assert result[key] > 0
    assert result["fidelity"]["full_decode_bit_identical"] is True


@pytest.mark.integration
def test_overhead(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run(capsys, "overhead", "--events", "40")
    assert result["events"] == result["verdicts"] == result["baseline_outputs"] == 40
    assert result["dead_letters"] == 0
    assert result["guardstream"] > 0 and result["baseline"] > 0 and result["ratio"] > 0


def test_steps_runs_every_event_through_the_chain_and_the_plain_loop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No broker: the worker's step chain into a counting terminal, and its stage functions.
    cpus = os.sched_getaffinity(0)
    result = _run(capsys, "steps", "--events", "300")
    assert result["events"] == result["verdicts"] == 300
    assert result["stages"].keys() == {"decode", "fetch", "classify", "decide", "publish"}
    assert all(us > 0 for us in result["stages"].values())
    inline = sum(us for stage, us in result["stages"].items() if stage != "classify")
    assert result["baseline"] == pytest.approx(inline, abs=0.05)
    assert result["step_protocol"] == pytest.approx(
        result["guardstream"] - result["baseline"], abs=0.02
    )
    assert result["peer_work"] > 0
    # Both partitioners timed over the verdicts' keys (the run fails if they disagree).
    assert result["partitioner"].keys() == {"kafka_python", "guardstream"}
    assert all(us > 0 for us in result["partitioner"].values())
    # The chain again with its threads on one CPU, and the difference it makes.
    assert result["guardstream_one_cpu"] > 0
    assert result["cross_core"] == pytest.approx(
        result["guardstream"] - result["guardstream_one_cpu"], abs=0.02
    )
    assert os.sched_getaffinity(0) == cpus  # this thread's CPUs are restored


@pytest.mark.integration
def test_overhead_on_both_drivers(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run(capsys, "overhead", "--events", "40", "--driver", "both")
    assert result["driver"] == "confluent"
    rows = result["rows"]
    for driver in ("kafka-python", "confluent"):
        assert rows[f"guardstream {driver}"]["verdicts"] == 40, rows
        assert rows[f"guardstream {driver}"]["dead_letters"] == 0, rows
        assert rows[f"raw {driver} echo"]["outputs"] == 40, rows
        assert rows[f"guardstream {driver}"]["events_per_s"] > 0


def test_engine_skips_cleanly_without_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = _run(capsys, "engine")
    assert "no CUDA" in result["skipped"]


@pytest.mark.slow
def test_engine_dry_run_on_cpu(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The GPU benchmark's code path on a tiny config (the 11B's would not fit a test)."""
    from worker.engine import write_tiny_model

    config = write_tiny_model(tmp_path / "tiny", "vision") / "config.json"
    result = _run(
        capsys,
        "engine",
        *("--device", "cpu", "--dtype", "float32", "--config", str(config)),
        *("--requests", "2", "--baseline-requests", "1", "--batch-size", "2"),
    )
    assert set(result["cases"]) == {"1_tile_safe", "1_tile_unsafe", "4_tile_safe", "4_tile_unsafe"}
    for case in result["cases"].values():
        assert case["guardstream_rps"] > 0 and case["baseline_rps"] > 0
        assert case["tflop_per_request"] >= 0


@pytest.mark.slow
def test_categories(capsys: pytest.CaptureFixture[str], tiny_model_path: str) -> None:
    result = _run(
        capsys,
        "categories",
        *("--model", tiny_model_path, "--requests", "2", "--batch-size", "2", "--repeats", "1"),
    )
    assert set(result["cases"]) == {"image_rows", "text_only_rows"}
    assert result["batches_per_run"] == 1
    for case in result["cases"].values():
        assert case["guardstream_rps"] > 0 and case["baseline_rps"] > 0
        assert case["step_ms_per_batch"] > 0
        assert case["step_fraction_of_rest_of_batch"] > 0


@pytest.mark.slow
def test_text_engine_only(capsys: pytest.CaptureFixture[str]) -> None:
    from worker.lab import cached_tiny_model

    model = str(cached_tiny_model("text"))
    result = _run(
        capsys,
        "text",
        *("--model", model, "--requests", "6", "--batch-size", "3", "--repeats", "1"),
        *("--worker-events", "0"),
    )
    assert result["requests"] == 6 and "worker" not in result
    assert result["guardstream"] > 0 and result["baseline"] > 0 and result["ratio"] > 0
    assert 0 < result["prefix_share"] < 1 and result["prefix_lengths"] == [144]
    assert result["max_abs_logit_diff"] < 1e-4
    assert result["verdicts_and_categories_identical"] is True


@pytest.mark.integration
@pytest.mark.slow
def test_text_through_the_worker(capsys: pytest.CaptureFixture[str]) -> None:
    from worker.lab import cached_tiny_model

    model = str(cached_tiny_model("text"))
    result = _run(
        capsys,
        "text",
        *("--model", model, "--requests", "2", "--batch-size", "2", "--repeats", "1"),
        *("--worker-events", "6"),
    )
    worker = result["worker"]
    assert worker["verdicts"] == {"guardstream": 6, "baseline": 6}
    assert worker["dead_letters"] == {"guardstream": 0, "baseline": 0}
    assert worker["prefix_cache_size"] == 16
    assert worker["verdicts_identical"] is True and worker["max_abs_score_diff"] < 1e-4
