"""Leader election on a coordination.k8s.io/v1 Lease, asyncio, modelled on client-go's leaderelection.

    elector = Elector(LeaseConfig(name="fastrollout", namespace="fastrollout-system", identity=pod),
                      LeaseApi(api), on_started=start_reconcilers, on_stopped=stop_reconcilers)
    task = asyncio.create_task(elector.run())
    ...
    if elector.may_write(): <write>      # the fence: checked immediately before every write

The algorithm is client-go's (tools/leaderelection/leaderelection.go, `tryAcquireOrRenew`):
- GET the Lease (create it when absent). A candidate that is not the holder may take it only when the
  record has not changed for `lease_duration` by its OWN clock: it remembers when it last saw the record
  change (`observed_at`), so no two machines' wall clocks are ever compared.
- Every write of the Lease is an update carrying the resourceVersion that was read, so of two candidates
  that both saw an expired lease only one update succeeds (409 Conflict for the other).
- The leader renews every `retry_period`; when no renewal has succeeded for `renew_deadline` it stops
  leading, and at the next attempt it sees the new holder.

Fencing (what client-go leaves to the caller): `may_write()` is True only while this process holds the
lease AND its renew deadline, counted from the START of the last successful renewal attempt on the
local monotonic clock, has not passed. Any other candidate saw that renewal no earlier than it was sent,
and waits a whole `lease_duration` from then on its own clock, so with renew_deadline < lease_duration
the holder stops writing (lease_duration - renew_deadline) seconds before anybody else may start, even if
its renewals hang, the API server is down, or the process was frozen (SIGSTOP) and resumed: the
monotonic clock ran on while it was stopped, so its first check after waking fails. Worked numbers with
the defaults 15/10/2 s: renewal sent at t=100 -> writes allowed until t=110 -> a standby that saw that
renewal at t>=100 takes over at t>=115, 5 s after the old leader's last possible write start.

Waits carry a jitter of up to 20% of retry_period (client-go's JitterFactor 1.2), so candidates that
start together do not retry in lock-step.
"""

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

logger = logging.getLogger(__name__)

HTTP_NOT_FOUND, HTTP_CONFLICT = 404, 409
JITTER = 0.2
# A released lease (graceful shutdown) says 1 s, so a standby takes it at its next attempt.
RELEASED_SECONDS = 1
EXPIRY_MARGIN = 0.01  # try this long after the lease expires by our clock


@dataclass(frozen=True)
class LeaseConfig:
    """Which Lease, who we are, and the timings (client-go's defaults; renew_deadline < lease_duration)."""

    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry period < renew deadline < lease duration, got "
                f"{self.retry_period:g} / {self.renew_deadline:g} / {self.lease_duration:g} s"
            )
        if not self.identity:
            raise ValueError("leader election needs a non-empty identity")


class ConflictError(Exception):
    """The Lease changed since it was read (409): somebody else wrote it first."""


class LeaseStore(Protocol):
    """The three calls an elector makes. Blocking; the elector runs them on a thread of its own."""

    def get(self) -> dict[str, Any] | None:
        """The Lease, or None when it does not exist."""
        ...

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Creates the Lease; ConflictError if it exists."""
        ...

    def update(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Replaces the Lease; ConflictError unless body's resourceVersion is the stored one."""
        ...


def micro_time(now: datetime) -> str:
    """A metav1.MicroTime: RFC 3339 with exactly six fractional digits, as the API server parses it."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseApi:
    """`LeaseStore` against the API server, with raw JSON (no typed models) like apply.py."""

    def __init__(self, api: client.ApiClient, config: LeaseConfig) -> None:
        self._api = api
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{config.namespace}/leases"
        self._name = config.name
        self._timeout = config.renew_deadline

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        params = self._api.param_serialize(
            method,
            path,
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(*params, _request_timeout=self._timeout)
        data = response.read()  # type: ignore[no-untyped-call]
        if response.status == HTTP_CONFLICT:
            raise ConflictError(path)
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        found: dict[str, Any] = json.loads(data)
        return found

    def get(self) -> dict[str, Any] | None:
        try:
            return self._call("GET", f"{self._collection}/{self._name}")
        except ApiException as error:
            if error.status == HTTP_NOT_FOUND:
                return None
            raise

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", self._collection, body)

    def update(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"{self._collection}/{self._name}", body)


def _record(lease: Mapping[str, Any] | None) -> dict[str, Any]:
    spec = (lease or {}).get("spec")
    return dict(spec) if isinstance(spec, Mapping) else {}


Callback = Callable[[], Awaitable[None]]


class Elector:
    """One candidate. `run()` campaigns for ever: acquire, lead (renewing), lose, campaign again."""

    def __init__(
        self,
        config: LeaseConfig,
        store: LeaseStore,
        *,
        on_started: Callback,
        on_stopped: Callback,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._store = store
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._clock = clock
        self._wall = wall
        # The last record seen and when (local clock) it was first seen: client-go's observedRecord/Time.
        self._observed: dict[str, Any] | None = None
        self._observed_at = 0.0
        # Start (local clock) of the last successful acquire/renew; None while not holding the lease.
        self._renewed_at: float | None = None
        self._leading = False
        # Renewals never queue behind the operator's own API calls (status writes, collection deletes).
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="leader-election")

    # ---------------------------------------------------------------------------------------- reading

    def may_write(self) -> bool:
        """The fence: this process leads and its renew deadline has not passed by the local clock."""
        return self._leading and self._holds()

    def _holds(self) -> bool:
        """The Lease is ours by the last renewal, whether or not we still lead (shutting down)."""
        renewed = self._renewed_at
        return renewed is not None and self._clock() < renewed + self.config.renew_deadline

    @property
    def leading(self) -> bool:
        return self._leading

    @property
    def holder(self) -> str:
        """The holder of the last record seen ('' when none)."""
        return str((self._observed or {}).get("holderIdentity") or "")

    # ---------------------------------------------------------------------------------------- one try

    def try_acquire_or_renew(self) -> bool:
        """One attempt (blocking): True when this candidate holds the lease afterwards."""
        started = self._clock()
        cfg = self.config
        now = micro_time(self._wall())
        mine = {
            "holderIdentity": cfg.identity,
            "leaseDurationSeconds": max(1, round(cfg.lease_duration)),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        }
        lease = self._store.get()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                "spec": mine,
            }
            try:
                created = self._store.create(body)
            except ConflictError:
                return False  # another candidate created it first; read it next time
            self._see(_record(created), self._clock())
            self._renewed_at = started
            return True
        old = _record(lease)
        if old != self._observed:
            self._see(old, self._clock())
        holder = old.get("holderIdentity") or ""
        if holder and holder != cfg.identity and self._clock() < self._observed_at + cfg.lease_duration:
            return False  # held by another and not expired by our clock
        spec = dict(mine)
        transitions = int(old.get("leaseTransitions") or 0)
        if holder == cfg.identity:
            spec["acquireTime"] = old.get("acquireTime") or now
            spec["leaseTransitions"] = transitions
        else:
            spec["leaseTransitions"] = transitions + 1
        body = {**lease, "spec": spec}  # metadata carries the resourceVersion we read
        try:
            updated = self._store.update(body)
        except ConflictError:
            return False
        self._see(_record(updated), self._clock())
        self._renewed_at = started
        return True

    def _see(self, record: dict[str, Any], at: float) -> None:
        self._observed, self._observed_at = record, at

    async def _attempt(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._executor, self.try_acquire_or_renew), timeout
            )
        except TimeoutError:
            logger.warning("lease %s: no answer in %.1fs", self._where, timeout)
        except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            logger.warning("lease %s: %s", self._where, error)
        return False

    @property
    def _where(self) -> str:
        return f"{self.config.namespace}/{self.config.name}"

    def _next_try(self) -> float:
        """Seconds to the next attempt: a jittered retry period, or sooner when the lease expires
        before that by our clock (so failover is lease duration + how late we saw the last renewal,
        not + a whole retry period more)."""
        jittered = self.config.retry_period * (1 + JITTER * random.random())  # noqa: S311 -- not crypto
        if not self.holder or self.holder == self.config.identity:
            return jittered
        expires = self._observed_at + self.config.lease_duration - self._clock()
        if expires <= 0:
            return jittered  # expired and still not ours (API unreachable, or lost a race): no hot loop
        return min(jittered, expires + EXPIRY_MARGIN)

    # ---------------------------------------------------------------------------------------- loops

    async def run(self) -> None:
        """Campaign for ever; cancel the task to stop (then `release()`)."""
        cfg = self.config
        logger.info(
            "leader election: %s campaigns for lease %s (duration %gs, renew deadline %gs, retry %gs)",
            cfg.identity,
            self._where,
            cfg.lease_duration,
            cfg.renew_deadline,
            cfg.retry_period,
        )
        while True:
            await self._acquire()
            self._leading = True
            logger.info("leader election: %s leads (lease %s)", cfg.identity, self._where)
            try:
                await self._on_started()
                await self._renew()
            finally:
                self._leading = False
                logger.info("leader election: %s stopped leading; holder now %r", cfg.identity, self.holder)
                await asyncio.shield(self._on_stopped())

    async def _acquire(self) -> None:
        announced = ""
        while True:
            if await self._attempt(self.config.renew_deadline):
                return
            if self.holder and self.holder != announced:
                announced = self.holder
                logger.info("leader election: lease %s is held by %s", self._where, announced)
            await asyncio.sleep(self._next_try())

    async def _renew(self) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.retry_period)
            while True:
                renewed = self._renewed_at
                remaining = (renewed + cfg.renew_deadline - self._clock()) if renewed is not None else 0.0
                if remaining <= 0:
                    logger.warning(
                        "leader election: no renewal of %s for %gs", self._where, cfg.renew_deadline
                    )
                    return
                if await self._attempt(remaining):
                    break
                if self.holder and self.holder != cfg.identity:
                    return  # taken over (we were frozen or partitioned past the lease)
                await asyncio.sleep(min(cfg.retry_period, max(remaining - 0.001, 0.0)))

    async def release(self) -> None:
        """On graceful shutdown, after `run()` was cancelled and the reconcilers stopped: hand the lease
        back, so a standby takes it at its next attempt rather than a lease duration later."""
        if not self._holds():
            return
        self._leading = False
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.run_in_executor(self._executor, self._release), self.config.retry_period
            )
        except (TimeoutError, ApiException, urllib3.exceptions.HTTPError, OSError, ConflictError) as error:
            logger.warning("leader election: lease %s not released: %s", self._where, error)
        else:
            logger.info("leader election: %s released lease %s", self.config.identity, self._where)

    def _release(self) -> None:
        lease = self._store.get()
        if lease is None or _record(lease).get("holderIdentity") != self.config.identity:
            return
        now = micro_time(self._wall())
        spec = {
            **_record(lease),
            "holderIdentity": None,
            "leaseDurationSeconds": RELEASED_SECONDS,
            "renewTime": now,
        }
        self._store.update({**lease, "spec": spec})
        self._renewed_at = None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
