"""ServiceSelector cutover: traffic moves by pinning the Service's selector; old pods go only after.

With `strategy.cutover: ServiceSelector` the operator keeps the key `fastrollout.io/revision` in the
Service's selector. While a new version starts, the key names the stable revision, so the new pods
stay out of the Service however many are Ready. The cutover is one patch setting it to the target
revision: the EndpointSlice controller swaps every endpoint in one reconcile, so the cutover costs the
same at 100 pods as at 4,000. The old pods are deleted only once no endpoint routes to them
(TrafficStopped) plus PROPAGATION_MARGIN_SECONDS, so SIGTERM reaches only pods that no longer get new
connections; with `rollbackWindowSeconds` they stay Running and Ready, out of the Service, that much
longer, and applying their template again switches the selector back at once (they are the target,
Ready, at full size: the gate passes on the first pass).

The key is the only thing written to the Service, by a JSON merge patch of that key. Not server-side
apply: core/v1 declares `spec.selector` an atomic map, so an apply of one key replaces the whole
selector (checked on the test bed), where a merge patch sets or removes exactly that key.

Level-triggered: the key is re-asserted whenever it differs from what this pass wants (someone removed
it, or a write was lost); a Service that also routes to pods that are not the fleet's is never pinned,
since the pin would cut those pods off; with `cutover: Delete` the key is removed.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from fastrollout.api import Cutover, FastRolloutSpec, FastRolloutStatus
from fastrollout.plan import reasons
from fastrollout.plan.clock import from_text, to_text
from fastrollout.plan.fleet import Fleet, RevisionState
from fastrollout.plan.model import Action, AddFinalizer, PinService, RemoveFinalizer, Rollout, UnpinService
from fastrollout.plan.service import pod_labels
from fastrollout.plan.surge import ready_threshold

# Between TrafficStopped (the API shows no endpoint of the old pods) and their deletion: the time
# kube-proxy takes to apply that change. Measured on the test bed's real node (kube-proxy
# minSyncPeriod 1 s): propagation lag p50 0.49 s, p90 0.90 s, max 0.99 s over 17,782 requests.
# Status stores whole seconds, so the margin counts from the stamp's second and is 1-2 s in effect.
PROPAGATION_MARGIN_SECONDS = 2


def by_selector(spec: FastRolloutSpec) -> bool:
    return spec.service_name is not None and spec.strategy.cutover is Cutover.SERVICE_SELECTOR


def out_of_service(spec: FastRolloutSpec, revisions: Iterable[RevisionState]) -> tuple[RevisionState, ...]:
    """The revisions that may be removed now: all of them with cutover Delete; with ServiceSelector
    only those no endpoint routes to, so SIGTERM reaches no pod that still gets new connections (one
    the Service still routes to, just after a switch from Delete, leaves it by the pin first; at
    replicas 0 there is no pin to wait for)."""
    chosen = tuple(revisions)
    if not by_selector(spec) or spec.replicas == 0:
        return chosen
    return tuple(r for r in chosen if r.pods.serving == 0)


def switchable(fleet: Fleet, spec: FastRolloutSpec, name: str) -> bool:
    """The Service exists, selects the target's pods once the pin names their revision, and routes to
    nothing that is not this FastRollout's."""
    service, target = fleet.service, fleet.target
    if service is None or not service.found or service.strangers:
        return False
    return service.selects_any_revision(pod_labels(spec, name, target.revision, target.version))


def not_switchable(fleet: Fleet, spec: FastRolloutSpec, name: str, threshold: int) -> tuple[str, str] | None:
    """(Progressing reason, message) when enough new pods are Ready but the selector cannot be
    switched to them; None when it can, or when too few are Ready for it to matter yet."""
    service, target = fleet.service, fleet.target
    if service is None or target.pods.ready < threshold or switchable(fleet, spec, name):
        return None
    counts = f"{target.pods.ready} pod(s) of version {target.version} Ready (cutover needs {threshold})"
    if not service.found:
        return (
            reasons.NEW_PODS_NOT_IN_SERVICE,
            f"{service.describe()}: {counts}; create the Service or fix spec.serviceName",
        )
    if service.strangers:
        return (
            reasons.SERVICE_SHARED,
            f"{service.describe()} also routes to {service.strangers} pod(s) that are not this "
            f"FastRollout's: pinning its selector to one revision would cut them off, so "
            f"strategy.cutover ServiceSelector is refused; give the fleet a Service of its own or use "
            f"cutover Delete ({counts})",
        )
    template = ",".join(f"{key}={value}" for key, value in sorted(spec.template_labels().items()))
    return (
        reasons.NEW_PODS_NOT_IN_SERVICE,
        f"{service.describe()} does not select the pods of version {target.version} (template labels "
        f"{template}) even with its fastrollout.io/revision key set to their revision: {counts}",
    )


def pinned_to_target(fleet: Fleet) -> bool:
    """The Service is pinned to the target: only the cutover does that, so the target has cut over,
    even when the status write that recorded it was lost. A cutover is never undone by the target's
    pods failing later: the version that took the traffic is not "failed", and rolling back would
    be a new decision."""
    service = fleet.service
    return service is not None and service.found and service.pinned == fleet.target.revision


def pin(fleet: Fleet, spec: FastRolloutSpec, name: str, *, cut_over: bool) -> tuple[Action, ...]:
    """The action that makes the Service's pin what this pass wants, or nothing when it already is
    or when moving it would take serving pods out of the Service.

    Wanted: the target once it has cut over, else the stable revision (so new pods stay out while
    they start), else nothing (a first rollout has no other version to keep the Service on). Never
    pinned while the Service also routes to other pods: that would cut them off. The pin moves (or is
    put back after someone removed it) only to pods that can carry the load: to the target when its
    Ready pods reach the cutover threshold and the Service selects them, to the stable revision when
    its pods behind the Service alone serve `replicas` (after a switch from Delete mid-rollout the new
    pods may be carrying the traffic: pinning the stable one then would cut them off).
        stable v1 serving 10/10, target v2 starting, key removed by someone -> pin v1 again
        target v2 10/10 Ready, cut over this pass                          -> pin v2
        target v2 cut over, key removed, v2 crash-looping (3 Ready)          -> no pin (warm v1 serves)
        target v2 cut over, key removed, scaling up (3 Ready), nothing else   -> pin v2
    """
    service = fleet.service
    if service is None or not service.found or service.strangers:
        return ()
    if cut_over:
        target = fleet.target
        ready = target.pods.ready >= ready_threshold(spec.replicas, spec.strategy.min_ready_percent)
        # Short of the threshold the pin goes back only when no other version serves meanwhile.
        carried = ready or not any(r.pods.capacity for r in fleet.others)
        if service.pinned == target.revision or not carried or not switchable(fleet, spec, name):
            return ()
        return (PinService(service=service.name, revision=target.revision),)
    stable = fleet.stable
    if stable is None or service.pinned == stable.revision or stable.pods.capacity < spec.replicas:
        return ()
    return (PinService(service=service.name, revision=stable.revision),)


def with_finalizer(rollout: Rollout, actions: tuple[Action, ...]) -> tuple[Action, ...]:
    """AddFinalizer before the first pin, when the FastRollout does not carry it yet."""
    if rollout.finalized or not any(isinstance(a, PinService) for a in actions):
        return actions
    return (AddFinalizer(), *actions)


def release(rollout: Rollout, fleet: Fleet) -> tuple[Action, ...]:
    """Without ServiceSelector (cutover Delete, or the FastRollout being deleted): the pin goes, then
    the finalizer. Nothing when neither is there.

    While the finalizer is held the unpin is sent whether or not the cached Service shows the pin:
    a Service watch that lags the pin set a moment ago must not let the finalizer go with the pin
    left behind (removing an absent key changes nothing, and a missing Service answers 404, which
    counts as done)."""
    service = fleet.service
    pinned = service is not None and service.found and service.pinned is not None
    name = rollout.spec.service_name if service is None else service.name
    unpin = (UnpinService(service=name),) if name is not None and (pinned or rollout.finalized) else ()
    return unpin + ((RemoveFinalizer(),) if rollout.finalized else ())


def window_end(spec: FastRolloutSpec, before: FastRolloutStatus, target: str) -> datetime | None:
    """When the old versions may go: TrafficStopped of this target plus the margin and the rollback
    window. None until TrafficStopped is stamped for this target."""
    return end_after(spec, before.traffic_stopped_at if before.revision == target else None)


def end_after(spec: FastRolloutSpec, traffic_stopped_at: str | None) -> datetime | None:
    stopped = from_text(traffic_stopped_at)
    if stopped is None:
        return None
    return stopped + timedelta(seconds=PROPAGATION_MARGIN_SECONDS + spec.strategy.rollback_window_seconds)


def expired(
    others: tuple[RevisionState, ...], end: datetime | None, now: datetime
) -> tuple[RevisionState, ...]:
    """The old revisions to delete now: all of them once the window has ended, and only those with no
    endpoint routing to them (a pin the EndpointSlice controller has not applied yet keeps them)."""
    if end is None or now < end:
        return ()
    return tuple(r for r in others if r.active and r.pods.serving == 0)


def window_text(
    spec: FastRolloutSpec, traffic_stopped_at: str | None, others: tuple[RevisionState, ...]
) -> str:
    """What the status message adds while old versions are kept warm: which, and until when (from
    this pass's TrafficStopped stamp, so the pass that stamps it says it too)."""
    warm = [r.version for r in others if r.active and r.pods.serving == 0]
    end = end_after(spec, traffic_stopped_at)
    if end is None or not warm or spec.strategy.rollback_window_seconds == 0:
        return ""
    return (
        f"; version {', '.join(warm)} kept warm, out of the Service, for rollback until {to_text(end)}"
        " (apply its template to switch back at once)"
    )
