"""The few fields of each child object the planner uses, parsed from the API's raw JSON.

Watch events arrive as dicts; each is cut down at once to a small frozen record so the cache holds
~100 bytes per pod instead of the full object (a pod's JSON is 3-8 KB). Parsing is pure and total: a
field that is missing or malformed reads as its safe default, and an object without the labels we
need parses to None (the watch's label selector should already have excluded it).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastrollout.api import LABEL_NAME, LABEL_REVISION, LABEL_VERSION
from fastrollout.plan.clock import from_text

SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# A container waiting for one of these reasons will not start without a change to the template or the
# cluster: the rollout should fail rather than wait for its progress deadline.
STUCK_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "PreCreateHookError",
        "PreStartHookError",
        "PostStartHookError",
    }
)
# Restarts at which a container counts as crashing even between two CrashLoopBackOff waits.
CRASH_RESTARTS = 3

Json = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PodRecord:
    """One pod of a FastRollout, as the planner counts it."""

    namespace: str
    fastrollout: str  # the fastrollout.io/name label
    name: str
    revision: str
    version: str
    terminating: bool  # metadata.deletionTimestamp is set
    ready: bool  # condition Ready=True
    crashing: bool  # a container is stuck (see _container_stuck)
    owner: "Owner | None" = None  # the controller ownerReference, if any


@dataclass(frozen=True, slots=True)
class Owner:
    """A controller ownerReference: who may act on the object."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class ReplicaSetRecord:
    namespace: str
    fastrollout: str
    name: str
    revision: str
    version: str
    replicas: int  # spec.replicas
    uid: str = ""
    owner: Owner | None = None  # the controller ownerReference: the FastRollout, if it is ours
    created: datetime | None = None  # metadata.creationTimestamp; None when absent or malformed


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    namespace: str
    name: str
    selector: tuple[tuple[str, str], ...]  # spec.selector, sorted by key; () selects no pod


@dataclass(frozen=True, slots=True)
class EndpointState:
    """The conditions of one endpoint, with the API's documented defaults for absent values."""

    ready: bool  # absent means true
    serving: bool  # absent means true
    terminating: bool  # absent means false


@dataclass(frozen=True, slots=True)
class EndpointSliceRecord:
    namespace: str
    name: str
    service: str  # the kubernetes.io/service-name label
    endpoints: tuple[tuple[str, EndpointState], ...]  # (pod name, conditions), pod targets only


def _dict(value: object) -> Json:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _labels(obj: Json) -> Json:
    return _dict(_dict(obj.get("metadata")).get("labels"))


def _owner_labels(obj: Json) -> tuple[str, str, str] | None:
    """(fastrollout name, revision, version) from the operator's labels, or None if any is missing."""
    labels = _labels(obj)
    name, revision = labels.get(LABEL_NAME), labels.get(LABEL_REVISION)
    if not isinstance(name, str) or not name or not isinstance(revision, str) or not revision:
        return None
    version = labels.get(LABEL_VERSION)
    return name, revision, version if isinstance(version, str) else ""


def _controller(metadata: Json) -> Owner | None:
    for raw in _list(metadata.get("ownerReferences")):
        ref = _dict(raw)
        if ref.get("controller") is True:
            return Owner(
                kind=str(ref.get("kind", "")), name=str(ref.get("name", "")), uid=str(ref.get("uid", ""))
            )
    return None


def _container_stuck(status: Json) -> bool:
    """Stuck: waiting for a reason that needs a fix, or restarted often and not ready now.

    The "not ready now" keeps a long-lived pod that restarted three times over a week from counting.
    """
    waiting = _dict(_dict(status.get("state")).get("waiting"))
    if waiting.get("reason") in STUCK_WAITING_REASONS:
        return True
    restarts = status.get("restartCount")
    return isinstance(restarts, int) and restarts >= CRASH_RESTARTS and status.get("ready") is not True


def parse_pod(obj: Json) -> PodRecord | None:
    labels = _owner_labels(obj)
    if labels is None:
        return None
    metadata = _dict(obj.get("metadata"))
    status = _dict(obj.get("status"))
    ready = any(
        _dict(condition).get("type") == "Ready" and _dict(condition).get("status") == "True"
        for condition in _list(status.get("conditions"))
    )
    containers = _list(status.get("initContainerStatuses")) + _list(status.get("containerStatuses"))
    return PodRecord(
        namespace=str(metadata.get("namespace", "")),
        fastrollout=labels[0],
        name=str(metadata.get("name", "")),
        revision=labels[1],
        version=labels[2],
        terminating=metadata.get("deletionTimestamp") is not None,
        ready=ready,
        crashing=any(_container_stuck(_dict(container)) for container in containers),
        owner=_controller(metadata),
    )


def parse_replica_set(obj: Json) -> ReplicaSetRecord | None:
    labels = _owner_labels(obj)
    if labels is None:
        return None
    metadata = _dict(obj.get("metadata"))
    replicas = _dict(obj.get("spec")).get("replicas")
    return ReplicaSetRecord(
        namespace=str(metadata.get("namespace", "")),
        fastrollout=labels[0],
        name=str(metadata.get("name", "")),
        revision=labels[1],
        version=labels[2],
        # The API defaults spec.replicas to 1 when it is left out.
        replicas=replicas if isinstance(replicas, int) else 1,
        uid=str(metadata.get("uid", "")),
        owner=_controller(metadata),
        created=_timestamp(metadata.get("creationTimestamp")),
    )


def _timestamp(value: object) -> datetime | None:
    """An RFC 3339 time as the API writes it ("2026-11-30T04:41:02Z"), in UTC; None if it is not one."""
    return from_text(value) if isinstance(value, str) else None


def parse_service(obj: Json) -> ServiceRecord | None:
    metadata = _dict(obj.get("metadata"))
    selector = _dict(_dict(obj.get("spec")).get("selector"))
    return ServiceRecord(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        selector=tuple(sorted((str(key), str(value)) for key, value in selector.items())),
    )


def _condition(conditions: Json, key: str, *, absent: bool) -> bool:
    value = conditions.get(key)
    return absent if value is None else value is True


def parse_endpoint_slice(obj: Json) -> EndpointSliceRecord | None:
    service = _labels(obj).get(SERVICE_NAME_LABEL)
    if not isinstance(service, str) or not service:
        return None
    metadata = _dict(obj.get("metadata"))
    endpoints: list[tuple[str, EndpointState]] = []
    for raw in _list(obj.get("endpoints")):
        endpoint = _dict(raw)
        target = _dict(endpoint.get("targetRef"))
        if target.get("kind") != "Pod" or not isinstance(target.get("name"), str):
            continue
        conditions = _dict(endpoint.get("conditions"))
        state = EndpointState(
            ready=_condition(conditions, "ready", absent=True),
            serving=_condition(conditions, "serving", absent=True),
            terminating=_condition(conditions, "terminating", absent=False),
        )
        endpoints.append((str(target["name"]), state))
    return EndpointSliceRecord(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        service=service,
        endpoints=tuple(endpoints),
    )
