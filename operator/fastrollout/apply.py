"""Carries a `Plan` out against the API: the status patch first, then the events, then each action.

Thin on purpose (STYLE.md 1): every decision was made by the planner; this module only spells the
calls. Outcomes that mean "already done" (AlreadyExists on create of a ReplicaSet we own, NotFound on
delete/scale) count as success, so re-running a plan after a restart or a missed event is harmless.
A call the API refuses comes back as an `ApiFailure` for the handler to record (status + one event).

The blocking `kubernetes` client runs in worker threads (`asyncio.to_thread`) so the event loop and
kopf stay responsive while a 4,000-pod collection delete is in flight.
"""

import asyncio
import functools
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fastrollout.api import (
    ANNOTATION_SOURCE,
    API_VERSION,
    FINALIZER,
    GROUP,
    KIND,
    LABEL_NAME,
    LABEL_REVISION,
    LABEL_VERSION,
    PLURAL,
    VERSION,
    FastRolloutStatus,
)
from fastrollout.plan import reasons
from fastrollout.plan.errors import ApiFailure
from fastrollout.plan.model import (
    Action,
    AddFinalizer,
    CreateReplicaSet,
    DeletePods,
    DeleteReplicaSet,
    Event,
    PinService,
    Plan,
    RemoveFinalizer,
    ScaleReplicaSet,
    UnpinService,
)

logger = logging.getLogger(__name__)

HTTP_NOT_FOUND, HTTP_CONFLICT = 404, 409
REQUEST_SECONDS = 30.0
# The API server deletes a collection in one request: 4,000 pods take 5-9 s (notes/watch-scale.md).
DELETE_COLLECTION_SECONDS = 300.0
# Collection deletes run on threads of their own. Everything else (GET, status patch, event, create,
# scale) uses asyncio's default executor: min(32, cpus + 4) = 6 threads on 2 cores. Six FastRollouts
# each in a 5-15 s DeleteCollection would hold all six, and every other FastRollout's pass would queue
# behind them. Here slow deletes queue only behind each other. Four at once is plenty: concurrent
# collection deletes share the same etcd write rate (two writes per pod), so more threads would not
# finish them sooner.
DELETE_COLLECTION_WORKERS = 4
_collection_deletes = ThreadPoolExecutor(DELETE_COLLECTION_WORKERS, thread_name_prefix="delete-collection")
KILL_AFTER_ENV = "FASTROLLOUT_TEST_KILL_AFTER"
EVENT_MESSAGE_LIMIT = 1024  # the API rejects longer event messages
COMPONENT = "fastrollout"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# The field manager of every write that names one (the Service's pin, the FastRollout's finalizer).
FIELD_MANAGER = "fastrollout"
DELETE_IN_BACKGROUND = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}


@dataclass(frozen=True)
class Target:
    """The FastRollout a plan is for: what owner references and events point at."""

    namespace: str
    name: str
    uid: str


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch turning `old` into `new`; empty when they are equal.

    Keys only in `old` become null (removed); nested objects are diffed; lists are replaced whole.
        merge_patch({"a": 1, "b": {"c": 1, "d": 2}}, {"b": {"c": 1, "d": 3}}) == {"a": None, "b": {"d": 3}}
    """
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif key not in old or before != value:
            patch[key] = value
    return patch


def status_patch(current: Mapping[str, Any] | None, status: FastRolloutStatus) -> dict[str, Any]:
    """The status patch to write, or {} when the stored status already says the same."""
    return merge_patch(current or {}, status.to_wire())


def replica_set_body(target: Target, action: CreateReplicaSet) -> dict[str, Any]:
    """The ReplicaSet for one revision. Its selector is (name, revision): exactly the pods the
    collection delete of `DeletePods` removes, and never another revision's."""
    ours = {LABEL_NAME: target.name, LABEL_VERSION: action.version, LABEL_REVISION: action.revision}
    template = dict(action.template)
    metadata = dict(template.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **ours}
    template["metadata"] = metadata
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": action.name,
            "namespace": target.namespace,
            "labels": ours,
            **({"annotations": {ANNOTATION_SOURCE: action.source}} if action.source else {}),
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "name": target.name,
                    "uid": target.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": action.replicas,
            "selector": {"matchLabels": {LABEL_NAME: target.name, LABEL_REVISION: action.revision}},
            "template": template,
        },
    }


def pods_selector(target: Target, revision: str) -> str:
    return f"{LABEL_NAME}={target.name},{LABEL_REVISION}={revision}"


def event_body(target: Target, event: Event, now: datetime) -> dict[str, Any]:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{target.name}.", "namespace": target.namespace},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": target.name,
            "namespace": target.namespace,
            "uid": target.uid,
        },
        "reason": event.reason,
        "message": event.message[:EVENT_MESSAGE_LIMIT],
        "type": "Warning" if event.warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": f"{GROUP}/operator",
        "reportingInstance": socket.gethostname(),
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def _ignore(error: ApiException, *statuses: int) -> None:
    if error.status not in statuses:
        raise error


def api_message(error: ApiException) -> str:
    """The API's own message (the Status object's `message`), else the HTTP reason phrase."""
    try:
        body = json.loads(error.body or "")
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or error.reason or "refused")


def failure_reason(action: Action) -> str:
    match action:
        case CreateReplicaSet():
            return reasons.FAILED_CREATE
        case ScaleReplicaSet():
            return reasons.FAILED_SCALE
        case DeletePods() | DeleteReplicaSet():
            return reasons.FAILED_DELETE
        case PinService() | UnpinService() | AddFinalizer() | RemoveFinalizer():
            return reasons.FAILED_UPDATE


def pin_patch(revision: str | None) -> dict[str, Any]:
    """The merge patch that sets (or, with None, removes) the one selector key the operator owns.

    A merge patch, not server-side apply: core/v1 declares the Service's spec.selector an atomic map,
    so an apply of this one key would replace the user's whole selector."""
    return {"spec": {"selector": {LABEL_REVISION: revision}}}


def finalizer_apply(target: Target, present: bool) -> dict[str, Any]:
    """Server-side apply of the FastRollout's metadata.finalizers as this field manager owns it.

    finalizers is a set-typed list: an apply adds or removes only our own entry and leaves the other
    owners' entries alone, with no read-modify-write race (a merge patch replaces the whole list)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": target.name,
            "namespace": target.namespace,
            "finalizers": [FINALIZER] if present else [],
        },
    }


class NotLeaderError(Exception):
    """A write was refused locally: this replica does not hold the lease (or its renew deadline passed)."""


def always() -> bool:
    """The fence without leader election: one replica, always allowed to write."""
    return True


class CollisionError(Exception):
    """A ReplicaSet with the name we derive exists, and this FastRollout does not control it."""


@dataclass(frozen=True)
class Applied:
    """What one `Applier.apply` did: whether it wrote the status, and the refused action, if any."""

    written: bool
    failure: ApiFailure | None = None


class Applier:
    """Executes plans. One instance per operator; safe to use from concurrent reconciles.

    Requests go through the client's transport with dict bodies, not its typed methods: the typed
    models reject fields they do not know (a pod template written for a newer Kubernetes would fail)
    and decoding a 4,000-pod DeleteCollection response into models costs seconds of CPU.
    """

    def __init__(self, api: client.ApiClient, fence: Callable[[], bool] = always) -> None:
        self._api = api
        # Checked right before every write (leader.Elector.may_write with leader election): a replica
        # that lost, or cannot renew, the lease sends nothing more, whatever pass it is in.
        self._fence = fence
        # Fault injection for the integration tests (never set in the chart): SIGKILL this process
        # right after the first action of this type succeeds, e.g. DeletePods: "crash mid-cutover".
        self._kill_after = os.environ.get(KILL_AFTER_ENV, "")

    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = REQUEST_SECONDS,
    ) -> bytes:
        """One API call with a JSON body; returns the raw answer (callers that need it decode it),
        raises ApiException on a non-2xx answer, NotLeaderError when the fence is down (checked last,
        just before the request is sent; the ownership GET of a create is part of that write). Blocking."""
        params = self._api.param_serialize(
            method,
            path,
            query_params=dict(query or {}),
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        if not self._fence():
            raise NotLeaderError(f"{method} {path}: not the leader")
        response = self._api.call_api(*params, _request_timeout=timeout)
        data: bytes = response.read()  # type: ignore[no-untyped-call]  # also frees the connection
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return data

    async def apply(self, target: Target, plan: Plan, current_status: Mapping[str, Any] | None) -> Applied:
        """Writes the status if it changed, posts the events, then runs the actions in order.

        Status first (durability): the decision a pass makes, above all "cut over to T" (status
        stableRevision), is stored before any action makes it true. A crash, or a status write that
        fails (it raises: no action runs), can then never leave old pods deleted while the stored
        status still names them stable, which would let a later failure "roll back" onto pods that
        are all terminating. The first action the API refuses (or does not answer) ends the pass and
        comes back as `Applied.failure`; the rest wait for the next, re-planned, pass.
        """
        written = await self.write_status(target, current_status, plan.status)
        now = plan.now or datetime.now(UTC)
        for event in plan.events:
            await self.post_event(target, event, now)
        loop = asyncio.get_running_loop()
        for action in plan.actions:
            executor = _collection_deletes if isinstance(action, DeletePods) else None  # None: the default
            try:
                await loop.run_in_executor(executor, self._act, target, action)
                if type(action).__name__ == self._kill_after:
                    logger.warning("%s set: killing the operator after %s", KILL_AFTER_ENV, _describe(action))
                    os.kill(os.getpid(), signal.SIGKILL)
            except ApiException as error:
                failure = ApiFailure(
                    _describe(action), failure_reason(action), error.status or 0, api_message(error)
                )
                return Applied(written, failure)
            except CollisionError as error:
                return Applied(
                    written, ApiFailure(_describe(action), reasons.REPLICA_SET_COLLISION, 409, str(error))
                )
            except (urllib3.exceptions.HTTPError, OSError) as error:  # no answer: timeout, reset
                return Applied(written, ApiFailure(_describe(action), failure_reason(action), 0, str(error)))
        return Applied(written)

    def _act(self, target: Target, action: Action) -> None:
        if not self._fence():  # also before the log line: a logged action is a sent one
            raise NotLeaderError(f"{_describe(action)}: not the leader")
        logger.info("%s/%s: %s", target.namespace, target.name, _describe(action))
        replica_sets = f"/apis/apps/v1/namespaces/{target.namespace}/replicasets"
        try:
            match action:
                case CreateReplicaSet():
                    self._request("POST", replica_sets, replica_set_body(target, action))
                case ScaleReplicaSet(name=name, replicas=replicas):
                    self._request(
                        "PATCH",
                        f"{replica_sets}/{name}",
                        {"spec": {"replicas": replicas}},
                        content_type=MERGE_PATCH,
                    )
                case DeletePods(revision=revision):
                    # ONE DeleteCollection call: the API server deletes every matching pod itself.
                    self._request(
                        "DELETE",
                        f"/api/v1/namespaces/{target.namespace}/pods",
                        query={"labelSelector": pods_selector(target, revision)},
                        timeout=DELETE_COLLECTION_SECONDS,
                    )
                case DeleteReplicaSet(name=name):
                    self._request("DELETE", f"{replica_sets}/{name}", DELETE_IN_BACKGROUND)
                case PinService() | UnpinService():
                    self._request(
                        "PATCH",
                        f"/api/v1/namespaces/{target.namespace}/services/{action.service}",
                        pin_patch(action.revision if isinstance(action, PinService) else None),
                        query={"fieldManager": FIELD_MANAGER},
                        content_type=MERGE_PATCH,
                    )
                case AddFinalizer() | RemoveFinalizer():
                    self._request(
                        "PATCH",
                        f"/apis/{GROUP}/{VERSION}/namespaces/{target.namespace}/{PLURAL}/{target.name}",
                        finalizer_apply(target, present=isinstance(action, AddFinalizer)),
                        query={"fieldManager": FIELD_MANAGER, "force": "true"},
                        content_type=APPLY_PATCH,
                    )
        except ApiException as error:
            if isinstance(action, CreateReplicaSet):
                _ignore(error, HTTP_CONFLICT)
                self._check_owned(target, replica_sets, action.name)
            else:
                _ignore(error, HTTP_NOT_FOUND)  # already gone: the next snapshot will show it

    def _check_owned(self, target: Target, replica_sets: str, name: str) -> None:
        """After AlreadyExists: ours (made by an earlier pass the watch has not shown yet) is success;
        anybody else's is a collision to report, never to retry in silence."""
        found = self._get(f"{replica_sets}/{name}")
        metadata = found.get("metadata") or {}
        owners = metadata.get("ownerReferences") or []
        controller = next((o for o in owners if isinstance(o, dict) and o.get("controller")), None)
        if controller is not None and controller.get("uid") == target.uid:
            return
        holder = f"{controller.get('kind')} {controller.get('name')}" if controller else "no controller"
        raise CollisionError(
            f"ReplicaSet {name} already exists and is controlled by {holder}, not by FastRollout "
            f"{target.name} (uid {target.uid}): delete or rename it; the operator will not adopt it"
        )

    def _get(self, path: str) -> dict[str, Any]:
        """One GET, decoded. Blocking."""
        found: dict[str, Any] = json.loads(self._request("GET", path))
        return found

    async def post_event(self, target: Target, event: Event, now: datetime) -> None:
        """Posts one event; a failure is logged, never fatal (events are best effort in Kubernetes too)."""
        path = f"/api/v1/namespaces/{target.namespace}/events"
        try:
            await asyncio.to_thread(self._request, "POST", path, event_body(target, event, now))
        except ApiException as error:
            logger.warning(
                "%s/%s: event %s not posted: %s", target.namespace, target.name, event.reason, error
            )

    async def write_status(
        self, target: Target, current: Mapping[str, Any] | None, status: FastRolloutStatus
    ) -> bool:
        """One merge patch of the status subresource, only if it differs from `current`."""
        patch = status_patch(current, status)
        if not patch:
            return False
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{target.namespace}/{PLURAL}/{target.name}/status"
        try:
            await asyncio.to_thread(
                functools.partial(self._request, "PATCH", path, {"status": patch}, content_type=MERGE_PATCH)
            )
        except ApiException as error:
            _ignore(error, HTTP_NOT_FOUND)  # deleted meanwhile
            return False
        return True


def _describe(action: Action) -> str:
    """The action for a log line, without the (long) pod template."""
    if isinstance(action, CreateReplicaSet):
        return f"CreateReplicaSet({action.name}, revision={action.revision}, replicas={action.replicas})"
    return repr(action)
