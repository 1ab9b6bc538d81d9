"""The README's policy example is examples/policy.toml, verbatim, and it validates."""

from __future__ import annotations

from pathlib import Path

from policy_helpers import EXAMPLE

from worker.policy import parse_policy

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_is_the_example_file() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- policy-example:start -->") + len("<!-- policy-example:start -->")
    block = text[start : text.index("<!-- policy-example:end -->")].strip()
    assert block.startswith("```toml\n") and block.endswith("\n```")
    example = block.removeprefix("```toml\n").removesuffix("```")
    assert example == EXAMPLE.read_text(encoding="utf-8"), (
        "README policy example is stale: paste examples/policy.toml between the markers"
    )
    assert set(parse_policy(example.encode(), source="README").tenants) == {"kids", "adult-forum"}
