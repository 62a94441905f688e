"""Has a FastRollout reached a milestone? Pure: one FastRollout object (a dict from the API) in.

Only a status written for the object's current generation counts: right after an edit the stored
status still describes the previous template, and reading "Complete" there would end a CI job before
its rollout even started (kubectl rollout status checks observedGeneration for the same reason).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastrollout.plugin.args import EXIT_FAILED, EXIT_REACHED

FAILED_PHASES = ("Failed", "RolledBack")
_CONDITION = {"traffic-stopped": "TrafficStopped", "drained": "Drained"}


@dataclass(frozen=True)
class Verdict:
    """exit_code: None while waiting, else EXIT_REACHED or EXIT_FAILED. line: what to show now."""

    exit_code: int | None
    line: str


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def condition_true(status: Mapping[str, Any], kind: str) -> bool:
    return any(
        _dict(c).get("type") == kind and _dict(c).get("status") == "True"
        for c in status.get("conditions") or []
    )


def judge(obj: Mapping[str, Any], until: str) -> Verdict:
    """Reached, failed, or still waiting (with a one-line progress).

    until "traffic-stopped": condition TrafficStopped True (no old pod can receive new traffic);
    until "drained": condition Drained True (no old pod runs). Failed or RolledBack ends the wait
    with EXIT_FAILED whatever the milestone: that version will not be retried until the template changes.
    """
    metadata, spec, status = _dict(obj.get("metadata")), _dict(obj.get("spec")), _dict(obj.get("status"))
    name = metadata.get("name", "")
    generation = metadata.get("generation")
    observed = status.get("observedGeneration")
    if not isinstance(observed, int) or (isinstance(generation, int) and observed < generation):
        return Verdict(
            None, f"fastrollout {name}: waiting for the operator to observe generation {generation}"
        )
    line = progress_line(obj)
    phase = status.get("phase")
    if phase in FAILED_PHASES:
        return Verdict(EXIT_FAILED, f"{line}: {status.get('message') or phase}")
    if condition_true(status, _CONDITION[until]):
        return Verdict(EXIT_REACHED, f"{line}: {_CONDITION[until]}")
    if spec.get("paused"):
        return Verdict(None, f"{line} (paused)")
    return Verdict(None, line)


def progress_line(obj: Mapping[str, Any]) -> str:
    """`fastrollout web: version v2 Progressing, 7/10 updated Ready, old serving 10, draining 0`."""
    metadata, spec, status = _dict(obj.get("metadata")), _dict(obj.get("spec")), _dict(obj.get("status"))
    versions = [_dict(v) for v in status.get("versions") or []]
    target = status.get("version")
    ready = sum(int(v.get("readyReplicas") or 0) for v in versions if v.get("version") == target)
    return (
        f"fastrollout {metadata.get('name', '')}: version {target} {status.get('phase') or 'Pending'}, "
        f"{ready}/{spec.get('replicas', 1)} new Ready, old serving {status.get('oldServingReplicas') or 0}, "
        f"draining {status.get('drainingReplicas') or 0}"
    )
