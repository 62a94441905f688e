"""maxSurge below 100%: the rollout goes in waves, never exceeds replicas + surge pods and never has
fewer than `replicas` Ready pods, checked at every pod change the API delivered."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import (
    Fleet,
    fleet_manifest,
    is_ready,
    is_terminating,
    recording,
    revision,
)

if TYPE_CHECKING:
    from conftest import Testbed


def counts(pods: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """(Ready non-terminating pods, non-terminating pods)."""
    live = [p for p in pods.values() if not is_terminating(p)]
    return sum(1 for p in live if is_ready(p)), len(live)


def test_max_surge_25_percent_rolls_in_waves_without_losing_capacity(testbed: Testbed, fleet: Fleet) -> None:
    replicas, surge = 20, 5  # 25% of 20
    fleet.apply(
        fleet_manifest(
            replicas=replicas, version="v1", drain_seconds=5, start_delay="2", strategy={"maxSurge": "25%"}
        )
    )
    fleet.wait_complete("v1", timeout=90)
    (rs1,) = fleet.replica_sets()
    rev1 = revision(rs1)
    testbed.wait_for(
        lambda: counts({p["metadata"]["name"]: p for p in fleet.pods()}) == (replicas, replicas),
        timeout=30,
        message="20 Ready pods of v1",
    )

    with (
        recording(testbed, fleet.namespace, "pods") as pods,
        recording(testbed, fleet.namespace, "replicasets") as replica_sets,
    ):
        fleet.patch({"version": "v2"})
        fleet.wait_complete("v2", timeout=120)

    # Capacity at every pod change: never below replicas Ready, never above replicas + surge running.
    samples = [(seen, *counts(state)) for seen, state in pods.snapshots()]
    assert len(samples) > 2 * replicas, f"only {len(samples)} pod changes recorded"
    low = min(samples, key=lambda s: s[1])
    assert low[1] >= replicas, f"Ready pods dropped to {low[1]} at {low[0].type} of {low[0].name}"
    high = max(samples, key=lambda s: s[2])
    assert high[2] <= replicas + surge, f"{high[2]} pods running at {high[0].type} of {high[0].name}"

    # Waves: the new ReplicaSet starts at the surge and grows step by step; the old one shrinks.
    new_name = next(s.name for s in replica_sets.events() if revision(s.obj) != rev1)
    new_sizes = _distinct([s.obj["spec"]["replicas"] for s in replica_sets.events() if s.name == new_name])
    old_sizes = _distinct(
        [s.obj["spec"]["replicas"] for s in replica_sets.events() if revision(s.obj) == rev1]
    )
    assert new_sizes[0] == surge, f"new ReplicaSet sizes {new_sizes}"
    assert new_sizes[-1] == replicas
    assert new_sizes == sorted(new_sizes), f"new ReplicaSet shrank: {new_sizes}"
    assert len(new_sizes) >= 3, f"not in waves: new ReplicaSet sizes {new_sizes}"
    assert all(b - a <= surge for a, b in itertools.pairwise(new_sizes)), new_sizes
    assert old_sizes[0] == replicas
    assert old_sizes[-1] == 0
    assert old_sizes == sorted(old_sizes, reverse=True), f"old ReplicaSet grew: {old_sizes}"
    assert len(old_sizes) >= 3, f"old ReplicaSet not shrunk in waves: {old_sizes}"

    fleet.wait_drained("v2", timeout=60)


def _distinct(values: list[int]) -> list[int]:
    """The values without consecutive repeats."""
    out: list[int] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out
