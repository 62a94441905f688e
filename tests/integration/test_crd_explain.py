"""`kubectl explain` on the real API server prints the CRD's descriptions, so a user can look up any
field of a FastRollout without the repository at hand. Expected texts come from the committed CRD."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Testbed

CRD = Path(__file__).resolve().parents[2] / "crds" / "fastrollout.io_fastrollouts.yaml"
SCHEMA: dict[str, Any] = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def node(path: str) -> dict[str, Any]:
    """The schema node of a dotted path below the root ("spec.strategy"); list items are transparent."""
    found = SCHEMA
    for part in path.split("."):
        if "items" in found:
            found = found["items"]
        found = found["properties"][part]
    return found


def flat(text: str) -> str:
    # kubectl wraps and indents descriptions to the terminal width.
    return " ".join(text.split())


def explain(testbed: Testbed, wait_for: Callable[..., Any], path: str, expected: list[str]) -> str:
    """`kubectl explain fastrollout.<path>`, polled until it shows every expected text: the API server
    publishes a changed CRD's OpenAPI a moment after it is Established."""

    def shown() -> str | None:
        out = flat(testbed.kubectl("explain", f"fastrollout.{path}").stdout)
        return out if all(flat(text) in out for text in expected) else None

    result: str = wait_for(shown, timeout=60, interval=1, message=f"kubectl explain fastrollout.{path}")
    return result


def test_explain_strategy_describes_the_block_and_each_field(
    testbed: Testbed, crd: None, wait_for: Callable[..., Any]
) -> None:
    strategy = node("spec.strategy")
    fields = strategy["properties"]
    assert set(fields) >= {"maxSurge", "minReadyPercent"}
    expected = [strategy["description"], *(field["description"] for field in fields.values())]
    out = explain(testbed, wait_for, "spec.strategy", expected)
    assert "GROUP: fastrollout.io" in out
    assert all(f"{name} <" in out for name in fields)


@pytest.mark.parametrize(
    "path",
    [
        "spec",
        "spec.selector.matchLabels",
        "spec.selector.matchExpressions.operator",
        "spec.template.spec.containers",
        "spec.drain.preStopSleepSeconds",
        "status.versions.servingReplicas",
        "status.conditions.lastTransitionTime",
        "status.trafficStoppedAt",
    ],
)
def test_explain_prints_the_description(
    testbed: Testbed, crd: None, wait_for: Callable[..., Any], path: str
) -> None:
    explain(testbed, wait_for, path, [node(path)["description"]])


def test_explain_shows_the_condition_status_enum(
    testbed: Testbed, crd: None, wait_for: Callable[..., Any]
) -> None:
    out = explain(
        testbed, wait_for, "status.conditions.status", [node("status.conditions.status")["description"]]
    )
    assert "ENUM" in out
    assert all(value in out for value in ("True", "False", "Unknown"))
