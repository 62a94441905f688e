"""What the cluster shows for each FastRollout: shared child watches feeding one cache.

`Observer` runs one list+watch per child kind (ReplicaSets, pods, EndpointSlices) per watched scope,
shared by every FastRollout, and answers `snapshot(namespace, name, spec)` from memory.

    observer = Observer(api_client, namespaces=None, wake=on_change)   # None: all namespaces
    observer.start()
    observer.synced_for("workers")  # True once every list covering that namespace is in: never plan
                                    # from a half-filled cache; other namespaces do not wait for it
    observer.health()        # each watch's WatchHealth: for the readiness endpoint and the metrics
    observer.snapshot("workers", "bank-workers", spec)  # -> plan.model.Observed
"""

from collections.abc import Sequence
from typing import Any

from kubernetes import client

from fastrollout.api import LABEL_NAME, FastRolloutSpec
from fastrollout.observe.cache import ChildCache, WakeFn
from fastrollout.observe.records import (
    SERVICE_NAME_LABEL,
    parse_endpoint_slice,
    parse_pod,
    parse_replica_set,
    parse_service,
)
from fastrollout.observe.traffic import TrafficJudge
from fastrollout.observe.watch import Kind, ListWatch, WatchHealth
from fastrollout.plan.model import Observed

__all__ = ["ChildCache", "Observer", "TrafficJudge", "WatchHealth"]


class Observer:
    def __init__(self, api: client.ApiClient, namespaces: Sequence[str] | None, wake: WakeFn) -> None:
        self.cache = ChildCache(wake)
        core, apps, discovery = client.CoreV1Api(api), client.AppsV1Api(api), client.DiscoveryV1Api(api)
        pods = Kind("pods", core.list_pod_for_all_namespaces, core.list_namespaced_pod, LABEL_NAME, parse_pod)
        replica_sets = Kind(
            "replicasets",
            apps.list_replica_set_for_all_namespaces,
            apps.list_namespaced_replica_set,
            LABEL_NAME,
            parse_replica_set,
        )
        # Only slices that belong to a Service; the operator cannot know in advance which Services
        # FastRollouts will name, so it watches all of them (slices are ~100 endpoints each).
        slices = Kind(
            "endpointslices",
            discovery.list_endpoint_slice_for_all_namespaces,
            discovery.list_namespaced_endpoint_slice,
            SERVICE_NAME_LABEL,
            parse_endpoint_slice,
        )
        # Services, for what spec.serviceName selects on (the traffic gate names it when the new pods
        # are not behind it). Few and small: all of them, no selector.
        services = Kind(
            "services", core.list_service_for_all_namespaces, core.list_namespaced_service, "", parse_service
        )
        scopes: Sequence[str | None] = list(namespaces) if namespaces else [None]
        self._watches: list[ListWatch[Any]] = []
        for scope in scopes:
            self._watches.append(ListWatch(replica_sets, scope, self.cache.replica_sets))
            self._watches.append(ListWatch(pods, scope, self.cache.pods))
            self._watches.append(ListWatch(slices, scope, self.cache.slices))
            self._watches.append(ListWatch(services, scope, self.cache.services))

    @property
    def watch_count(self) -> int:
        return len(self._watches)

    def start(self) -> None:
        for watch in self._watches:
            watch.start()

    def stop(self) -> None:
        for watch in self._watches:
            watch.stop()
        for watch in self._watches:
            watch.join(timeout=2)

    @property
    def synced(self) -> bool:
        """Every watch's first list is in (all scopes)."""
        return all(watch.synced.is_set() for watch in self._watches)

    def synced_for(self, namespace: str) -> bool:
        """Every watch covering `namespace` (its own, or a cluster-wide one) has its first list in.

        Per scope, so a namespace the operator cannot list (a 403 after its Role was removed) holds
        back only its own FastRollouts. No covering watch at all: False, not an empty cache.
        """
        covering = [watch for watch in self._watches if watch.namespace in (None, namespace)]
        return bool(covering) and all(watch.synced.is_set() for watch in covering)

    def current_for(self, namespace: str) -> bool:
        """`synced_for`, and no covering watch is failing (`WatchHealth.current`): the cache is being
        kept up to date now, not only filled once. With leader election a leader plans only then, so
        after an API server outage it does not act on what its caches held before it."""
        covering = [watch for watch in self._watches if watch.namespace in (None, namespace)]
        return bool(covering) and all(watch.health().current for watch in covering)

    def health(self) -> list[WatchHealth]:
        return [watch.health() for watch in self._watches]

    @property
    def threads_alive(self) -> bool:
        """Every watch thread runs (a watch thread ends only when stopped: anything else is a bug)."""
        return all(watch.alive for watch in self._watches)

    def snapshot(self, namespace: str, name: str, spec: FastRolloutSpec, uid: str) -> Observed:
        return self.cache.snapshot(namespace, name, spec, uid)

    def track(self, namespace: str, name: str, service: str | None) -> None:
        self.cache.track(namespace, name, service)

    def forget(self, namespace: str, name: str) -> None:
        self.cache.forget(namespace, name)
