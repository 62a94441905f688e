"""FastRollout objects as the API server would hand them to a GitOps tool, one per phase.

Each status is what the planner writes for a named table case of test_plan_decide.py (so the samples
follow the planner when it changes), put in an object at metadata.generation 3 like those cases'.
Two samples are built by hand: a spec change the operator has not observed yet, and an object no pass
has written a status for.
"""

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.unit.plan.test_plan_decide import CASES, run

GENERATION = 3  # the generation run() gives every case

# sample name -> the table case whose plan's status it carries
FROM_CASES = {
    "progressing": "first-rollout-creates-target-at-full-size",
    "paused": "paused-mid-wave-takes-no-action",
    "complete": "first-rollout-complete-when-ready",
    "failed": "first-rollout-failure-has-nothing-to-roll-back-to",
    "rolled-back": "deadline-exceeded-rolls-back",
}


def _object(status: dict[str, Any] | None, generation: int) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "fastrollout.io/v1alpha1",
        "kind": "FastRollout",
        "metadata": {"name": "w", "namespace": "ns", "generation": generation},
        "spec": {"replicas": 10},
    }
    if status is not None:
        obj["status"] = status
    return json.loads(json.dumps(obj))  # plain JSON types, as they come off the wire


def samples() -> dict[str, dict[str, Any]]:
    """Sample name -> FastRollout object."""
    out: dict[str, dict[str, Any]] = {}
    for sample, case_name in FROM_CASES.items():
        plan, _ = run(next(c for c in CASES if c.name == case_name))
        out[sample] = _object(plan.status.to_wire(), GENERATION)
    # Complete at generation 3, then `kubectl apply` of a new template: generation 4, not seen yet.
    out["generation-not-observed"] = _object(out["complete"]["status"], GENERATION + 1)
    # Just created: the operator has not written any status.
    out["no-status-yet"] = _object(None, 1)
    return out
