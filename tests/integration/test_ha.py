"""High availability: two operator processes with leader election, and the three failovers of issue 11.

Each test runs two real operator processes (identities op-a and op-b) on the test's namespace, with the
Lease in that namespace and short test timings (4 s lease, 3 s renew deadline, 1 s retry; production
defaults are 15/10/2). op-a is started first and leads; then a rollout v1 -> v2 is disrupted:

- the leader SIGKILLed mid-rollout: right after it created v2's ReplicaSet (even repeats), or right
  after the cutover's collection delete (odd repeats, FASTROLLOUT_TEST_KILL_AFTER=DeletePods);
- the leader frozen (SIGSTOP) until op-b holds the lease, then resumed (SIGCONT);
- the API server restarted (killed, then tests/cluster/up.sh starts it again);
and, without a rollout, the leader stopped gracefully (SIGTERM): it hands the Lease over.

Each: the rollout completes (Drained at v2), every action happened once (ReplicaSet creates as the API's
watch delivered them, and `CreateReplicaSet(`/`DeletePods(` log lines of both processes, which are
logged only when the fence let them through), and every step's event was posted once (no second
writer). The kill test measures failover (kill -> first status write by the new leader, from the
FastRollout's watch) and checks it against lease duration + 2 s.

FASTROLLOUT_HA_REPEATS (default 2) sets how many kill tests run; bench/ha_failover.py runs 20 and sums
up the results that each repeat appends (one JSON line) to $FASTROLLOUT_HA_RESULTS.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from rollout_helpers import (
    LABEL_NAME,
    Fleet,
    Recorder,
    fleet_manifest,
    free_port,
    recording,
    slow_version,
    version_of,
)

if TYPE_CHECKING:
    from conftest import OperatorProcess, Testbed

LEASE_SECONDS, RENEW_DEADLINE, RETRY_PERIOD = 4.0, 3.0, 1.0
LEASE_NAME = "fastrollout"
IDENTITIES = ("op-a", "op-b")
REPEATS = int(os.environ.get("FASTROLLOUT_HA_REPEATS", "2"))
REPLICAS = 10
START_DELAY = 3  # v2's pods turn Ready 3 s after scheduling: the rollout is in flight when we strike


class Pair:
    """The two operator processes of one test, and what their logs and the Lease say."""

    def __init__(
        self,
        bed: Testbed,
        namespace: str,
        operator_process: Callable[..., OperatorProcess],
        leader_env: dict[str, str] | None = None,
    ) -> None:
        self.bed, self.namespace = bed, namespace
        self.ops: dict[str, OperatorProcess] = {}
        self.v1_events: set[str] = set()  # events of the first rollout (v1), before the disruption
        self.ports: dict[str, tuple[int, int]] = {}
        for identity in IDENTITIES:
            metrics, health = free_port(), free_port()
            self.ports[identity] = (metrics, health)
            op = operator_process(
                "--namespace",
                namespace,
                "--metrics-port",
                str(metrics),
                "--health-port",
                str(health),
                "--leader-elect",
                "--leader-elect-namespace",
                namespace,
                "--leader-elect-identity",
                identity,
                "--leader-elect-lease-duration",
                str(LEASE_SECONDS),
                "--leader-elect-renew-deadline",
                str(RENEW_DEADLINE),
                "--leader-elect-retry-period",
                str(RETRY_PERIOD),
                env=leader_env if identity == IDENTITIES[0] else None,
            )
            self.ops[identity] = op
            if identity == IDENTITIES[0]:
                # op-a leads: it starts first, and op-b (starting meanwhile: the two start in parallel
                # to keep the test short) finds the Lease held when it campaigns.
                op.wait_for_log(r"leader election: op-a leads", timeout=60)
        for op in self.ops.values():
            op.wait_for_log(r"started \d+ child watches", timeout=60)

    def holder(self) -> str:
        proc = self.bed.kubectl("get", "lease", LEASE_NAME, "-n", self.namespace, "-o", "json", check=False)
        if proc.returncode != 0:
            return ""
        return str(json.loads(proc.stdout)["spec"].get("holderIdentity") or "")

    def log_lines(self, pattern: str) -> list[str]:
        rx = re.compile(pattern)
        return [line for op in self.ops.values() for line in op.log_text().splitlines() if rx.search(line)]

    def actions(self) -> collections.Counter[str]:
        """Sent actions, from both logs: 'CreateReplicaSet(<name>' / 'DeletePods(revision=...)'."""
        found = self.log_lines(r": (CreateReplicaSet\([^,]+|DeletePods\([^)]*\))")
        rx = re.compile(r": (CreateReplicaSet\([^,]+|DeletePods\([^)]*\))")
        return collections.Counter(m.group(1) for line in found if (m := rx.search(line)))

    def get(self, identity: str, port_index: int, path: str) -> tuple[int, str]:
        port = self.ports[identity][port_index]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()


def _rs_creates(replica_sets: Recorder) -> collections.Counter[str]:
    return collections.Counter(seen.name for seen in replica_sets.events() if seen.type == "ADDED")


STEPS = ("NewVersion", "CutOver", "TrafficStopped", "Drained")


def _assert_once(
    pair: Pair, fleet: Fleet, replica_sets: Recorder | None, steps: tuple[str, ...] = STEPS
) -> dict[str, Any]:
    """Every action once, every step's event once; returns the counts for the report."""
    actions = pair.actions()
    creates = {name: n for name, n in actions.items() if name.startswith("CreateReplicaSet")}
    deletes = {name: n for name, n in actions.items() if name.startswith("DeletePods")}
    assert len(creates) == 2, f"expected v1's and v2's ReplicaSet creates, got {actions}"
    assert len(deletes) == 1, f"expected one cutover delete (of v1), got {actions}"
    duplicates = sum(n - 1 for n in actions.values())
    watched: dict[str, int] = {}
    if replica_sets is not None:
        watched = dict(_rs_creates(replica_sets))
        duplicates += sum(n - 1 for n in watched.values())
    events = collections.Counter(
        (e["reason"], e["message"]) for e in fleet.events() if e["metadata"]["name"] not in pair.v1_events
    )
    doubled = {key: n for key, n in events.items() if n > 1}
    duplicates += sum(n - 1 for n in doubled.values())
    assert duplicates == 0, f"duplicate actions {actions}, ReplicaSet ADDED {watched}, events {doubled}"
    reasons = [reason for reason, _ in events]
    for step in steps:
        assert step in reasons, f"no {step} event: {sorted(events)}"
    return {"actions": dict(actions), "replicaset_added": watched, "duplicates": duplicates}


def _start_rollout(
    bed: Testbed, namespace: str, operator_process: Callable[..., OperatorProcess], **leader_env: str
) -> tuple[Pair, Fleet]:
    pair = Pair(bed, namespace, operator_process, leader_env or None)
    assert pair.holder() == "op-a"
    fleet = Fleet(bed, namespace)
    fleet.apply(fleet_manifest(replicas=REPLICAS, version="v1", drain_seconds=3, grace=30))
    fleet.wait_complete("v1", timeout=60)
    fleet.wait_drained("v1", timeout=60)
    pair.v1_events = {e["metadata"]["name"] for e in fleet.events()}
    return pair, fleet


def _report(result: dict[str, Any]) -> None:
    line = json.dumps(result, sort_keys=True)
    print(f"\n[ha] {line}")
    target = os.environ.get("FASTROLLOUT_HA_RESULTS")
    if target:
        with Path(target).open("a") as fh:
            fh.write(line + "\n")


def _first_status_write_after(fastrollouts: Recorder, after: float) -> float:
    previous: dict[str, Any] | None = None
    for seen in fastrollouts.events():
        status = seen.obj.get("status") or {}
        if seen.t > after and previous is not None and status != previous:
            return seen.t
        previous = status
    raise AssertionError("no status write after the kill")


def _exited(pid: int) -> bool:
    """Gone, or a zombie (up.sh's processes are not our children: we cannot reap them)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("attempt", range(REPEATS), ids=lambda i: f"repeat{i}")
def test_leader_killed_mid_rollout(
    testbed: Testbed,
    namespace: str,
    crd: None,
    operator_process: Callable[..., OperatorProcess],
    attempt: int,
) -> None:
    at_cutover = attempt % 2 == 1
    env = {"FASTROLLOUT_TEST_KILL_AFTER": "DeletePods"} if at_cutover else {}
    pair, fleet = _start_rollout(testbed, namespace, operator_process, **env)
    leader, standby = pair.ops["op-a"], pair.ops["op-b"]
    # Both replicas ready, with the same meaning (watches synced); only the leader says it leads.
    for identity in IDENTITIES:
        assert pair.get(identity, 1, "/readyz")[0] == 200
        assert pair.get(identity, 1, "/healthz")[0] == 200
    assert 'fastrollout_leader{identity="op-a"} 1.0' in pair.get("op-a", 0, "/metrics")[1]
    assert 'fastrollout_leader{identity="op-b"} 0.0' in pair.get("op-b", 0, "/metrics")[1]

    selector = f"{LABEL_NAME}={fleet.name}"
    with (
        recording(testbed, namespace, "replicasets", selector) as replica_sets,
        recording(testbed, namespace, "fastrollouts") as fastrollouts,
        recording(testbed, namespace, "pods", selector) as pods,
    ):
        fleet.patch(slow_version("v2", START_DELAY))
        if at_cutover:
            testbed.wait_for(lambda: not leader.alive, timeout=60, message="leader killed after DeletePods")
            # The kill follows the collection delete at once: the first terminating v1 pod is a bound.
            first = pods.first(
                lambda p: version_of(p) == "v1" and bool(p["metadata"].get("deletionTimestamp"))
            )
            assert first is not None
            killed = first.t
        else:
            testbed.wait_for(
                lambda: any(version_of(s.obj) == "v2" for s in replica_sets.events() if s.type == "ADDED"),
                timeout=30,
                message="v2's ReplicaSet created",
            )
            killed = time.monotonic()
            leader.kill()
        testbed.wait_for(lambda: pair.holder() == "op-b", timeout=30, message="op-b holds the lease")
        done = fleet.wait_complete("v2", timeout=60)
        failover = _first_status_write_after(fastrollouts, killed) - killed
        fleet.wait_drained("v2", timeout=60)
    assert done["stableVersion"] == "v2"
    assert standby.alive
    counts = _assert_once(pair, fleet, replica_sets)
    _report(
        {
            "test": "kill",
            "attempt": attempt,
            "kill_point": "DeletePods" if at_cutover else "CreateReplicaSet",
            "failover_seconds": round(failover, 3),
            "lease_seconds": LEASE_SECONDS,
            **counts,
        }
    )
    assert failover <= LEASE_SECONDS + 2, f"failover took {failover:.2f}s"


def test_leader_frozen_and_resumed_after_its_lease_expired(
    testbed: Testbed, namespace: str, crd: None, operator_process: Callable[..., OperatorProcess]
) -> None:
    pair, fleet = _start_rollout(testbed, namespace, operator_process)
    leader = pair.ops["op-a"]
    assert leader.pid is not None
    selector = f"{LABEL_NAME}={fleet.name}"
    with recording(testbed, namespace, "replicasets", selector) as replica_sets:
        fleet.patch(slow_version("v2", START_DELAY))
        testbed.wait_for(
            lambda: any(version_of(s.obj) == "v2" for s in replica_sets.events() if s.type == "ADDED"),
            timeout=30,
            message="v2's ReplicaSet created",
        )
        os.kill(leader.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        try:
            testbed.wait_for(lambda: pair.holder() == "op-b", timeout=30, message="op-b holds the lease")
            # Let op-b act (v2 turns Ready after START_DELAY s: the cutover) while op-a is still frozen.
            fleet.wait_status(lambda s: s.get("stableVersion") == "v2", timeout=30, message="cut over to v2")
        finally:
            before = len(leader.log_text().splitlines())
            os.kill(leader.pid, signal.SIGCONT)
        resumed = time.monotonic()
        leader.wait_for_log(r"op-a stopped leading", timeout=15)
        fleet.wait_complete("v2", timeout=60)
        fleet.wait_drained("v2", timeout=60)
    after = leader.log_text().splitlines()[before:]
    sent = [
        line
        for line in after
        if re.search(
            r": (CreateReplicaSet|ScaleReplicaSet|DeletePods|DeleteReplicaSet)\(|status written", line
        )
    ]
    fenced = [line for line in after if "not the leader" in line]
    assert sent == [], f"op-a wrote after it was resumed: {sent}"
    assert leader.alive
    counts = _assert_once(pair, fleet, replica_sets)
    _report(
        {
            "test": "sigstop",
            "frozen_seconds": round(resumed - frozen, 2),
            "fenced_writes": len(fenced),
            **counts,
        }
    )


def test_apiserver_restarted_mid_rollout(
    testbed: Testbed, namespace: str, crd: None, operator_process: Callable[..., OperatorProcess]
) -> None:
    pair, fleet = _start_rollout(testbed, namespace, operator_process)
    fleet.patch(slow_version("v2", START_DELAY))
    testbed.wait_for(
        lambda: any(version_of(rs) == "v2" for rs in fleet.replica_sets()),
        timeout=30,
        message="v2's ReplicaSet created",
    )
    pid = testbed.pid_of("kube-apiserver")
    # SIGKILL, a crash: after TERM, apiserver 1.36 on etcd 3.4 lingers for up to a minute (lib.sh).
    os.kill(pid, signal.SIGKILL)
    stopped = time.monotonic()
    testbed.wait_for(lambda: _exited(pid), timeout=30, message="apiserver stopped")
    time.sleep(RENEW_DEADLINE + 1)  # past the renew deadline: the leader must have stopped writing
    up = subprocess.run(
        [str(testbed.cluster_dir / "up.sh")], capture_output=True, text=True, timeout=300, check=False
    )
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    back = time.monotonic()
    fleet.wait_complete("v2", timeout=90)
    # Not Drained: kwok, restarted by up.sh with the API server, sometimes never finishes the drain of
    # pods deleted while it starts (they stay Terminating); that is the bed's pod simulation, not us.
    assert pair.log_lines(r"no renewal of .* for 3s|stopped leading"), "the leader never stepped down"
    holder = pair.holder()
    assert holder in IDENTITIES
    counts = _assert_once(pair, fleet, None, STEPS[:-1])
    _report(
        {
            "test": "apiserver-restart",
            "outage_seconds": round(back - stopped, 1),
            "holder_after": holder,
            **counts,
        }
    )


def test_graceful_stop_hands_the_lease_over(
    testbed: Testbed, namespace: str, crd: None, operator_process: Callable[..., OperatorProcess]
) -> None:
    """SIGTERM (a rolling update of the chart's Deployment): the leader hands the Lease back, and the
    standby takes it within about a retry period, not a lease duration."""
    pair = Pair(testbed, namespace, operator_process)
    assert pair.holder() == "op-a"
    stopping = time.monotonic()
    pair.ops["op-a"].stop()
    testbed.wait_for(
        lambda: pair.holder() == "op-b", timeout=30, interval=0.05, message="op-b holds the lease"
    )
    handover = time.monotonic() - stopping
    assert pair.log_lines(r"op-a released lease"), "op-a did not release the lease"
    _report({"test": "graceful-stop", "handover_seconds": round(handover, 2)})
    assert handover < LEASE_SECONDS, f"handover took {handover:.2f}s: the lease was not released"
