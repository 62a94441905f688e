"""The status one pass writes: counts from observation, decisions from the pass, in a fixed order.

Nothing here reads the clock except through `now`, and nothing varies between two passes over the same
input, so apply.py can compare and skip a no-op write.
"""

from dataclasses import replace
from datetime import datetime

from fastrollout.api import FastRolloutSpec, FastRolloutStatus, VersionStatus
from fastrollout.plan import conditions, reasons, selector
from fastrollout.plan.clock import to_text
from fastrollout.plan.conditions import Traffic
from fastrollout.plan.fleet import Fleet, RevisionState
from fastrollout.plan.model import Rollout
from fastrollout.plan.outcome import Outcome
from fastrollout.plan.progress import Clock
from fastrollout.plan.surge import ready_threshold


def build_status(
    rollout: Rollout, fleet: Fleet, outcome: Outcome, when: Clock, now: datetime
) -> FastRolloutStatus:
    spec, before = rollout.spec, rollout.status
    target = fleet.target
    everyone = (target, *fleet.others)
    traffic = Traffic(
        old_serving=sum(r.pods.serving for r in fleet.others),
        old_pods=sum(r.pods.replicas + r.pods.draining for r in fleet.others),
        cut_over=outcome.cut_over,
    )
    stable = target if outcome.cut_over else fleet.stable
    ready = sum(r.pods.ready for r in everyone)
    threshold = ready_threshold(spec.replicas, spec.strategy.min_ready_percent)
    phase = conditions.phase_of(outcome, traffic, spec.complete_when)
    rolling = f"version {target.version}: {target.pods.ready}/{spec.replicas} new pod(s) Ready, cutover at {threshold}"
    progressing = conditions.progressing(phase, outcome, traffic, target.version, rolling)
    same_target = before.revision == target.revision
    now_text = to_text(now)
    traffic_stopped_at = _once(same_target, before.traffic_stopped_at, traffic.stopped, now_text)
    if outcome.by_selector and outcome.failure is None:
        note = selector.window_text(spec, traffic_stopped_at, fleet.others)
        progressing = replace(progressing, message=progressing.message + note)
    verdicts = (
        (reasons.PROGRESSING, progressing),
        (reasons.AVAILABLE, conditions.available(ready, threshold)),
        (reasons.TRAFFIC_STOPPED, conditions.traffic_stopped(traffic)),
        (reasons.DRAINED, conditions.drained(traffic)),
        (reasons.RECONCILING, conditions.reconciling(phase, progressing)),
        (reasons.STALLED, conditions.stalled(phase, progressing)),
    )
    foreign = sum(r.pods.foreign for r in everyone)
    failure = conditions.replica_failure(foreign, before.conditions, now_text, rollout.generation)
    return FastRolloutStatus(
        observed_generation=rollout.generation,
        conditions=[
            *(
                conditions.condition(t, v, before.conditions, now_text, rollout.generation)
                for t, v in verdicts
            ),
            *([failure] if failure is not None else []),
        ],
        phase=phase,
        replicas=sum(r.pods.replicas for r in everyone),
        ready_replicas=ready,
        updated_replicas=target.pods.replicas,
        old_serving_replicas=traffic.old_serving,
        draining_replicas=sum(r.pods.draining for r in everyone),
        versions=_versions(fleet, stable),
        version=target.version,
        stable_version=stable.version if stable is not None else None,
        selector=selector_text(spec),
        rollout_started_at=to_text(when.started_at),
        traffic_stopped_at=traffic_stopped_at,
        drained_at=_once(same_target, before.drained_at, traffic.drained, now_text),
        revision=target.revision,
        stable_revision=stable.revision if stable is not None else None,
        failed_revision=target.revision
        if outcome.failure is not None or before.failed_revision == target.revision
        else None,
        message=progressing.message,
    )


def selector_text(spec: FastRolloutSpec) -> str:
    """The label selector in kubectl's string form, requirements sorted by key.

    {matchLabels: {app: w}, matchExpressions: [{key: tier, operator: In, values: [b, a]}]}
        -> "app=w,tier in (a,b)"
    """
    selector = spec.selector
    labels = spec.template_labels() if selector is None else (selector.match_labels or {})
    parts = [(key, f"{key}={value}") for key, value in labels.items()]
    for requirement in (selector.match_expressions or []) if selector is not None else []:
        key, values = requirement.key, ",".join(sorted(requirement.values or []))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }[requirement.operator]
        parts.append((key, text))
    return ",".join(text for _, text in sorted(parts, key=lambda part: part[0]))


def _versions(fleet: Fleet, stable: RevisionState | None) -> list[VersionStatus]:
    """One entry per revision with pods or a non-zero ReplicaSet: target, then stable, then the rest."""
    stable_first = sorted(fleet.others, key=lambda r: stable is None or r.revision != stable.revision)
    return [
        VersionStatus(
            version=r.version,
            revision=r.revision,
            replica_set=r.replica_set.name if r.replica_set else "",
            replicas=r.pods.replicas,
            ready_replicas=r.pods.ready,
            serving_replicas=r.pods.serving,
            draining_replicas=r.pods.draining,
        )
        for r in (fleet.target, *stable_first)
        if r.pods.replicas or r.pods.draining or r.size
    ]


def _once(same_target: bool, before: str | None, now_true: bool, now_text: str) -> str | None:
    """A timestamp set the first time its condition holds for this target, then kept."""
    if same_target and before:
        return before
    return now_text if now_true else None
