"""The shared, thread-safe cache of every FastRollout's children, indexed so a snapshot is cheap.

Watcher threads write into it (`PodIndex`/`ReplicaSetIndex`/`SliceIndex` are their sinks); the event
loop reads `snapshot()`. Indexes:

- pods and ReplicaSets by (namespace, fastrollout name), then object name: a snapshot costs
  O(pods of that FastRollout), never O(pods in the cluster);
- EndpointSlices by (namespace, service name), then slice name;
- which FastRollouts name each Service (`track()`), so a slice change wakes exactly those.

Every change that alters a kept record calls `wake(namespace, fastrollout)`; a watch event that only
touches fields we do not keep (a pod's IP, a status heartbeat) changes nothing and wakes nobody.
Wakes run after the lock is released, on the watcher's thread: the callback must be thread-safe.
"""

import threading
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from fastrollout.api import FastRolloutSpec
from fastrollout.observe.records import (
    EndpointSliceRecord,
    EndpointState,
    PodRecord,
    ReplicaSetRecord,
    ServiceRecord,
)
from fastrollout.observe.snapshot import build_observed
from fastrollout.observe.traffic_endpoints import EndpointSliceJudge
from fastrollout.observe.traffic_pods import PodStateJudge
from fastrollout.plan.model import Observed, ServiceView

Key = tuple[str, str]  # (namespace, FastRollout name)
WakeFn = Callable[[str, str], None]


class _Named(Protocol):
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=_Named)
R_contra = TypeVar("R_contra", contravariant=True)


class Sink(Protocol[R_contra]):
    """What a watcher writes into: one kind's index."""

    def upsert(self, record: R_contra) -> None: ...
    def delete(self, namespace: str, name: str) -> None: ...
    def replace(self, namespace: str | None, records: Iterable[R_contra]) -> None: ...


class _Index(Generic[R]):
    """Records grouped by a key; `_group()` says which key a record belongs to."""

    def __init__(self, lock: threading.Lock, wake: Callable[[Iterable[Key]], None]) -> None:
        self._lock = lock
        self._wake = wake
        self.groups: dict[Key, dict[str, R]] = {}
        self._where: dict[Key, Key] = {}  # (namespace, object name) -> group

    def _group(self, record: R) -> Key:
        raise NotImplementedError

    def _keys_to_wake(self, groups: Iterable[Key]) -> set[Key]:
        return set(groups)

    def _put(self, record: R) -> set[Key]:
        """Stores one record; returns the groups it changed (old and new, if it moved)."""
        ident = (record.namespace, record.name)
        group = self._group(record)
        old_group = self._where.get(ident)
        changed: set[Key] = set()
        if old_group is not None and old_group != group:
            changed |= self._pop(ident)
        members = self.groups.setdefault(group, {})
        if members.get(record.name) != record:
            members[record.name] = record
            self._where[ident] = group
            changed.add(group)
        return changed

    def _pop(self, ident: Key) -> set[Key]:
        group = self._where.pop(ident, None)
        if group is None:
            return set()
        members = self.groups.get(group, {})
        members.pop(ident[1], None)
        if not members:
            self.groups.pop(group, None)
        return {group}

    def upsert(self, record: R) -> None:
        with self._lock:
            changed = self._put(record)
            wake = self._keys_to_wake(changed)
        self._wake(wake)

    def delete(self, namespace: str, name: str) -> None:
        with self._lock:
            wake = self._keys_to_wake(self._pop((namespace, name)))
        self._wake(wake)

    def replace(self, namespace: str | None, records: Iterable[R]) -> None:
        """After a (re)list: the records of `namespace` (None: all) become exactly `records`."""
        with self._lock:
            stale = {ident for ident in self._where if namespace is None or ident[0] == namespace}
            changed: set[Key] = set()
            for record in records:
                stale.discard((record.namespace, record.name))
                changed |= self._put(record)
            for ident in stale:
                changed |= self._pop(ident)
            wake = self._keys_to_wake(changed)
        self._wake(wake)


class PodIndex(_Index[PodRecord]):
    def _group(self, record: PodRecord) -> Key:
        return (record.namespace, record.fastrollout)


class ReplicaSetIndex(_Index[ReplicaSetRecord]):
    def _group(self, record: ReplicaSetRecord) -> Key:
        return (record.namespace, record.fastrollout)


class _ByServiceIndex(_Index[R]):
    """Grouped by (namespace, service name); a change wakes the FastRollouts that name the Service."""

    def __init__(
        self, lock: threading.Lock, wake: Callable[[Iterable[Key]], None], users: dict[Key, set[str]]
    ) -> None:
        super().__init__(lock, wake)
        self._users = users

    def _keys_to_wake(self, groups: Iterable[Key]) -> set[Key]:
        return {
            (namespace, user)
            for namespace, service in groups
            for user in self._users.get((namespace, service), ())
        }


class SliceIndex(_ByServiceIndex[EndpointSliceRecord]):
    def _group(self, record: EndpointSliceRecord) -> Key:
        return (record.namespace, record.service)

    def endpoints(self, namespace: str, service: str) -> dict[str, EndpointState]:
        """Every endpoint of the Service by pod name. A pod in several slices (dual-stack: one per
        address family) counts as ready if any of its endpoints is."""
        merged: dict[str, EndpointState] = {}
        for record in self.groups.get((namespace, service), {}).values():
            for pod, state in record.endpoints:
                seen = merged.get(pod)
                if seen is None or (state.ready and not seen.ready):
                    merged[pod] = state
        return merged


class ServiceIndex(_ByServiceIndex[ServiceRecord]):
    """Services themselves: what `spec.serviceName` selects on, for the traffic gate's message."""

    def _group(self, record: ServiceRecord) -> Key:
        return (record.namespace, record.name)

    def view(self, namespace: str, name: str) -> ServiceView:
        found = self.groups.get((namespace, name), {}).get(name)
        if found is None:
            return ServiceView(name=name, found=False)
        return ServiceView(name=name, found=True, selector=found.selector)


class ChildCache:
    """The four indexes, the Service users, and `snapshot()`."""

    def __init__(self, wake: WakeFn) -> None:
        self._lock = threading.Lock()
        self._wake_one = wake
        self._services: dict[Key, str] = {}  # FastRollout -> its spec.serviceName
        self._users: dict[Key, set[str]] = {}  # (namespace, service) -> FastRollout names
        self.pods = PodIndex(self._lock, self._wake)
        self.replica_sets = ReplicaSetIndex(self._lock, self._wake)
        self.slices = SliceIndex(self._lock, self._wake, self._users)
        self.services = ServiceIndex(self._lock, self._wake, self._users)

    def _wake(self, keys: Iterable[Key]) -> None:
        for namespace, name in keys:
            self._wake_one(namespace, name)

    def track(self, namespace: str, name: str, service: str | None) -> None:
        """Records which Service (if any) a FastRollout judges traffic by; its slices then wake it."""
        key = (namespace, name)
        with self._lock:
            old = self._services.get(key)
            if old == service:
                return
            if old is not None:
                self._drop_user(namespace, old, name)
                del self._services[key]
            if service is not None:
                self._services[key] = service
                self._users.setdefault((namespace, service), set()).add(name)

    def forget(self, namespace: str, name: str) -> None:
        self.track(namespace, name, None)

    def _drop_user(self, namespace: str, service: str, name: str) -> None:
        users = self._users.get((namespace, service), set())
        users.discard(name)
        if not users:
            self._users.pop((namespace, service), None)

    def snapshot(self, namespace: str, name: str, spec: FastRolloutSpec, uid: str) -> Observed:
        """What the cache shows for the FastRollout `uid` now. O(its pods + its Service's endpoints)."""
        self.track(namespace, name, spec.service_name)
        key = (namespace, name)
        with self._lock:
            pods = list(self.pods.groups.get(key, {}).values())
            replica_sets = list(self.replica_sets.groups.get(key, {}).values())
            if spec.service_name is None:
                return build_observed(pods, replica_sets, PodStateJudge(), uid)
            endpoints = self.slices.endpoints(namespace, spec.service_name)
            service = self.services.view(namespace, spec.service_name)
        judge = EndpointSliceJudge(endpoints)
        return build_observed(pods, replica_sets, judge, uid, service, endpoints=list(endpoints))
