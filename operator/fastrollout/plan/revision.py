"""Revisions: the template hash, the names derived from it, and the pod template a new ReplicaSet gets.

Names come from a hash of what the pods will run, so a retried create after a crash names the same
ReplicaSet ("make the name deterministic", as the Deployment controller does with pod-template-hash).
"""

import copy
import hashlib
import json
from typing import Any

from fastrollout.api import LABEL_NAME, LABEL_REVISION, LABEL_VERSION, FastRolloutSpec

REVISION_LENGTH = 10
DRAIN_ENV = "FASTROLLOUT_DRAIN_SECONDS"
DRAIN_MARGIN_SECONDS = 2
"""Left to the worker to log why and exit before the kubelet's SIGKILL."""


def revision_of(spec: FastRolloutSpec) -> str:
    """First 10 hex characters of sha256 over the canonical JSON of (template, version, drain).

    Drain enters as its *effective* values (preStop sleep and the resolved grace period), not as the
    `Drain` model: a field added to the API later must not change every revision and roll every fleet
    on an operator upgrade, and two specs that render identical pods share one revision.
    """
    return hashlib.sha256(revision_source(spec).encode()).hexdigest()[:REVISION_LENGTH]


def revision_source(spec: FastRolloutSpec) -> str:
    """The canonical JSON the revision hashes. The ReplicaSet keeps it (annotation ANNOTATION_SOURCE),
    so an undo can put exactly these spec fields back and land on the same revision and ReplicaSet."""
    payload = {
        "template": spec.template,
        "version": spec.version,
        "drain": {
            "preStopSleepSeconds": spec.drain.pre_stop_sleep_seconds,
            "terminationGracePeriodSeconds": spec.termination_grace_period_seconds(),
        },
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def replica_set_name(name: str, revision: str) -> str:
    return f"{name}-{revision}"


def version_of(spec: FastRolloutSpec, revision: str) -> str:
    """The target's version label: the human one, else the revision itself."""
    return spec.version or revision


def render_pod_template(spec: FastRolloutSpec, name: str, revision: str) -> dict[str, Any]:
    """The pod template of the target's ReplicaSet: the user's template plus what draining needs.

    Adds the three fastrollout.io labels, sets terminationGracePeriodSeconds to the drain bound, and
    gives every entry of `containers` without a preStop of its own a native sleep preStop (Kubernetes
    1.30+), so endpoints stop routing before SIGTERM. Every such entry also gets `FASTROLLOUT_DRAIN_SECONDS`,
    the time it has after SIGTERM (see `drain_seconds`), unless its `env` already names it. Init and
    ephemeral containers are left alone: they do not serve requests. The input is deep-copied, never
    mutated. The revision hashes the spec, not this rendering, so what is added here never rolls a fleet.
    """
    template: dict[str, Any] = copy.deepcopy(spec.template)
    metadata = template.get("metadata") or {}
    template["metadata"] = metadata
    metadata["labels"] = {
        **spec.template_labels(),
        LABEL_NAME: name,
        LABEL_VERSION: version_of(spec, revision),
        LABEL_REVISION: revision,
    }
    pod_spec = template.get("spec") or {}
    template["spec"] = pod_spec
    grace = spec.termination_grace_period_seconds()
    pod_spec["terminationGracePeriodSeconds"] = grace
    sleep = spec.drain.pre_stop_sleep_seconds
    for container in pod_spec.get("containers") or []:
        lifecycle = container.get("lifecycle") or {}
        injected = 0
        if sleep > 0 and not lifecycle.get("preStop"):
            container["lifecycle"] = {**lifecycle, "preStop": {"sleep": {"seconds": sleep}}}
            injected = sleep
        env = container.get("env") or []
        if not any(isinstance(var, dict) and var.get("name") == DRAIN_ENV for var in env):
            container["env"] = [*env, {"name": DRAIN_ENV, "value": str(drain_seconds(grace, injected))}]
    return template


def drain_seconds(grace: int, pre_stop_sleep: int) -> int:
    """Seconds a worker has after SIGTERM: the grace period less the preStop sleep and a margin.

    The grace period counts from deletion, preStop included, and the kubelet kills at its end. A
    container with a preStop of its own (length unknown here) gets `pre_stop_sleep` 0: grace less margin.
        grace 600, injected preStop 5:  600 - 5 - 2 = 593
        grace 30, own preStop:          30 - 0 - 2  = 28
        grace 3, injected preStop 2:    3 - 2 - 2   = -1  ->  1 (the floor)
    """
    return max(1, grace - pre_stop_sleep - DRAIN_MARGIN_SECONDS)
