"""kopf wiring: FastRollout events in, one level-triggered reconcile loop per FastRollout.

kopf watches only FastRollouts. It has no handler for pods or ReplicaSets at all, so it never puts
an annotation or finalizer on them; it writes nothing to FastRollouts either (only `on.event`, which
stores no progress and needs no finalizer). Children come from `observe`'s shared watches. The one
finalizer is the planner's own (api.FINALIZER), held only while a Service's selector is pinned.

Why our own loop instead of `@kopf.daemon`: a kopf daemon puts a finalizer on every FastRollout, so
deleting one would hang while the operator is down. A task per FastRollout, started by its first
event and cancelled by its DELETED event, does the same job without it.

One pass (`Reconciler.reconcile`): read the FastRollout fresh (GET), validate its spec, take the
cache's snapshot, `plan.decide()`, apply, record metrics. A pass runs when something changed (the
FastRollout, or a child: `observe` calls the wake callback) or when the plan asked to be re-run
(`requeue_after`, e.g. a progress deadline). Wakes coalesce: the first change in a quiet period is
planned after COALESCE_SECONDS, and passes for one FastRollout start at most once per MIN_INTERVAL,
so 4,000 pod events in a burst cost a handful of passes, and a change shows in status within ~0.6 s.
Measured on the test bed, a 1,000-pod rollout (creates, readiness, cutover, drain: thousands of child
events) took 74 passes in 87 s; a pass took 62 ms at the median (2,000 pods in the cache), 0.21 s at
p90, and 3.8 s for the cutover pass, which waits for the one DeleteCollection of 1,000 pods (status
updates of that FastRollout wait for it; other FastRollouts' loops do not).

High availability (`--leader-elect`, leader.py): every replica watches the FastRollouts and keeps its
child caches warm, and knows every FastRollout key; only the replica holding the Lease runs reconcilers.
Gaining the lease starts one reconciler per known FastRollout (each starts from what it observes: a fresh
GET and the cache, nothing carried over); losing it cancels them all. Every write goes through
`Applier`, whose fence (`Elector.may_write`) is checked immediately before each request, so a pass
that was in flight when the lease was lost sends nothing more.
"""

import asyncio
import contextlib
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from fastrollout.api import FINALIZER, GROUP, PLURAL, VERSION, FastRolloutSpec, FastRolloutStatus
from fastrollout.apply import (
    DELETE_COLLECTION_WORKERS,
    HTTP_NOT_FOUND,
    REQUEST_SECONDS,
    Applier,
    NotLeaderError,
    Target,
)
from fastrollout.health import HealthServer
from fastrollout.leader import Elector, LeaseApi, LeaseConfig
from fastrollout.metrics import ERROR_REASON, Metrics
from fastrollout.observe import Observer
from fastrollout.plan import decide, errors, reasons
from fastrollout.plan.errors import ApiFailure
from fastrollout.plan.model import Event, Plan, Rollout

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)

COALESCE_SECONDS = 0.05
# At 1.0 s the benchmark at 10,000 pods showed a change that lands just after a pass started waiting
# that whole interval (event-to-status p99 1.02 s). A pass costs ~60 ms at the median, so 0.5 s keeps
# the operator's share of a busy rollout small and puts every change in status within ~0.6 s.
MIN_INTERVAL = 0.5
SYNC_POLL_SECONDS = 0.2
ERROR_BACKOFF = (1.0, 30.0)


@dataclass(frozen=True)
class Options:
    """What `fastrollout run` was asked for."""

    configuration: client.Configuration
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    metrics_port: int = 8080
    health_port: int = 8081
    election: LeaseConfig | None = None  # None: no leader election (one replica)


@dataclass
class Runtime:
    """The operator's shared parts, made at startup and kept in kopf's memo."""

    options: Options
    api: client.ApiClient
    observer: Observer
    applier: Applier
    metrics: Metrics
    waker: "Waker"
    health: HealthServer
    reconcilers: dict[Key, "Reconciler"] = field(default_factory=dict)
    elector: Elector | None = None
    known: set[Key] = field(default_factory=set)  # every FastRollout seen and not deleted
    election_task: "asyncio.Task[None] | None" = None

    def leading(self) -> bool:
        """Whether this replica runs reconcilers: always without leader election."""
        return self.elector is None or self.elector.leading

    def cache_ready(self, namespace: str) -> bool:
        """Whether a pass for `namespace` may plan: its watches are synced; with leader election also
        current (none failing), so a leader never acts on a cache that stopped following the API,
        e.g. right after an API server outage, while its watches reconnect."""
        if self.elector is None:
            return self.observer.synced_for(namespace)
        return self.observer.current_for(namespace)

    def alive(self) -> bool:
        """Watch threads run and, with leader election, the campaign task too (for /healthz)."""
        campaign = self.election_task is None or not self.election_task.done()
        return self.observer.threads_alive and campaign

    def forget(self, key: Key) -> "Reconciler | None":
        """Drops everything kept for a deleted FastRollout; returns its reconciler, if any."""
        self.known.discard(key)
        self.observer.forget(*key)
        self.metrics.forget(*key)
        return self.reconcilers.pop(key, None)

    async def start_leading(self) -> None:
        """Gained the lease: a reconciler for every FastRollout known, each from what it observes."""
        self.metrics.set_leader(leading=True)
        for key in sorted(self.known):
            if key not in self.reconcilers:
                self.reconcilers[key] = Reconciler(self, key)
            self.reconcilers[key].wake()

    async def stop_leading(self) -> None:
        """Lost the lease (or shutting down): no reconciler runs on."""
        self.metrics.set_leader(leading=False)
        reconcilers = list(self.reconcilers.values())
        self.reconcilers.clear()
        for reconciler in reconcilers:
            await reconciler.stop()
        # The per-rollout gauges come from the status this replica wrote: only the leader exports
        # them, so a former leader's stale values never add to the new leader's in a sum().
        for key in self.known:
            self.metrics.forget(*key)


class Waker:
    """Carries wakes from watcher threads to the event loop: one loop callback per burst, not per event."""

    def __init__(self, deliver: Callable[[Key], None]) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver = deliver
        self._lock = threading.Lock()
        self._pending: set[Key] = set()
        self._scheduled = False

    def __call__(self, namespace: str, name: str) -> None:
        with self._lock:
            self._pending.add((namespace, name))
            if self._scheduled or self._loop is None:
                return
            self._scheduled = True
            loop = self._loop
        loop.call_soon_threadsafe(self._drain)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Starts delivering on `loop`, beginning with whatever arrived before."""
        with self._lock:
            self._loop, self._scheduled = loop, True
        loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            keys, self._pending, self._scheduled = self._pending, set(), False
        for key in keys:
            self._deliver(key)


def validation_message(error: ValidationError) -> str:
    """A pydantic error as one line a person can act on: `spec.strategy.maxSurge: ...; ...`."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in ("spec", *item["loc"]))
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


class Reconciler:
    """The level-triggered loop of one FastRollout."""

    def __init__(self, runtime: Runtime, key: Key) -> None:
        self._runtime = runtime
        self.key = key
        self._wake = asyncio.Event()
        self._first_wake: float | None = None
        self._refusals = 0  # passes in a row with a refused action: their retry backs off
        self._task = asyncio.create_task(self._loop(), name=f"reconcile-{key[0]}/{key[1]}")

    def wake(self) -> None:
        if self._first_wake is None:
            self._first_wake = time.monotonic()
        self._wake.set()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _loop(self) -> None:
        requeue: float | None = 0.0
        last_start = -MIN_INTERVAL
        error_delay = ERROR_BACKOFF[0]
        while True:
            if requeue is None or requeue > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=requeue)
            # Never plan from a half-filled cache. Only this namespace's watches count: one that cannot
            # be listed (a 403) holds back its own FastRollouts, never the others (/readyz reports it).
            while not self._runtime.cache_ready(self.key[0]):
                await asyncio.sleep(SYNC_POLL_SECONDS)
            # Let the rest of a burst arrive, and keep passes at least MIN_INTERVAL apart.
            await asyncio.sleep(max(COALESCE_SECONDS, last_start + MIN_INTERVAL - time.monotonic()))
            self._wake.clear()
            woken, self._first_wake = self._first_wake, None
            last_start = time.monotonic()
            try:
                requeue = await self.reconcile(woken)
                error_delay = ERROR_BACKOFF[0]
                if self._runtime.reconcilers.get(self.key) is not self:
                    return  # the FastRollout is gone
            except asyncio.CancelledError:
                raise
            except NotLeaderError as error:
                # The fence refused a write: the lease is lost (stop_leading cancels this loop) or was
                # not renewed in time; retry shortly in case it was renewed just after.
                logger.info("%s/%s: pass stopped: %s", *self.key, error)
                requeue = ERROR_BACKOFF[0]
            except Exception:
                logger.exception("%s/%s: reconcile failed; retrying in %.0fs", *self.key, error_delay)
                self._runtime.metrics.reconcile_errors.labels(ERROR_REASON).inc()
                requeue, error_delay = error_delay, min(error_delay * 2, ERROR_BACKOFF[1])

    async def _read(self) -> dict[str, Any] | None:
        namespace, name = self.key
        api = client.CustomObjectsApi(self._runtime.api)
        try:
            response: Any = await asyncio.to_thread(
                api.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                _preload_content=False,
                _request_timeout=REQUEST_SECONDS,
            )
        except ApiException as error:
            if error.status == HTTP_NOT_FOUND:
                return None
            raise
        body: dict[str, Any] = json.loads(response.data)
        return body

    async def reconcile(self, woken: float | None = None) -> float | None:
        """One pass; returns seconds until the next pass is due without a wake (None: only on wake)."""
        started = time.monotonic()
        body = await self._read()
        if body is None:
            # Deleted. Usually the DELETED event has cancelled this loop already; this covers a
            # deletion kopf missed (e.g. during a watch reconnect).
            self._runtime.forget(self.key)
            return None
        namespace, name = self.key
        metadata = body.get("metadata") or {}
        target = Target(namespace=namespace, name=name, uid=str(metadata.get("uid", "")))
        current: Mapping[str, Any] = body.get("status") or {}
        runtime = self._runtime
        try:
            status = FastRolloutStatus.model_validate(current)
        except ValidationError:
            status = FastRolloutStatus()  # unreadable (hand-edited) status: plan as if new
        generation = int(metadata.get("generation") or 0)
        try:
            spec = FastRolloutSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            await self._invalid(target, current, status, generation, validation_message(error))
            return None
        now = datetime.now(UTC)
        observed = runtime.observer.snapshot(namespace, name, spec, target.uid)
        rollout = Rollout(
            name=name,
            namespace=namespace,
            generation=generation,
            spec=spec,
            status=status,
            deleting=bool(metadata.get("deletionTimestamp")),
            finalized=FINALIZER in (metadata.get("finalizers") or []),
        )
        plan = decide(rollout, observed, now)
        applied = await runtime.applier.apply(target, plan, current)
        recorded = await self._record(target, plan, applied.failure, now)
        written = applied.written or recorded
        finished = time.monotonic()
        runtime.metrics.reconcile.observe(finished - started)
        runtime.metrics.record(namespace, name, status, plan.status, spec=spec, now=now)
        if plan.actions or written:
            latency = f", {finished - woken:.3f}s after the first change" if woken is not None else ""
            logger.info(
                "%s/%s: phase=%s, %d action(s), status %s, pass %.3fs%s",
                namespace,
                name,
                plan.status.phase,
                len(plan.actions),
                "written" if written else "unchanged",
                finished - started,
                latency,
            )
        if applied.failure is not None:
            runtime.metrics.reconcile_errors.labels(applied.failure.reason).inc()
            self._refusals += 1
            retry = float(min(ERROR_BACKOFF[0] * 2 ** min(self._refusals - 1, 8), ERROR_BACKOFF[1]))
            return retry if plan.requeue_after is None else min(retry, plan.requeue_after)
        self._refusals = 0
        return plan.requeue_after

    async def _record(self, target: Target, plan: Plan, failure: ApiFailure | None, now: datetime) -> bool:
        """After the actions: a refused one becomes the ReplicaFailure condition and (when new) one
        Warning event; a clean pass clears a recorded refusal. Returns whether the status was written."""
        final, event = errors.after_actions(plan.status, failure, now)
        if event is not None:
            await self._runtime.applier.post_event(target, event, now)
        if failure is not None:
            logger.warning("%s/%s: %s", target.namespace, target.name, failure.text)
        if final == plan.status:
            return False
        return await self._runtime.applier.write_status(target, plan.status.to_wire(), final)

    async def _invalid(
        self,
        target: Target,
        current: Mapping[str, Any],
        status: FastRolloutStatus,
        generation: int,
        message: str,
    ) -> None:
        """An invalid spec: say so once (Warning event + status message), change nothing else."""
        text = f"invalid spec: {message}"
        if status.message != text:
            await self._runtime.applier.post_event(
                target, Event(reasons.EVENT_INVALID_SPEC, text, warning=True), datetime.now(UTC)
            )
        new = status.model_copy(update={"observed_generation": generation, "message": text})
        await self._runtime.applier.write_status(target, current, new)


class RetryForever:
    """kopf's API retry delays without an end: 1, 1, 2, 3, 5, 8, 13, 21, then every 30 s.

    Iterable afresh for every request (kopf iterates it once per call), and not Sized, so kopf never
    runs out of delays and never escalates a retryable error (403, 5xx, timeouts) to a failed watch.
    """

    def __iter__(self) -> Iterator[float]:
        yield from (1, 1, 2, 3, 5, 8, 13, 21)
        yield from itertools.repeat(30.0)


def _runtime(memo: Any) -> Runtime:
    runtime: Runtime = memo.runtime
    return runtime


@kopf.on.login()
def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """kopf talks to the same cluster, with the same credentials, as the `kubernetes` client."""
    config = _runtime(memo).options.configuration
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    scheme, _sep, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    runtime = _runtime(memo)
    # Standalone: kopf's peering only pauses lower-priority operators (no leader election) and needs
    # its own KopfPeering CRD and RBAC; the chart runs one replica with the Recreate strategy instead.
    settings.peering.standalone = True
    # kopf posts its own log lines as Kubernetes events from this level on; our steps post their own.
    settings.posting.level = logging.WARNING
    # No runtime scanning: no list/watch of CRDs and namespaces, so no RBAC for them. The CLI checks
    # at start that the CRD is served; watched namespaces are given on the command line.
    settings.scanning.disabled = True
    # Reconnect silently-dead watches of FastRollouts.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    # kopf retries a failed API call 8 times (54 s), then fails the watch, and a failed watch stops
    # the whole operator: one namespace whose Role was removed (403 on listing its FastRollouts) would
    # crash-loop it and stop every other namespace. Retry for as long as it takes, as client-go's
    # reflectors do; the retries are logged with the API's message, and that namespace's child
    # watches, which fail the same way, turn /readyz false.
    settings.networking.error_backoffs = RetryForever()
    if runtime.elector is not None:
        # kopf's own posting of its warnings as events would be a write outside the fence: off with
        # leader election (our steps and refusals post their own events, through the fenced Applier).
        settings.posting.enabled = False
    runtime.waker.attach(asyncio.get_running_loop())
    runtime.observer.start()
    runtime.metrics.serve(runtime.options.metrics_port)
    await runtime.health.start()
    if runtime.elector is not None:
        runtime.metrics.set_leader(leading=False)
        runtime.election_task = asyncio.create_task(runtime.elector.run(), name="leader-election")
    logger.info(
        "started %d child watches in %s; metrics on :%d; /healthz and /readyz on :%d",
        runtime.observer.watch_count,
        ", ".join(runtime.options.namespaces) or "all namespaces",
        runtime.options.metrics_port,
        runtime.options.health_port,
    )


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    runtime = _runtime(memo)
    if runtime.election_task is not None:
        runtime.election_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runtime.election_task
    for reconciler in list(runtime.reconcilers.values()):
        await reconciler.stop()
    runtime.reconcilers.clear()
    if runtime.elector is not None:
        # After the reconcilers stopped: hand the lease over, so the standby takes it within a retry
        # period rather than a lease duration (a rolling update of the chart's Deployment).
        await runtime.elector.release()
        runtime.elector.close()
    await runtime.health.stop()
    await asyncio.to_thread(runtime.observer.stop)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def fastrollout_event(
    type: str,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    memo: Any,
    **_: Any,
) -> None:
    runtime = _runtime(memo)
    if namespace is None:
        return  # FastRollouts are namespaced; keeps the type checker honest
    key = (namespace, name)
    if type == "DELETED":
        reconciler = runtime.forget(key)
        if reconciler is not None:
            await reconciler.stop()
        return
    service = body.get("spec", {}).get("serviceName")
    # Standby replicas track too: their caches are warm when they take over.
    runtime.observer.track(namespace, name, service if isinstance(service, str) else None)
    runtime.known.add(key)
    if not runtime.leading():
        return
    reconciler = runtime.reconcilers.get(key)
    if reconciler is None:
        reconciler = runtime.reconcilers[key] = Reconciler(runtime, key)
    reconciler.wake()


def make_runtime(options: Options) -> Runtime:
    # Each child watch holds a connection for its lifetime; every thread that calls the API needs one
    # too: asyncio's default executor (min(32, cpus + 4) threads) and apply's collection deletes.
    watches = 4 * max(len(options.namespaces), 1)  # pods, ReplicaSets, EndpointSlices, Services
    callers = min(32, (os.cpu_count() or 1) + 4) + DELETE_COLLECTION_WORKERS
    configuration = options.configuration
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, watches + callers)
    api = client.ApiClient(configuration)
    reconcilers: dict[Key, Reconciler] = {}

    def deliver(key: Key) -> None:
        reconciler = reconcilers.get(key)
        if reconciler is not None:
            reconciler.wake()

    waker = Waker(deliver)
    observer = Observer(api, options.namespaces or None, waker)
    metrics = Metrics(leader_identity=options.election.identity if options.election else None)
    metrics.watch(observer.health)
    runtime = Runtime(
        options=options,
        api=api,
        observer=observer,
        applier=Applier(api),
        metrics=metrics,
        waker=waker,
        health=HealthServer(options.health_port, observer.health, lambda: observer.threads_alive),
        reconcilers=reconcilers,
    )
    if options.election is not None:
        # A client of its own: lease renewals never wait for a connection the reconcilers hold.
        elector = Elector(
            options.election,
            LeaseApi(client.ApiClient(configuration), options.election),
            on_started=runtime.start_leading,
            on_stopped=runtime.stop_leading,
        )
        runtime.elector = elector
        runtime.applier = Applier(api, elector.may_write)
        runtime.health = HealthServer(options.health_port, observer.health, runtime.alive)
    return runtime


def run(options: Options) -> None:
    """Runs the operator until SIGINT/SIGTERM."""
    runtime = make_runtime(options)
    namespaces: Sequence[str] = options.namespaces
    # No kopf liveness_endpoint: health.py serves /healthz (the process) and /readyz (the watches)
    # on the health port, so a namespace that cannot be listed fails readiness, not liveness.
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            memo=kopf.Memo(runtime=runtime),
        )
    )
