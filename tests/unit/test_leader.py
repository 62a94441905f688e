"""leader.Elector: client-go's acquire/renew rules and the fence, on an in-memory Lease and fake clocks.

Two candidates share one `FakeLeases` (resourceVersion checked on update, as the API server does);
each has its own monotonic clock, so skew and a frozen process are just clocks that move differently.
"""

import asyncio
import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from fastrollout.apply import Applier, NotLeaderError
from fastrollout.leader import ConflictError, Elector, LeaseConfig, micro_time


class FakeLeases:
    """One Lease with optimistic concurrency; `down` makes every call fail like an unreachable server."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False
        self.writes: list[str] = []  # holder of each successful write

    def _check(self) -> None:
        if self.down:
            raise OSError("connection refused")

    def _store(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(dict(body))
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.lease = stored
        self.writes.append(str(stored["spec"].get("holderIdentity") or ""))
        return copy.deepcopy(stored)

    def get(self) -> dict[str, Any] | None:
        self._check()
        return copy.deepcopy(self.lease)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._check()
        if self.lease is not None:
            raise ConflictError("exists")
        return self._store(body)

    def update(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._check()
        assert self.lease is not None
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise ConflictError("modified")
        return self._store(body)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


async def _nothing() -> None:
    return None


def elector(name: str, store: FakeLeases, clock: Clock, **timings: float) -> Elector:
    config = LeaseConfig(name="fastrollout", namespace="ops", identity=name, **timings)
    return Elector(config, store, on_started=_nothing, on_stopped=_nothing, clock=clock)


def test_micro_time_always_has_six_fractional_digits() -> None:
    assert micro_time(datetime(2026, 11, 30, 5, 0, 0, tzinfo=UTC)) == "2026-11-30T05:00:00.000000Z"


@pytest.mark.parametrize(
    ("retry", "renew", "lease"),
    [(2, 10, 10), (2, 15, 10), (10, 10, 15), (0, 1, 2)],
    ids=["renew-equals-lease", "renew-over-lease", "retry-equals-renew", "zero-retry"],
)
def test_config_refuses_timings_that_cannot_fence(retry: float, renew: float, lease: float) -> None:
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        LeaseConfig("l", "ns", "me", lease_duration=lease, renew_deadline=renew, retry_period=retry)


def test_first_candidate_creates_the_lease_and_the_second_waits() -> None:
    store, a_clock, b_clock = FakeLeases(), Clock(), Clock()
    a, b = elector("a", store, a_clock), elector("b", store, b_clock)
    assert a.try_acquire_or_renew()
    assert store.lease is not None
    assert store.lease["spec"]["holderIdentity"] == "a"
    assert store.lease["spec"]["leaseDurationSeconds"] == 15
    assert not b.try_acquire_or_renew()
    assert b.holder == "a"


def test_a_standby_takes_over_only_a_full_lease_duration_after_it_last_saw_a_change() -> None:
    store, a_clock, b_clock = FakeLeases(), Clock(), Clock(now=50.0)  # clocks need not agree
    a, b = elector("a", store, a_clock), elector("b", store, b_clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b first sees the record at its t=50
    b_clock.now = 64.9
    assert not b.try_acquire_or_renew()
    b_clock.now = 65.0
    assert b.try_acquire_or_renew()
    assert store.lease is not None
    assert store.lease["spec"]["holderIdentity"] == "b"
    assert store.lease["spec"]["leaseTransitions"] == 1


def test_every_renewal_restarts_the_standbys_wait() -> None:
    store, a_clock, b_clock = FakeLeases(), Clock(), Clock()
    a, b = elector("a", store, a_clock), elector("b", store, b_clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    for _ in range(10):
        a_clock.now += 2
        b_clock.now += 2
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    assert store.lease is not None
    assert store.lease["spec"]["leaseTransitions"] == 0  # renewals keep acquireTime and transitions


def test_of_two_candidates_racing_for_an_expired_lease_only_one_wins() -> None:
    store = FakeLeases()
    old = elector("old", store, Clock())
    assert old.try_acquire_or_renew()
    b_clock, c_clock = Clock(), Clock()
    b, c = elector("b", store, b_clock), elector("c", store, c_clock)
    assert not b.try_acquire_or_renew()
    assert not c.try_acquire_or_renew()
    b_clock.now += 16
    c_clock.now += 16
    lease_read_by_c = store.get()
    assert b.try_acquire_or_renew()
    # c read the lease before b's update: its update carries a stale resourceVersion.
    assert lease_read_by_c is not None
    with pytest.raises(ConflictError):
        store.update({**lease_read_by_c, "spec": {"holderIdentity": "c"}})
    assert not c.try_acquire_or_renew()  # and on a fresh read it sees b's new record
    assert c.holder == "b"


def test_the_fence_falls_at_the_renew_deadline_before_anyone_else_may_take_the_lease() -> None:
    store, a_clock, b_clock = FakeLeases(), Clock(), Clock()
    a, b = elector("a", store, a_clock), elector("b", store, b_clock)
    assert a.try_acquire_or_renew()
    a._leading = True  # what run() sets after acquiring
    assert a.may_write()
    assert not b.try_acquire_or_renew()
    store.down = True  # a can no longer renew
    a_clock.now += 9.99
    assert a.may_write()
    a_clock.now += 0.01
    assert not a.may_write()  # 10 s after the last renewal was SENT
    store.down = False
    b_clock.now += 14.99  # b's clock, same rate: a stopped writing 5 s before b may start
    assert not b.try_acquire_or_renew()
    b_clock.now += 0.01
    assert b.try_acquire_or_renew()


def test_a_frozen_leader_fails_its_fence_on_waking_and_then_sees_the_new_holder() -> None:
    store, a_clock, b_clock = FakeLeases(), Clock(), Clock()
    a, b = elector("a", store, a_clock), elector("b", store, b_clock)
    assert a.try_acquire_or_renew()
    a._leading = True
    assert not b.try_acquire_or_renew()
    a_clock.now += 30  # SIGSTOP: the monotonic clock runs on while the process is stopped
    b_clock.now += 30
    assert b.try_acquire_or_renew()
    assert not a.may_write()
    assert not a.try_acquire_or_renew()  # resumed: the record changed, so it waits like any standby
    assert a.holder == "b"


def test_a_renewal_counts_from_when_it_was_sent_not_when_it_was_answered() -> None:
    store, clock = FakeLeases(), Clock()

    class Slow(FakeLeases):
        def update(self, body: Mapping[str, Any]) -> dict[str, Any]:
            clock.now += 4  # the PUT takes 4 s to be answered
            return store.update(body)

        def get(self) -> dict[str, Any] | None:
            return store.get()

        def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
            return store.create(body)

    a = elector("a", Slow(), clock)
    assert a.try_acquire_or_renew()  # create: immediate
    a._leading = True
    sent = clock.now
    assert a.try_acquire_or_renew()  # GET, then the slow PUT
    clock.now = sent + 9.99
    assert a.may_write()
    clock.now = sent + 10.0
    assert not a.may_write()


def test_release_hands_the_lease_over_at_once() -> None:
    store, a_clock, b_clock = FakeLeases(), Clock(), Clock()
    a, b = elector("a", store, a_clock), elector("b", store, b_clock)
    assert a.try_acquire_or_renew()
    a._leading = True
    assert not b.try_acquire_or_renew()
    asyncio.run(a.release())
    assert store.lease is not None
    assert store.lease["spec"]["holderIdentity"] is None
    assert not a.may_write()
    assert b.try_acquire_or_renew()  # no holder: no wait


def test_run_leads_renews_and_steps_down_when_renewals_fail() -> None:
    """The real loops with short timings: a leads, its store goes down, it stops leading (and
    writing) before b, which kept campaigning, takes over."""
    asyncio.run(_lead_renew_step_down())


async def _lead_renew_step_down() -> None:
    store = FakeLeases()
    timeline: list[tuple[str, str]] = []

    def candidate(name: str, leases: Any) -> Elector:
        async def started() -> None:
            timeline.append((name, "started"))

        async def stopped() -> None:
            timeline.append((name, "stopped"))

        config = LeaseConfig("l", "ns", name, lease_duration=0.6, renew_deadline=0.4, retry_period=0.1)
        return Elector(config, leases, on_started=started, on_stopped=stopped)

    class Partitioned:
        """a's own view of the store: it can be cut off while b still reaches it."""

        cut = False

        def get(self) -> dict[str, Any] | None:
            if self.cut:
                raise OSError("unreachable")
            return store.get()

        def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
            return store.create(body)

        def update(self, body: Mapping[str, Any]) -> dict[str, Any]:
            if self.cut:
                raise OSError("unreachable")
            return store.update(body)

    a_view = Partitioned()
    a = candidate("a", a_view)
    a_task = asyncio.create_task(a.run())
    await asyncio.sleep(0.05)
    b = candidate("b", store)
    b_task = asyncio.create_task(b.run())
    await asyncio.sleep(0.5)
    assert a.leading
    assert a.may_write()
    assert not b.leading
    assert not b.may_write()
    a_view.cut = True
    both: list[float] = []
    loop = asyncio.get_running_loop()
    for _ in range(200):
        await asyncio.sleep(0.01)
        if a.may_write() and b.may_write():
            both.append(loop.time())
        if b.leading:
            break
    assert b.leading
    assert b.may_write()
    assert not a.may_write()
    assert both == []
    assert timeline[:2] == [("a", "started"), ("a", "stopped")]
    assert timeline[-1] == ("b", "started")
    for task in (a_task, b_task):
        task.cancel()
    await asyncio.gather(a_task, b_task, return_exceptions=True)
    a.close()
    b.close()


def test_the_applier_sends_no_write_once_the_fence_is_down() -> None:
    sent: list[str] = []

    class Api:
        def param_serialize(self, method: str, path: str, **_: Any) -> tuple[str, str]:
            return method, path

        def call_api(self, method: str, path: str, **_: Any) -> Any:
            sent.append(f"{method} {path}")
            raise AssertionError("no request may be sent")

    applier = Applier(Api(), lambda: False)  # type: ignore[arg-type]
    with pytest.raises(NotLeaderError):
        applier._request("PATCH", "/apis/fastrollout.io/v1alpha1/namespaces/a/fastrollouts/w/status", {})
    assert sent == []


def test_shutdown_releases_the_lease_after_the_campaign_is_cancelled() -> None:
    """What cleanup does on SIGTERM: cancel run() (leading stops), then release(): the Lease is
    handed back, so a standby takes it at its next attempt instead of a lease duration later."""
    store = FakeLeases()

    async def scenario() -> None:
        config = LeaseConfig("l", "ns", "a", lease_duration=0.6, renew_deadline=0.4, retry_period=0.1)
        a = Elector(config, store, on_started=_nothing, on_stopped=_nothing)
        task = asyncio.create_task(a.run())
        await asyncio.sleep(0.15)
        assert a.leading
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert not a.may_write()
        await a.release()
        a.close()

    asyncio.run(scenario())
    assert store.lease is not None
    assert store.lease["spec"]["holderIdentity"] is None
    assert store.writes[-1] == ""


def test_a_standby_wakes_at_the_expiry_but_never_spins_once_the_lease_has_expired() -> None:
    store, a_clock, b_clock = FakeLeases(), Clock(), Clock()
    a, b = elector("a", store, a_clock), elector("b", store, b_clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    b_clock.now += 14.5
    assert b._next_try() == pytest.approx(0.51)  # at the expiry, not a whole retry period later
    b_clock.now += 1  # expired, but the API is unreachable: attempts fail
    store.down = True
    for _ in range(20):
        assert 2.0 <= b._next_try() <= 2.4  # a (jittered) retry period, never a hot loop
