"""Shared pieces of the rollout integration tests (tests/integration/test_rollout_*.py).

Test modules import this file by path (``sys.path``), as tests/unit does with bench/; its fixtures
(``crd_fixture`` is the fixture ``crd``, and so on) are registered by conftest.py. Everything here reads the cluster the way a user would: kubectl, or a
plain list+watch of the API (the ``Recorder``), never the operator's internals.

- ``crd`` (module): the FastRollout CRD applied and Established.
- ``rollout_operator``: the operator as a real process, scoped to the test's namespace, with its own
  metrics and health ports; returned once its child watches have started. ``operator_metric`` reads
  one sample of its /metrics.
- ``Fleet``: one FastRollout in the test's namespace: apply, patch, read status/ReplicaSets/pods/
  events/EndpointSlices, wait for a status condition.
- ``Recorder``: every version of every object of one kind in the namespace, as the API's watch
  delivered them, with arrival times; for "first time it was seen", "never below", "never twice".
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client, config, watch
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from conftest import OperatorProcess, Testbed

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"

GROUP, VERSION, PLURAL = "fastrollout.io", "v1alpha1", "fastrollouts"
LABEL_NAME = "fastrollout.io/name"
LABEL_VERSION = "fastrollout.io/version"
LABEL_REVISION = "fastrollout.io/revision"
IMAGE = "registry.invalid/fastrollout/worker:1"  # never pulled: kwok runs no containers
COLUMNS = ["NAME", "VERSION", "DESIRED", "READY", "UPDATED", "OLD-SERVING", "DRAINING", "PHASE", "AGE"]


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", name="crd")
def crd_fixture(testbed: Testbed) -> None:
    """The CRD as the repository renders it (server-side apply: other modules apply the same file)."""
    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    testbed.kubectl("wait", "--for=condition=Established", "crd/fastrollouts.fastrollout.io", "--timeout=60s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_operator(operator_process: Callable[..., OperatorProcess], namespace: str) -> OperatorProcess:
    op = operator_process(
        "--namespace",
        namespace,
        "--metrics-port",
        str(free_port()),
        "--health-port",
        str(free_port()),
    )
    op.wait_for_log(r"started \d+ child watches", timeout=60)
    return op


def operator_metric(op: OperatorProcess, name: str, **labels: str) -> float | None:
    """One sample of the operator's /metrics, on the port it was started with; None when absent."""
    port = op.command[op.command.index("--metrics-port") + 1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


@pytest.fixture(name="rollout_operator")
def rollout_operator_fixture(
    crd: None, namespace: str, operator_process: Callable[..., OperatorProcess]
) -> OperatorProcess:
    """One operator for this test's namespace (others run their own for theirs)."""
    return start_operator(operator_process, namespace)


# --------------------------------------------------------------------------------------------- manifests


def fleet_manifest(
    name: str = "w",
    *,
    replicas: int = 10,
    version: str = "v1",
    drain_seconds: float | None = 20,
    start_delay: str | None = None,
    never_ready: bool = False,
    grace: int = 60,
    pre_stop: int = 1,
    **spec: Any,
) -> dict[str, Any]:
    """A FastRollout of kwok pods. The selector is given explicitly (app=<name>), so template labels
    such as fastrollout.test/never-ready can change between versions."""
    labels = {"app": name}
    if never_ready:
        labels["fastrollout.test/never-ready"] = "true"
    annotations: dict[str, str] = {}
    if drain_seconds is not None:
        annotations["fastrollout.test/drain-seconds"] = str(drain_seconds)
    if start_delay is not None:
        annotations[START_DELAY] = start_delay
    body: dict[str, Any] = {
        "replicas": replicas,
        "version": version,
        "selector": {"matchLabels": {"app": name}},
        "drain": {"preStopSleepSeconds": pre_stop, "terminationGracePeriodSeconds": grace},
        "template": {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": {
                "nodeSelector": {"type": "kwok"},
                "containers": [
                    {"name": "worker", "image": IMAGE, "ports": [{"name": "http", "containerPort": 8080}]}
                ],
            },
        },
    }
    body.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FastRollout",
        "metadata": {"name": name},
        "spec": body,
    }


START_DELAY = "fastrollout.test/start-delay"


def slow_version(version: str, start_delay: int) -> dict[str, Any]:
    """Spec patch to `version` whose new pods turn Ready `start_delay` s after scheduling (kwok), so a
    test can act while the rollout is in flight. `Fleet.patch` merges it: other annotations stay."""
    return {"version": version, "template": {"metadata": {"annotations": {START_DELAY: str(start_delay)}}}}


def service_manifest(name: str = "w", *, publish_not_ready: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            "publishNotReadyAddresses": publish_not_ready,
        },
    }


# --------------------------------------------------------------------------------------------- reading


def is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


def is_terminating(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def revision(obj: dict[str, Any]) -> str:
    return str((obj["metadata"].get("labels") or {}).get(LABEL_REVISION, ""))


def version_of(obj: dict[str, Any]) -> str:
    return str((obj["metadata"].get("labels") or {}).get(LABEL_VERSION, ""))


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in status.get("conditions") or []:
        if c["type"] == ctype:
            return dict(c)
    return {}


def is_true(status: dict[str, Any], ctype: str) -> bool:
    return condition(status, ctype).get("status") == "True"


@dataclass
class Fleet:
    """One FastRollout in a test namespace, read and changed through kubectl."""

    bed: Testbed
    namespace: str
    name: str = "w"
    manifest: dict[str, Any] = field(default_factory=dict)

    # changes
    def apply(self, manifest: dict[str, Any] | None = None) -> None:
        if manifest is not None:
            self.manifest = copy.deepcopy(manifest)
            self.name = manifest["metadata"]["name"]
        self.bed.kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps(self.manifest))

    def patch(self, spec: dict[str, Any]) -> None:
        """Merge-patch the spec (and keep ``manifest`` in step)."""
        _merge(self.manifest.setdefault("spec", {}), copy.deepcopy(spec))
        self.bed.kubectl(
            "patch", f"fr/{self.name}", "-n", self.namespace, "--type=merge", "-p", json.dumps({"spec": spec})
        )

    def kubectl(self, *args: str, **kwargs: Any) -> str:
        return self.bed.kubectl(*args, "-n", self.namespace, **kwargs).stdout

    # reads
    def get(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.bed.kubectl_json("get", f"fr/{self.name}", "-n", self.namespace)
        return obj

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.get().get("status") or {}
        return status

    def replica_sets(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.bed.kubectl_json(
            "get", "replicasets", "-n", self.namespace, "-l", f"{LABEL_NAME}={self.name}"
        )["items"]
        return items

    def replica_set(self, revision_: str) -> dict[str, Any] | None:
        return next((rs for rs in self.replica_sets() if revision(rs) == revision_), None)

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.bed.kubectl_json(
            "get", "pods", "-n", self.namespace, "-l", f"app={self.name}"
        )["items"]
        return items

    def endpoint_slices(self, service: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.bed.kubectl_json(
            "get", "endpointslices", "-n", self.namespace, "-l", f"kubernetes.io/service-name={service}"
        )["items"]
        return items

    def events(self) -> list[dict[str, Any]]:
        """Events posted on this FastRollout, oldest first."""
        items: list[dict[str, Any]] = self.bed.kubectl_json(
            "get",
            "events",
            "-n",
            self.namespace,
            "--field-selector",
            f"involvedObject.kind=FastRollout,involvedObject.name={self.name}",
        )["items"]
        return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def event_reasons(self) -> list[str]:
        return [e["reason"] for e in self.events()]

    def table(self) -> list[list[str]]:
        """``kubectl get fr NAME`` as printed: header row and the object's row, split on whitespace."""
        out = self.kubectl("get", "fr", self.name)
        return [line.split() for line in out.strip().splitlines()]

    # waits
    def wait_status(
        self, predicate: Callable[[dict[str, Any]], Any], timeout: float = 60, message: str = ""
    ) -> dict[str, Any]:
        """Poll the status until ``predicate(status)`` is truthy; returns that status."""
        seen: list[dict[str, Any]] = []

        def check() -> dict[str, Any] | None:
            status = self.status()
            seen[:] = [status]
            return status if predicate(status) else None

        try:
            result: dict[str, Any] = self.bed.wait_for(check, timeout=timeout, interval=0.2, message=message)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nlast status: {json.dumps(seen[-1] if seen else None, indent=1)}"
            ) from None
        return result

    def wait_complete(self, version: str, timeout: float = 60) -> dict[str, Any]:
        """Phase Complete for ``version`` (TrafficStopped True) at the spec's current generation."""

        def done(s: dict[str, Any]) -> bool:
            return (
                s.get("phase") == "Complete"
                and s.get("version") == version
                and s.get("observedGeneration") == self.get()["metadata"]["generation"]
                and is_true(s, "TrafficStopped")
            )

        return self.wait_status(done, timeout, f"{self.name} Complete at version {version}")

    def wait_drained(self, version: str, timeout: float = 90) -> dict[str, Any]:
        return self.wait_status(
            lambda s: (
                s.get("version") == version and is_true(s, "Drained") and s.get("drainingReplicas") == 0
            ),
            timeout,
            f"{self.name} Drained at version {version}",
        )


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif value is None:
            into.pop(key, None)
        else:
            into[key] = value


@pytest.fixture(name="fleet")
def fleet_fixture(testbed: Testbed, namespace: str, rollout_operator: OperatorProcess) -> Fleet:
    """A FastRollout handle in the test's namespace, with the operator running."""
    return Fleet(testbed, namespace)


# --------------------------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class Seen:
    """One object version as the watch delivered it: monotonic arrival time, event type, object."""

    t: float
    type: str  # LISTED (the initial list), ADDED, MODIFIED, DELETED
    obj: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


class Recorder:
    """Records every version of one kind of object in a namespace: a list, then a watch from it.

    ``snapshots()`` replays the record: the namespace's objects after each delivered change, so a
    property can be checked at every state the API went through, not only at polling instants.
    """

    def __init__(self, bed: Testbed, namespace: str, kind: str, label_selector: str = "") -> None:
        self.namespace = namespace
        self.kind = kind
        self.label_selector = label_selector
        self.seen: list[Seen] = []
        self.error: BaseException | None = None
        self._api = config.new_client_from_config(config_file=str(bed.kubeconfig))  # type: ignore[no-untyped-call]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{kind}", daemon=True)
        self._listed = threading.Event()

    def _list_fn(self) -> Callable[..., Any]:
        core, apps = client.CoreV1Api(self._api), client.AppsV1Api(self._api)
        discovery, custom = client.DiscoveryV1Api(self._api), client.CustomObjectsApi(self._api)
        if self.kind == "pods":
            return core.list_namespaced_pod
        if self.kind == "replicasets":
            return apps.list_namespaced_replica_set
        if self.kind == "endpointslices":
            return discovery.list_namespaced_endpoint_slice
        if self.kind == "fastrollouts":

            def list_fr(namespace: str, **kw: Any) -> Any:
                return custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, **kw)

            list_fr.__doc__ = "list :return: object"
            return list_fr
        raise ValueError(self.kind)

    def _run(self) -> None:
        fn = self._list_fn()
        try:
            rv = self._relist(fn)
            self._listed.set()
            while not self._stop.is_set():
                w = watch.Watch()  # type: ignore[no-untyped-call]
                try:
                    for event in w.stream(  # type: ignore[no-untyped-call]
                        fn,
                        self.namespace,
                        label_selector=self.label_selector,
                        resource_version=rv,
                        timeout_seconds=2,
                        allow_watch_bookmarks=True,
                        deserialize=False,
                    ):
                        obj = event["object"]
                        rv = obj["metadata"]["resourceVersion"]
                        if event["type"] == "BOOKMARK":
                            continue
                        with self._lock:
                            self.seen.append(Seen(time.monotonic(), event["type"], obj))
                        if self._stop.is_set():
                            w.stop()  # type: ignore[no-untyped-call]
                except KeyError as exc:
                    # The client raises KeyError('raw_object') on an ERROR event when deserialize is off:
                    # the resourceVersion expired (410, e.g. after a CRD update restarted the watch
                    # cache). Re-list: harmless if nothing changed meanwhile, a gap (error) otherwise.
                    if exc.args != ("raw_object",):
                        raise
                    rv = self._relist(fn)
        except BaseException as exc:  # reported by check()
            self.error = exc
            self._listed.set()

    def _relist(self, fn: Callable[..., Any]) -> str:
        """List; the first time, record every object as LISTED. After an expired watch, an object whose
        resourceVersion differs from the last one recorded changed unwatched: that is a gap in the
        record, and a test reading it could miss a state, so it fails the recorder."""
        resp = fn(self.namespace, label_selector=self.label_selector, _preload_content=False)
        body = json.loads(resp.data)
        now = time.monotonic()
        with self._lock:
            if not self.seen:
                self.seen.extend(Seen(now, "LISTED", item) for item in body["items"])
            else:
                state: dict[str, dict[str, Any]] = {}
                for seen in self.seen:
                    if seen.type == "DELETED":
                        state.pop(seen.name, None)
                    else:
                        state[seen.name] = seen.obj
                rv_of = {n: o["metadata"].get("resourceVersion") for n, o in state.items()}
                now_rv = {i["metadata"]["name"]: i["metadata"].get("resourceVersion") for i in body["items"]}
                if rv_of != now_rv:
                    raise AssertionError(
                        f"recorder of {self.kind}: objects changed while the watch had expired"
                    )
        return str(body["metadata"]["resourceVersion"])

    def start(self) -> Recorder:
        self._thread.start()
        if not self._listed.wait(30):
            raise AssertionError(f"recorder of {self.kind}: initial list took more than 30 s")
        self.check()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"recorder of {self.kind} failed: {self.error!r}")

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    # reading the record
    def events(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def snapshots(self) -> Iterator[tuple[Seen, dict[str, dict[str, Any]]]]:
        """(change, objects by name after it), for each change after the initial list."""
        state: dict[str, dict[str, Any]] = {}
        for seen in self.events():
            if seen.type == "DELETED":
                state.pop(seen.name, None)
            else:
                state[seen.name] = seen.obj
            if seen.type != "LISTED":
                yield seen, state

    def first(self, predicate: Callable[[dict[str, Any]], bool]) -> Seen | None:
        return next((s for s in self.events() if predicate(s.obj)), None)


@contextlib.contextmanager
def recording(bed: Testbed, namespace: str, kind: str, label_selector: str = "") -> Iterator[Recorder]:
    rec = Recorder(bed, namespace, kind, label_selector).start()
    try:
        yield rec
    finally:
        rec.stop()
