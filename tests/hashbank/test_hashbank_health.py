"""/readyz waits for the hash bank follower."""

from __future__ import annotations

from worker.health import HealthState


def test_not_ready_until_the_bank_caught_up() -> None:
    caught_up = [False]
    state = HealthState(model_loaded=True, consuming=True, hash_bank_ready=lambda: caught_up[0])
    state.broker_ok()
    assert state.ready() == (False, "hash bank not caught up")
    caught_up[0] = True
    assert state.ready() == (True, "ok")
    assert HealthState(model_loaded=True, consuming=True, hash_bank_ready=None).ready()[1] != (
        "hash bank not caught up"
    )
