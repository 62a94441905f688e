"""The benchmarks' side of the cluster: the test bed, the operator process, raw API calls, and the
watch recorder that timestamps every pod, EndpointSlice and FastRollout event on one clock.

Everything here talks to a real test bed (tests/cluster/up.sh); the numbers are computed by the pure
`bench.analysis` from what the `Recorder` stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.analysis import Fleet, Key, parse_request_totals
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

REPO = Path(__file__).resolve().parents[1]
VERSION_LABEL = "fr-bench/version"
SERVICE_LABEL = "fr-bench/bench"
GROUP, API_VERSION, PLURAL = "fastrollout.io", "v1alpha1", "fastrollouts"
MERGE_PATCH = "application/merge-patch+json"

QPS_SETTINGS: dict[str, dict[str, int]] = {
    "stock": {"KCM_QPS": 20, "KCM_BURST": 30, "SCHED_QPS": 50, "SCHED_BURST": 100},
    "raised": {"KCM_QPS": 200, "KCM_BURST": 300, "SCHED_QPS": 200, "SCHED_BURST": 300},
}


def qps_label(name: str) -> str:
    s = QPS_SETTINGS[name]
    return f"{name} (kcm {s['KCM_QPS']}/{s['KCM_BURST']}, sched {s['SCHED_QPS']}/{s['SCHED_BURST']})"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- test bed -------------------------------------------------------------------------------------------


@dataclass
class Bed:
    """One test bed instance, driven by tests/cluster/up.sh (idempotent; a changed QPS setting restarts
    only kube-controller-manager and kube-scheduler, on the same etcd and apiserver)."""

    state: str
    port_offset: int
    kwok_nodes: int = 8
    scripts: str = str(REPO / "tests/cluster")  # up.sh/down.sh; a pinned copy keeps a sweep on one version
    qps: str | None = None

    @property
    def kubeconfig(self) -> str:
        return f"{self.state}/kubeconfig"

    def env(self, qps: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({k: str(v) for k, v in QPS_SETTINGS[qps].items()})
        env["FASTROLLOUT_STATE"] = self.state
        env["FASTROLLOUT_PORT_OFFSET"] = str(self.port_offset)
        env["KWOK_NODES"] = str(self.kwok_nodes)
        return env

    def up(self, qps: str) -> None:
        if self.qps == qps:
            return
        log(f"test bed {self.state}: {qps_label(qps)}")
        subprocess.run([f"{self.scripts}/up.sh"], env=self.env(qps), check=True, stdout=subprocess.DEVNULL)
        self.qps = qps

    def down(self) -> None:
        subprocess.run(
            [f"{self.scripts}/down.sh"],
            env={**os.environ, "FASTROLLOUT_STATE": self.state},
            check=True,
        )

    def fingerprint(self) -> dict[str, str]:
        """sha256 (first 12) of the scripts and kwok stages the bed runs with."""
        out = {}
        for name in ("up.sh", "kwok-stages.yaml"):
            data = Path(f"{self.scripts}/{name}").read_bytes()
            out[name] = hashlib.sha256(data).hexdigest()[:12]
        out["scripts"] = self.scripts
        return out

    def pid(self, component: str) -> int:
        return int(Path(f"{self.state}/pids/{component}.pid").read_text().strip())


def kubectl() -> str:
    found = sorted(Path.home().glob(".cache/fastrollout/bin/*/kubectl"))
    if not found:
        raise SystemExit("kubectl not found under ~/.cache/fastrollout/bin: run tests/cluster/up.sh once")
    return str(found[-1])


# --- API -------------------------------------------------------------------------------------------------


class Api:
    """Raw JSON calls on the bed's admin credentials (no typed models: they are slow and strict)."""

    def __init__(self, kubeconfig: str) -> None:
        self.configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=self.configuration)  # type: ignore[no-untyped-call]
        self.configuration.connection_pool_maxsize = 16
        self.client = client.ApiClient(self.configuration)
        self.kubeconfig = kubeconfig

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 120.0,
    ) -> Any:
        params = self.client.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params={"Content-Type": content_type, "Accept": "application/json, */*"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.client.call_api(*params, _request_timeout=timeout)
        data = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            raise ApiException(status=response.status, reason=response.reason, http_resp=response)
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return data.decode()

    def stream(self, path: str, query: Mapping[str, str]) -> Any:
        params = self.client.param_serialize(
            "GET",
            path,
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        resp = self.client.call_api(*params, _request_timeout=(10, 600))
        if resp.status != 200:
            raise ApiException(status=resp.status, reason=resp.reason, http_resp=resp)
        return resp.response  # the urllib3 response, streamed

    def request_totals(self) -> dict[Key, float]:
        text = self.request("GET", "/metrics", timeout=60)
        return parse_request_totals(text if isinstance(text, str) else json.dumps(text))

    def server_version(self) -> str:
        v = self.request("GET", "/version")
        return str(v.get("gitVersion", "?"))

    def exists(self, path: str) -> bool:
        try:
            self.request("GET", path)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    def ensure_namespace(self, ns: str) -> None:
        with contextlib.suppress(ApiException):
            self.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        # the ServiceAccount controller makes `default`; pods cannot be created before it
        deadline = time.time() + 60
        while not self.exists(f"/api/v1/namespaces/{ns}/serviceaccounts/default"):
            if time.time() > deadline:
                raise TimeoutError(f"no default ServiceAccount in {ns}")
            time.sleep(0.2)

    def install_crd(self) -> None:
        subprocess.run(
            [
                kubectl(),
                "--kubeconfig",
                self.kubeconfig,
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                str(REPO / "crds/fastrollout.io_fastrollouts.yaml"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [
                kubectl(),
                "--kubeconfig",
                self.kubeconfig,
                "wait",
                "--for=condition=Established",
                "crd/fastrollouts.fastrollout.io",
                "--timeout=60s",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def leftover_namespaces(self, prefixes: tuple[str, ...] = ("b-", "cost-")) -> list[str]:
        body = self.request("GET", "/api/v1/namespaces")
        names = [str(item["metadata"]["name"]) for item in body.get("items") or ()]
        return [n for n in names if n.startswith(prefixes)]

    def empty_namespace(self, ns: str) -> None:
        """Removes a benchmark namespace fast: controllers first (orphaning), then every pod at once with
        grace 0 (one DeleteCollection), then the namespace."""
        orphan = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}
        # a ServiceSelector FastRollout carries a finalizer while it pins its Service: the namespace is
        # going, so drop it rather than depend on an operator being up to remove it
        with contextlib.suppress(ApiException):
            body = self.request("GET", f"/apis/{GROUP}/{API_VERSION}/namespaces/{ns}/{PLURAL}")
            for item in body.get("items") or ():
                if item["metadata"].get("finalizers"):
                    self.request(
                        "PATCH",
                        f"/apis/{GROUP}/{API_VERSION}/namespaces/{ns}/{PLURAL}/{item['metadata']['name']}",
                        {"metadata": {"finalizers": None}},
                        content_type=MERGE_PATCH,
                    )
        for path in (
            f"/apis/{GROUP}/{API_VERSION}/namespaces/{ns}/{PLURAL}",
            f"/apis/apps/v1/namespaces/{ns}/deployments",
            f"/apis/apps/v1/namespaces/{ns}/replicasets",
        ):
            with contextlib.suppress(ApiException):
                self.request("DELETE", path, orphan)
        with contextlib.suppress(ApiException):
            self.request("DELETE", f"/api/v1/namespaces/{ns}/pods", {"gracePeriodSeconds": 0}, timeout=600)
        with contextlib.suppress(ApiException):
            self.request("DELETE", f"/api/v1/namespaces/{ns}")


# --- operator process -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Operator:
    """`python -m fastrollout run` against the bed, as a child process we own (stopped by its pid)."""

    def __init__(self, kubeconfig: str, log_path: Path, namespaces: tuple[str, ...] = ()) -> None:
        self.metrics_port = free_port()
        self.health_port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "fastrollout",
            "run",
            "--kubeconfig",
            kubeconfig,
            "--metrics-port",
            str(self.metrics_port),
            "--health-port",
            str(self.health_port),
        ]
        for ns in namespaces:
            cmd += ["--namespace", ns]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.started = time.time()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.pid = self.proc.pid
        log(f"operator pid {self.pid} (log {log_path}, metrics :{self.metrics_port})")

    def healthz(self) -> dict[str, Any] | None:
        import urllib.request  # noqa: PLC0415

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as r:
                body: dict[str, Any] = json.loads(r.read() or b"{}")
                return body
        except (OSError, ValueError):
            return None

    def wait_synced(self, timeout: float = 900) -> float:
        """Seconds from the process start until its child caches report synced (kopf probe), polled every
        0.1 s."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}")
            h = self.healthz()
            if h and h.get("children_synced") is True:
                return time.time() - self.started
            time.sleep(0.1)
        raise TimeoutError("operator not synced")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime

    def rss_kib(self) -> tuple[int, int]:
        """(current RSS, peak RSS = VmHWM) in KiB."""
        rss = hwm = 0
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
        return rss, hwm

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


# --- watch recorder -------------------------------------------------------------------------------------------


def _pod_event(t: float, kind: str, obj: Mapping[str, Any]) -> list[Any] | None:
    md = obj.get("metadata") or {}
    version = (md.get("labels") or {}).get(VERSION_LABEL)
    if version is None:
        return None
    ready = False
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            ready = cond.get("status") == "True"
    return [
        "p",
        t,
        kind,
        md.get("namespace"),
        md.get("name"),
        version,
        ready,
        md.get("deletionTimestamp") is not None,
    ]


def _slice_event(t: float, kind: str, obj: Mapping[str, Any]) -> list[Any]:
    md = obj.get("metadata") or {}
    eps = []
    for ep in obj.get("endpoints") or ():
        ref = ep.get("targetRef") or {}
        if ref.get("kind") != "Pod":
            continue
        ready = (ep.get("conditions") or {}).get("ready")
        eps.append([ref.get("name"), ready is not False])  # absent means ready (API doc)
    return ["s", t, kind, md.get("namespace"), md.get("name"), eps]


PIN_KEY = "fastrollout.io/revision"  # the Service selector key of strategy.cutover ServiceSelector


def _service_event(t: float, kind: str, obj: Mapping[str, Any]) -> list[Any]:
    md = obj.get("metadata") or {}
    selector = dict((obj.get("spec") or {}).get("selector") or {})
    return ["v", t, kind, md.get("namespace"), md.get("name"), selector]


def fr_status_summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    st = obj.get("status") or {}
    stopped = any(
        c.get("type") == "TrafficStopped" and c.get("status") == "True" for c in st.get("conditions") or ()
    )
    return {
        "generation": (obj.get("metadata") or {}).get("generation"),
        "observedGeneration": st.get("observedGeneration"),
        "phase": st.get("phase"),
        "version": st.get("version"),
        "trafficStopped": stopped,
        "readyReplicas": st.get("readyReplicas"),
        "updatedReplicas": st.get("updatedReplicas"),
        "oldServingReplicas": st.get("oldServingReplicas"),
        "drainingReplicas": st.get("drainingReplicas"),
        "rolloutStartedAt": st.get("rolloutStartedAt"),
        "trafficStoppedAt": st.get("trafficStoppedAt"),
        "drainedAt": st.get("drainedAt"),
        "servingReplicas": sum(int(v.get("servingReplicas") or 0) for v in st.get("versions") or ()),
    }


def _fr_event(t: float, kind: str, obj: Mapping[str, Any]) -> list[Any]:
    md = obj.get("metadata") or {}
    return ["f", t, kind, md.get("namespace"), md.get("name"), fr_status_summary(obj)]


@dataclass
class _Watch:
    name: str
    path: str
    selector: str
    parse: Callable[[float, str, Mapping[str, Any]], list[Any] | None]


class Recorder:
    """List+watch of pods (label VERSION_LABEL), EndpointSlices and Services (label SERVICE_LABEL) and
    FastRollouts, cluster-wide, raw JSON, each event stamped with `time.time()` when its line arrives.
    Keeps a live `Fleet` per namespace, the Services' selectors (a ServiceSelector cutover is a change
    of the selector's fastrollout.io/revision key) and every event (per namespace) for the analysis."""

    def __init__(self, api: Api, watch_frs: bool = True) -> None:
        self.api = api
        self.lock = threading.Lock()
        self.events: dict[str, list[list[Any]]] = {}
        self.fleets: dict[str, Fleet] = {}
        self.frs: dict[tuple[str, str], dict[str, Any]] = {}
        self.services: dict[tuple[str, str], dict[str, str]] = {}  # (ns, name) -> spec.selector
        self.last_event: dict[str, float] = {}
        self.listeners: list[Callable[[list[Any]], None]] = []
        self._stop = threading.Event()
        self._responses: list[Any] = []
        watches = [
            _Watch("pods", "/api/v1/pods", VERSION_LABEL, _pod_event),
            _Watch("slices", "/apis/discovery.k8s.io/v1/endpointslices", SERVICE_LABEL, _slice_event),
            _Watch("services", "/api/v1/services", SERVICE_LABEL, _service_event),
        ]
        if watch_frs:
            watches.append(_Watch("frs", f"/apis/{GROUP}/{API_VERSION}/{PLURAL}", "", _fr_event))
        self._synced = {w.name: threading.Event() for w in watches}
        self._threads = [
            threading.Thread(target=self._run, args=(w,), daemon=True, name=w.name) for w in watches
        ]

    def start(self, timeout: float = 120) -> None:
        for th in self._threads:
            th.start()
        for name, ev in self._synced.items():
            if not ev.wait(timeout):
                raise TimeoutError(f"watch {name} not synced")

    def stop(self) -> None:
        self._stop.set()
        for r in list(self._responses):
            sock = getattr(getattr(r, "connection", None), "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _record(self, ev: list[Any]) -> None:
        ns = ev[3]
        with self.lock:
            self.events.setdefault(ns, []).append(ev)
            self.last_event[ns] = ev[1]
            if ev[0] == "f":
                if ev[2] == "DELETED":
                    self.frs.pop((ns, ev[4]), None)
                else:
                    self.frs[(ns, ev[4])] = ev[5] | {"t": ev[1]}
            elif ev[0] == "v":
                if ev[2] == "DELETED":
                    self.services.pop((ns, ev[4]), None)
                else:
                    self.services[(ns, ev[4])] = ev[5]
            else:
                fleet = self.fleets.get(ns)
                if fleet is None:
                    fleet = self.fleets[ns] = Fleet(target="")
                fleet.apply(ev)
        for cb in list(self.listeners):
            cb(ev)

    def _list(self, w: _Watch) -> str:
        query = {"limit": "500"}
        if w.selector:
            query["labelSelector"] = w.selector
        rv = ""
        while True:
            body = self.api.request("GET", w.path, query=query, timeout=300)
            t = time.time()
            for obj in body.get("items") or ():
                ev = w.parse(t, "ADDED", obj)
                if ev is not None:
                    self._record(ev)
            rv = body["metadata"]["resourceVersion"]
            cont = body["metadata"].get("continue")
            if not cont:
                return str(rv)
            query["continue"] = cont

    def _run(self, w: _Watch) -> None:
        rv = self._list(w)
        self._synced[w.name].set()
        while not self._stop.is_set():
            query = {
                "watch": "true",
                "resourceVersion": rv,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "300",
            }
            if w.selector:
                query["labelSelector"] = w.selector
            try:
                resp = self.api.stream(w.path, query)
                self._responses.append(resp)
                for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                    t = time.time()
                    if not line:
                        continue
                    msg = json.loads(line)
                    kind, obj = msg.get("type"), msg.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            log(f"watch {w.name}: 410 Gone, relisting (events may be lost)")
                            rv = self._list(w)
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                    if kind == "BOOKMARK":
                        continue
                    ev = w.parse(t, kind, obj)
                    if ev is not None:
                        self._record(ev)
            except Exception as e:
                if self._stop.is_set():
                    return
                log(f"watch {w.name}: {type(e).__name__}: {e}; reconnecting")
                time.sleep(0.5)

    # --- queries on the live state -------------------------------------------------------------------

    def fleet(self, ns: str, target: str) -> Fleet:
        """The live fleet of `ns` with `target` as the new version (counters recomputed)."""
        with self.lock:
            old = self.fleets.get(ns) or Fleet(target=target)
            if old.target != target:
                fresh = Fleet(target=target, versions=dict(old.versions))
                for name, (v, ready, deleting) in old.pods.items():
                    fresh.apply_pod("ADDED", name, v, ready, deleting)
                for sname, eps in old.slices.items():
                    fresh.apply_slice("ADDED", sname, [[p, r] for p, r in eps.items()])
                self.fleets[ns] = old = fresh
            return old

    def snapshot(self, ns: str, target: str) -> tuple[float, list[list[Any]], int]:
        """(t, the state now as ADDED events (pods, EndpointSlices, Services' selectors), index of the next
        event of `ns`)."""
        fleet = self.fleet(ns, target)
        with self.lock:
            t = time.time()
            services = [
                ["v", t - 1e-6, "ADDED", ns, name, dict(sel)]
                for (sns, name), sel in self.services.items()
                if sns == ns
            ]
            return t, fleet.snapshot_events(t - 1e-6, ns) + services, len(self.events.get(ns, []))

    def events_since(self, ns: str, index: int) -> list[list[Any]]:
        with self.lock:
            return list(self.events.get(ns, [])[index:])

    def forget(self, ns: str) -> None:
        with self.lock:
            self.events.pop(ns, None)
            self.fleets.pop(ns, None)
            for key in [k for k in self.frs if k[0] == ns]:
                del self.frs[key]
            for skey in [k for k in self.services if k[0] == ns]:
                del self.services[skey]

    def quiet_for(self, ns: str, seconds: float, timeout: float) -> bool:
        """Waits until `ns` had no event for `seconds` (True), or `timeout` passed (False)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                last = self.last_event.get(ns, 0.0)
            if time.time() - last >= seconds:
                return True
            time.sleep(0.1)
        return False


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    """Polls an in-memory predicate (the live watch state), never the API."""
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)


def iter_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
