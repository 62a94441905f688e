"""The traffic gate's explanation: why Ready new pods are not behind the Service, in words.

The gate itself is arithmetic (`RevisionPods.capacity` counts only pods with a ready endpoint); this
module says why it holds, naming the Service and the labels it selects on, so the person reading
`kubectl get fr` can fix the Service or the template rather than wait for the deadline.
"""

from fastrollout.api import LABEL_NAME, LABEL_REVISION, LABEL_VERSION, FastRolloutSpec
from fastrollout.plan.fleet import Fleet
from fastrollout.plan.surge import ready_threshold


def pod_labels(spec: FastRolloutSpec, name: str, revision: str, version: str) -> dict[str, str]:
    """The labels the target's pods carry (render_pod_template sets the same)."""
    return {**spec.template_labels(), LABEL_NAME: name, LABEL_VERSION: version, LABEL_REVISION: revision}


def misconfigured(fleet: Fleet, spec: FastRolloutSpec, name: str) -> bool:
    """The Service is missing or does not select the target's pods: certain to hold the cutover for
    ever, unlike endpoints that only lag (the EndpointSlice controller publishes a Ready pod within
    about a second), which must not raise an alarm on every rollout."""
    service, target = fleet.service, fleet.target
    if service is None:
        return False
    return not service.found or not service.selects(pod_labels(spec, name, target.revision, target.version))


def not_behind_service(fleet: Fleet, spec: FastRolloutSpec, name: str) -> str | None:
    """Why enough new pods are Ready but too few have a ready endpoint in the Service; None when the
    gate does not hold them back (no Service, not enough Ready pods yet, or enough behind it).

        10/10 Ready, Service selects app=w-old, pods carry app=w -> "... does not select ..."
    """
    service, target = fleet.service, fleet.target
    threshold = ready_threshold(spec.replicas, spec.strategy.min_ready_percent)
    if service is None or target.pods.ready < threshold or target.pods.capacity >= threshold:
        return None
    counts = (
        f"{target.pods.ready} pod(s) of version {target.version} Ready, "
        f"{target.pods.capacity} with a ready endpoint in it (cutover needs {threshold})"
    )
    if not service.found:
        return f"{service.describe()}: {counts}; create the Service or fix spec.serviceName"
    labels = pod_labels(spec, name, target.revision, target.version)
    if not service.selects(labels):
        template = ",".join(f"{key}={value}" for key, value in sorted(spec.template_labels().items()))
        return (
            f"{service.describe()} does not select the pods of version {target.version} "
            f"(template labels {template}): {counts}"
        )
    return f"{service.describe()}: {counts}; check that its targetPort names a port the pods expose"
