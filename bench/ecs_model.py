"""A model of an Amazon ECS rolling deployment of N single-request tasks.

MODEL (not a measurement). Nothing here talks to AWS. It computes, from published ECS / ELB defaults
(or any override), when an ECS rolling deployment would have

* all new tasks healthy,
* the last old task stop receiving new traffic (its load-balancer deregistration begins),
* all old tasks stopped, and
* the deployment reported ``COMPLETED`` (steady state, seen by the ``services-stable`` waiter's poll),

and attributes each of those times to named mechanisms along its critical path (launch rate limit,
placement, task start, health-check gating, scheduler reaction, deregistration delay, stop timeout /
drain, poll), so a report can say which part of a gap comes from which mechanism.

The inputs shared with the Kubernetes benchmark are N, the per-task start time (image pull + app start)
and the per-task drain time (the request still in flight when SIGTERM arrives).

How the deployment is simulated (discrete events, one task at a time):

1. At t = 0 the new task definition is deployed. ECS may have at most ``floor(N * maximumPercent/100)``
   tasks RUNNING or PENDING (old tasks count until they are STOPPED, draining ones included) and must
   keep at least ``ceil(N * minimumHealthyPercent/100)`` healthy (old serving + new healthy). With the
   defaults 200 / 100 it may launch all N new tasks at once, and may stop old task j only once j new
   tasks are healthy.
2. Launches pass through every enabled rate limiter, each a token bucket full at t = 0: the per-service
   launch rate (500 tasks/min), the Fargate launch bucket (burst 100, then 20 tasks/s) and, for direct
   RunTask/StartTask callers, API calls of at most 10 tasks at a given call rate. A task launches at the
   earliest time all limiters allow.
3. A launched task is RUNNING (and registered with the target group) ``placement_seconds`` later; its
   app answers ``start_seconds`` after that (image pull + app start; counting the pull after RUNNING
   starts the health-check clocks early, which flatters ECS). The container health check and the load
   balancer's target health check run on their own intervals from RUNNING; the task is healthy when both
   have passed (ECS waits for the load balancer to report the target healthy).
4. When ECS stops an old task it deregisters it from the target group (no new requests from then on:
   "traffic stopped" for that task), waits the deregistration delay, sends SIGTERM, and the task exits
   after ``min(drain_seconds, stop_timeout)`` (SIGKILL at the stop timeout).
5. Steady state: all N new tasks healthy and every old task STOPPED. The deployment's rolloutState turns
   ``COMPLETED`` then; a ``services-stable`` waiter started at t = 0 polls every 15 s and sees it at the
   next poll.

Closed form for the default shape (maximumPercent 200, minimumHealthyPercent 100), which the simulation
reproduces: ``T = L(N) + placement + t_health + reaction + dereg_delay + min(drain, stop_timeout) + poll``
where ``L(N)`` is the launch time of the N-th task under the rate limiters and ``t_health`` is the wait
from RUNNING to the last health check that passes (see :func:`closed_form_completed_seconds`).

Sources are in ``/work/shared/notes/ecs-k8s-parameters.md``; each field below says FACT (published) or
EST (our estimate).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import math
import sys
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

LABEL = "MODEL (not a measurement)"
_EPS = 1e-9


@dataclass(frozen=True)
class EcsParameters:
    """Every knob of the ECS deployment model. Defaults are the published ECS / ELB defaults."""

    name: str = "default"
    # --- deployment configuration -------------------------------------------------------------------
    # FACT: ECS API DeploymentConfiguration defaults for a rolling update (maximumPercent 200).
    maximum_percent: int = 200
    # FACT: ECS API DeploymentConfiguration default (minimumHealthyPercent 100).
    minimum_healthy_percent: int = 100
    # --- launch rate limits (None disables a limiter) ----------------------------------------------
    # FACT (secondary copy of the ECS quotas table): tasks launched per service, 500 per minute.
    service_launch_rate_per_min: float | None = 500.0
    # EST: the quota is stated as a rate; we give it no burst beyond one task.
    service_launch_burst: int = 1
    # FACT: ECS Fargate throttling doc, launch bucket of 100 tasks (burst) ...
    fargate_bucket_burst: int | None = 100
    # FACT: ... refilled at 20 tasks per second.
    fargate_bucket_rate_per_s: float = 20.0
    # FACT: RunTask / StartTask take at most 10 tasks per call (ECS service quotas, hard limit).
    tasks_per_call: int = 10
    # GAP/EST: API call rate of a direct RunTask/StartTask caller; None = the service scheduler launches
    # (no per-call pacing modelled beyond the service rate). plaid_2019() sweeps 0.5..5 calls/s.
    calls_per_second: float | None = None
    # EST: calls that may be made back to back before the call rate applies.
    call_burst: int = 1
    # --- task start ----------------------------------------------------------------------------------
    # EST: PROVISIONING -> RUNNING without the image pull (ENI attach, placement); pull is in start_seconds.
    placement_seconds: float = 10.0
    # EST: delay between a task turning healthy and the scheduler acting on it; unknown, 0 by default.
    scheduler_reaction_seconds: float = 0.0
    # --- container health check (task definition HealthCheck) ----------------------------------------
    # EST: a service need not define one; the notes list its defaults, so the default model has one.
    container_health_check: bool = True
    # FACT: ECS HealthCheck API: interval 30 s (range 5-300).
    container_hc_interval_s: float = 30.0
    # FACT: ECS HealthCheck API: timeout 5 s (range 2-60).
    container_hc_timeout_s: float = 5.0
    # FACT: ECS HealthCheck API: retries 3 (range 1-10).
    container_hc_retries: int = 3
    # FACT: ECS HealthCheck API: startPeriod 0 (off; range 0-300).
    container_hc_start_period_s: float = 0.0
    # --- load balancer (ALB target group) ------------------------------------------------------------
    # EST: the service sits behind an ALB target group (the case where "traffic" is defined).
    load_balancer: bool = True
    # FACT: ELB target group HealthCheckIntervalSeconds default 30 s (range 5-300).
    alb_hc_interval_s: float = 30.0
    # FACT: ELB HealthyThresholdCount default 5 for HTTP/HTTPS target groups (range 2-10).
    alb_healthy_threshold: int = 5
    # FACT: ELB UnhealthyThresholdCount default 2 for HTTP/HTTPS target groups.
    alb_unhealthy_threshold: int = 2
    # FACT (current ECS "load balancer health check" doc): a newly registered target needs one passing
    # check whatever the healthy threshold; the threshold applies to recovery. False = older behaviour,
    # the healthy threshold applies to new targets too (Nathan Peck's "at least 2.5 min"; the notes'
    # worked example of about 16 minutes).
    alb_new_target_single_pass: bool = True
    # FACT: ECS service healthCheckGracePeriodSeconds default 0.
    health_check_grace_period_s: float = 0.0
    # FACT: ELB target group attribute deregistration_delay.timeout_seconds default 300 s.
    deregistration_delay_s: float = 300.0
    # --- stopping ------------------------------------------------------------------------------------
    # FACT: ECS_CONTAINER_STOP_TIMEOUT / stopTimeout default 30 s (Fargate max 120 s).
    stop_timeout_s: float = 30.0
    # --- completion ----------------------------------------------------------------------------------
    # FACT: the AWS CLI/SDK `services-stable` waiter polls DescribeServices every 15 s.
    waiter_poll_s: float = 15.0

    def __post_init__(self) -> None:
        if self.maximum_percent < 100:
            raise ValueError("maximum_percent must be >= 100 for a rolling update of a fixed-size service")
        if not 0 <= self.minimum_healthy_percent <= 100:
            raise ValueError("minimum_healthy_percent must be in 0..100")
        if self.maximum_percent == 100 and self.minimum_healthy_percent == 100:
            raise ValueError("maximum_percent 100 with minimum_healthy_percent 100 can replace no task")
        for fname in ("service_launch_rate_per_min", "calls_per_second"):
            value = getattr(self, fname)
            if value is not None and value <= 0:
                raise ValueError(f"{fname} must be > 0 or None")
        if self.fargate_bucket_burst is not None and self.fargate_bucket_burst < 1:
            raise ValueError("fargate_bucket_burst must be >= 1 or None")
        for fname in ("service_launch_burst", "tasks_per_call", "call_burst", "container_hc_retries"):
            if getattr(self, fname) < 1:
                raise ValueError(f"{fname} must be >= 1")
        for fname in ("fargate_bucket_rate_per_s", "container_hc_interval_s", "alb_hc_interval_s"):
            if getattr(self, fname) <= 0:
                raise ValueError(f"{fname} must be > 0")
        if self.alb_healthy_threshold < 1 or self.alb_unhealthy_threshold < 1:
            raise ValueError("ALB thresholds must be >= 1")
        for fname in (
            "placement_seconds",
            "scheduler_reaction_seconds",
            "container_hc_timeout_s",
            "container_hc_start_period_s",
            "health_check_grace_period_s",
            "deregistration_delay_s",
            "stop_timeout_s",
        ):
            if getattr(self, fname) < 0:
                raise ValueError(f"{fname} must be >= 0")
        if self.waiter_poll_s < 0:
            raise ValueError("waiter_poll_s must be >= 0 (0 = completion seen at once)")

    def steady_launch_rate_per_s(self) -> float:
        """The sustained launch rate (tasks/s) the enabled limiters allow; ``inf`` if none is enabled."""
        rates = [math.inf]
        if self.service_launch_rate_per_min is not None:
            rates.append(self.service_launch_rate_per_min / 60.0)
        if self.fargate_bucket_burst is not None:
            rates.append(self.fargate_bucket_rate_per_s)
        if self.calls_per_second is not None:
            rates.append(self.calls_per_second * self.tasks_per_call)
        return min(rates)


def defaults() -> EcsParameters:
    """The published ECS / ELB defaults (current ELB behaviour: one check for a new target)."""
    return EcsParameters()


def notes_worked_example() -> EcsParameters:
    """Defaults with the older ELB behaviour (5 passes for a new target), as the notes' 16-minute example."""
    return EcsParameters(name="default-5pass", alb_new_target_single_pass=False)


def tuned() -> EcsParameters:
    """What a careful ECS user sets: deregistration delay 5 s and the fastest health checks allowed."""
    return EcsParameters(
        name="tuned",
        container_hc_interval_s=5.0,  # FACT: the ECS HealthCheck minimum interval
        container_hc_timeout_s=2.0,  # FACT: the ECS HealthCheck minimum timeout
        alb_hc_interval_s=5.0,  # FACT: the ELB minimum HealthCheckIntervalSeconds
        alb_healthy_threshold=2,  # FACT: the ELB minimum HealthyThresholdCount
        deregistration_delay_s=5.0,  # the notes' tuned value (Scribd went to 17 s)
    )


def plaid_2019(calls_per_second: float = 1.0) -> EcsParameters:
    """Plaid's 2019 case: StartTask, 10 tasks per call, at a given call rate (GAP: swept 0.5..5 calls/s).

    StartTask places tasks on chosen EC2 container instances, so neither the per-service launch rate
    nor the Fargate bucket applies; the call rate is the launch limit. The rest keeps the ECS defaults
    with the ELB behaviour of the time (EST: the healthy threshold applied to new targets).
    """
    return EcsParameters(
        name=f"plaid2019@{calls_per_second:g}/s",
        service_launch_rate_per_min=None,
        fargate_bucket_burst=None,
        tasks_per_call=10,
        calls_per_second=calls_per_second,
        alb_new_target_single_pass=False,
    )


PRESETS = {"default": defaults, "default-5pass": notes_worked_example, "tuned": tuned}


@dataclass(frozen=True)
class Breakdown:
    """Seconds of a time attributed to each mechanism on its critical path; the fields sum to the time."""

    launch_rate_limit: float = 0.0
    placement: float = 0.0
    task_start: float = 0.0
    health_check_gating: float = 0.0
    scheduler_reaction: float = 0.0
    deregistration_delay: float = 0.0
    stop_drain: float = 0.0
    poll: float = 0.0

    def total(self) -> float:
        return math.fsum(self.as_dict().values())

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def plus(self, **seconds: float) -> Breakdown:
        """A copy with ``seconds`` added to the named mechanisms."""
        return dataclasses.replace(self, **{k: getattr(self, k) + v for k, v in seconds.items()})


@dataclass(frozen=True)
class EcsResult:
    """What the model says one deployment does. All times are seconds from the deploy at t = 0."""

    params: EcsParameters
    n: int
    start_seconds: float
    drain_seconds: float
    all_new_healthy_s: float
    traffic_stopped_s: float  # the last old task's deregistration begins: no old task gets new requests
    all_old_stopped_s: float
    steady_state_s: float
    completed_s: float  # rolloutState COMPLETED as seen by the services-stable waiter
    last_launch_s: float
    api_calls: int | None  # RunTask/StartTask calls, when a call rate is modelled
    completed_breakdown: Breakdown
    traffic_stopped_breakdown: Breakdown
    warnings: tuple[str, ...]
    new_launch_times: tuple[float, ...] = field(repr=False)
    new_healthy_times: tuple[float, ...] = field(repr=False)
    old_deregister_times: tuple[float, ...] = field(repr=False)
    old_stopped_times: tuple[float, ...] = field(repr=False)

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary (no per-task arrays), labelled as a model."""
        return {
            "label": LABEL,
            "preset": self.params.name,
            "inputs": {"n": self.n, "start_seconds": self.start_seconds, "drain_seconds": self.drain_seconds},
            "parameters": dataclasses.asdict(self.params),
            "result": {
                "all_new_healthy_s": self.all_new_healthy_s,
                "traffic_stopped_s": self.traffic_stopped_s,
                "all_old_stopped_s": self.all_old_stopped_s,
                "steady_state_s": self.steady_state_s,
                "completed_s": self.completed_s,
                "last_launch_s": self.last_launch_s,
                "api_calls": self.api_calls,
            },
            "completed_breakdown_s": self.completed_breakdown.as_dict(),
            "traffic_stopped_breakdown_s": self.traffic_stopped_breakdown.as_dict(),
            "warnings": list(self.warnings),
        }


class _TokenBucket:
    """A token bucket full at t = 0; ``take(t)`` returns the earliest time >= t a token is available."""

    def __init__(self, burst: int, rate_per_s: float) -> None:
        self._burst = float(burst)
        self._rate = rate_per_s
        self._tokens = float(burst)
        self._at = 0.0

    def earliest(self, t: float) -> float:
        t = max(t, self._at)
        tokens = min(self._burst, self._tokens + (t - self._at) * self._rate)
        if tokens >= 1.0 - _EPS:
            return t
        return t + (1.0 - tokens) / self._rate

    def take(self, t: float) -> None:
        t = max(t, self._at)
        self._tokens = min(self._burst, self._tokens + (t - self._at) * self._rate) - 1.0
        self._at = t


class _Launcher:
    """Gives each launch (in decision order) its launch time under every enabled limiter."""

    def __init__(self, p: EcsParameters) -> None:
        self._buckets: list[_TokenBucket] = []
        if p.service_launch_rate_per_min is not None:
            self._buckets.append(_TokenBucket(p.service_launch_burst, p.service_launch_rate_per_min / 60.0))
        if p.fargate_bucket_burst is not None:
            self._buckets.append(_TokenBucket(p.fargate_bucket_burst, p.fargate_bucket_rate_per_s))
        self._calls = _TokenBucket(p.call_burst, p.calls_per_second) if p.calls_per_second else None
        self._per_call = p.tasks_per_call
        self._call_at = -math.inf
        self._in_call = p.tasks_per_call  # forces a new call for the first task
        self.calls = 0
        self._last = 0.0

    def launch(self, decided_at: float) -> float:
        t = max(decided_at, self._last)
        # Each bucket's earliest time can push past another's; iterate to a fixed point.
        while True:
            t_next = t
            for b in self._buckets:
                t_next = max(t_next, b.earliest(t_next))
            if self._calls is not None:
                joins = self._in_call < self._per_call and t_next <= self._call_at + _EPS
                t_next = max(t_next, self._call_at if joins else self._calls.earliest(t_next))
            if t_next <= t + _EPS:
                break
            t = t_next
        for b in self._buckets:
            b.take(t)
        if self._calls is not None:
            if self._in_call < self._per_call and t <= self._call_at + _EPS:
                self._in_call += 1
            else:
                self._calls.take(t)
                self._call_at = t
                self._in_call = 1
                self.calls += 1
        self._last = t
        return t


def _first_check_at_or_after(origin: float, ready: float, interval: float) -> tuple[float, int]:
    """First periodic check (origin + k*interval, k >= 1) at or after ``ready``, and the count k-1 of
    checks before it (which fail because the app is not answering yet)."""
    k = max(1, math.ceil((ready - origin) / interval - _EPS))
    return origin + k * interval, k - 1


def _task_healthy(p: EcsParameters, running: float, ready: float, warnings: set[str]) -> float:
    """When a task that is RUNNING at ``running`` and answers at ``ready`` counts as healthy for ECS."""
    healthy = ready
    if p.container_health_check:
        passed, failed = _first_check_at_or_after(running, ready, p.container_hc_interval_s)
        counted = sum(
            1 for k in range(1, failed + 1) if k * p.container_hc_interval_s > p.container_hc_start_period_s
        )
        if counted >= p.container_hc_retries:
            warnings.add(
                "container health check fails `retries` times before the app answers: ECS would mark the "
                "task UNHEALTHY and replace it (raise startPeriod); the model ignores the replacement"
            )
        healthy = max(healthy, passed)
    if p.load_balancer:
        first, failed = _first_check_at_or_after(running, ready, p.alb_hc_interval_s)
        passes = 1 if p.alb_new_target_single_pass else p.alb_healthy_threshold
        if (
            failed >= p.alb_unhealthy_threshold
            and failed * p.alb_hc_interval_s > p.health_check_grace_period_s
        ):
            warnings.add(
                "the target fails the ALB unhealthy threshold before the app answers and the grace period "
                "has run out: ECS would replace the task; the model ignores the replacement"
            )
        healthy = max(healthy, first + (passes - 1) * p.alb_hc_interval_s)
    return healthy


def simulate(
    n: int, start_seconds: float, drain_seconds: float, params: EcsParameters | None = None
) -> EcsResult:
    """Run the model for ``n`` tasks; see the module docstring for what is and is not modelled."""
    p = params if params is not None else defaults()
    if n < 1:
        raise ValueError("n must be >= 1")
    if start_seconds < 0 or drain_seconds < 0:
        raise ValueError("start_seconds and drain_seconds must be >= 0")
    warnings: set[str] = set()
    if drain_seconds > p.stop_timeout_s:
        warnings.add("drain_seconds exceeds stop_timeout: in-flight requests are cut by SIGKILL")
    cap = (n * p.maximum_percent) // 100
    min_healthy = -((-n * p.minimum_healthy_percent) // 100)
    dereg = p.deregistration_delay_s if p.load_balancer else 0.0
    stop_drain = min(drain_seconds, p.stop_timeout_s)

    launcher = _Launcher(p)
    launch_times: list[float] = []
    healthy_times: list[float] = []
    dereg_times: list[float] = []
    stopped_times: list[float] = []
    # Event heap: (time, seq, kind, breakdown); kind 0 = a new task healthy, 1 = an old task stopped.
    events: list[tuple[float, int, int, Breakdown]] = []
    seq = 0
    old_serving = n
    old_present = n
    launched = 0
    new_healthy = 0
    last_healthy_bd = Breakdown()
    last_dereg_bd = Breakdown()
    last_dereg_t = -math.inf
    last_stopped_bd = Breakdown()
    now = 0.0
    cause = Breakdown()
    while True:
        # Stop old tasks down to the minimum healthy count.
        k = min(old_serving, old_serving + new_healthy - min_healthy)
        for _ in range(max(0, k)):
            t_dereg = now + p.scheduler_reaction_seconds
            bd = cause.plus(scheduler_reaction=p.scheduler_reaction_seconds)
            dereg_times.append(t_dereg)
            if t_dereg >= last_dereg_t:
                last_dereg_t, last_dereg_bd = t_dereg, bd
            stop_bd = bd.plus(deregistration_delay=dereg, stop_drain=stop_drain)
            heapq.heappush(events, (t_dereg + dereg + stop_drain, seq, 1, stop_bd))
            seq += 1
        old_serving -= max(0, k)
        # Launch new tasks up to maximumPercent.
        room = min(cap - (launched + old_present), n - launched)
        for _ in range(max(0, room)):
            t_launch = launcher.launch(now)
            running = t_launch + p.placement_seconds
            ready = running + start_seconds
            healthy = _task_healthy(p, running, ready, warnings)
            bd = cause.plus(
                launch_rate_limit=t_launch - now,
                placement=p.placement_seconds,
                task_start=start_seconds,
                health_check_gating=healthy - ready,
            )
            launch_times.append(t_launch)
            heapq.heappush(events, (healthy, seq, 0, bd))
            seq += 1
        launched += max(0, room)
        if not events:
            break
        now, _, kind, cause = heapq.heappop(events)
        if kind == 0:
            new_healthy += 1
            healthy_times.append(now)
            last_healthy_bd = cause
        else:
            old_present -= 1
            stopped_times.append(now)
            last_stopped_bd = cause
    if launched < n or old_serving > 0 or new_healthy < n:
        raise ValueError("deployment cannot finish with these maximum/minimum percentages")

    all_new_healthy = max(healthy_times)
    all_old_stopped = max(stopped_times)
    steady = max(all_new_healthy, all_old_stopped)
    steady_bd = last_stopped_bd if all_old_stopped >= all_new_healthy else last_healthy_bd
    poll = p.waiter_poll_s
    completed = math.ceil(steady / poll - _EPS) * poll if poll > 0 else steady
    completed = max(completed, steady)
    return EcsResult(
        params=p,
        n=n,
        start_seconds=start_seconds,
        drain_seconds=drain_seconds,
        all_new_healthy_s=all_new_healthy,
        traffic_stopped_s=max(dereg_times),
        all_old_stopped_s=all_old_stopped,
        steady_state_s=steady,
        completed_s=completed,
        last_launch_s=max(launch_times),
        api_calls=launcher.calls if p.calls_per_second is not None else None,
        completed_breakdown=steady_bd.plus(poll=completed - steady),
        traffic_stopped_breakdown=last_dereg_bd,
        warnings=tuple(sorted(warnings)),
        new_launch_times=tuple(sorted(launch_times)),
        new_healthy_times=tuple(sorted(healthy_times)),
        old_deregister_times=tuple(sorted(dereg_times)),
        old_stopped_times=tuple(sorted(stopped_times)),
    )


def closed_form_completed_seconds(
    n: int, start_seconds: float, drain_seconds: float, params: EcsParameters | None = None
) -> float:
    """The notes' formula, for maximumPercent >= 200 and minimumHealthyPercent 100, without the poll
    rounding: ``L(N) + placement + t_health + reaction + dereg + min(drain, stop_timeout)``.

    ``L(N)`` is the N-th launch under the limiters (for one steady limiter of rate r and burst b:
    ``(N - b) / r``), ``t_health`` the wait from RUNNING to the last passing check.
    """
    p = params if params is not None else defaults()
    launcher = _Launcher(p)
    last = 0.0
    for _ in range(n):
        last = launcher.launch(0.0)
    running = last + p.placement_seconds
    healthy = _task_healthy(p, running, running + start_seconds, set())
    dereg = p.deregistration_delay_s if p.load_balancer else 0.0
    return healthy + p.scheduler_reaction_seconds + dereg + min(drain_seconds, p.stop_timeout_s)


@dataclass(frozen=True)
class TimelinePoint:
    """Task counts at time ``t`` (seconds from the deploy)."""

    t: float
    new_launched: int
    new_healthy: int
    old_serving: int  # still registered: may receive new requests
    old_draining: int  # deregistered (or SIGTERMed) but not yet STOPPED


def timeline_at(result: EcsResult, t: float) -> TimelinePoint:
    """Counts at time ``t``; an event at exactly ``t`` has happened."""
    deregistered = bisect_right(result.old_deregister_times, t)
    stopped = bisect_right(result.old_stopped_times, t)
    return TimelinePoint(
        t=t,
        new_launched=bisect_right(result.new_launch_times, t),
        new_healthy=bisect_right(result.new_healthy_times, t),
        old_serving=result.n - deregistered,
        old_draining=deregistered - stopped,
    )


def timeline(result: EcsResult, step_s: float = 1.0, until_s: float | None = None) -> list[TimelinePoint]:
    """Counts every ``step_s`` seconds from 0 to ``until_s`` (default: COMPLETED), both ends included."""
    if step_s <= 0:
        raise ValueError("step_s must be > 0")
    end = result.completed_s if until_s is None else until_s
    steps = math.ceil(end / step_s - _EPS)
    return [timeline_at(result, min(i * step_s, end)) for i in range(steps + 1)]


def _parse_overrides(p: EcsParameters, items: Sequence[str]) -> EcsParameters:
    """Apply ``FIELD=VALUE`` overrides all at once (so intermediate combinations are not validated)."""
    types = {f.name: f.type for f in dataclasses.fields(EcsParameters)}
    fields = set(types)
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--set wants FIELD=VALUE with FIELD one of {sorted(fields)}")
        current = getattr(p, key)
        if raw.lower() in ("none", "null"):
            changes[key] = None
        elif isinstance(current, bool):
            changes[key] = raw.lower() in ("1", "true", "yes", "on")
        elif isinstance(current, str):
            changes[key] = raw
        elif str(types[key]).startswith("int"):
            changes[key] = int(raw)
        else:
            changes[key] = float(raw)
    return dataclasses.replace(p, **changes)


def _fmt_min(seconds: float) -> str:
    return f"{seconds:8.1f} s  ({seconds / 60:5.2f} min)"


def render_text(result: EcsResult) -> str:
    """A human-readable report: the parameters beside the result, labelled as a model."""
    lines = [
        f"ECS rolling deployment — {LABEL}",
        f"preset {result.params.name}: N={result.n}, start={result.start_seconds:g} s, "
        f"drain={result.drain_seconds:g} s",
        "",
        "parameters:",
    ]
    lines += [f"  {k:32s} {v}" for k, v in dataclasses.asdict(result.params).items() if k != "name"]
    lines += [
        "",
        f"result ({LABEL}):",
        f"  last task launched             {_fmt_min(result.last_launch_s)}",
        f"  all new tasks healthy          {_fmt_min(result.all_new_healthy_s)}",
        f"  old tasks stop getting traffic {_fmt_min(result.traffic_stopped_s)}",
        f"  all old tasks stopped          {_fmt_min(result.all_old_stopped_s)}",
        f"  ECS COMPLETED (seen by poll)   {_fmt_min(result.completed_s)}",
    ]
    if result.api_calls is not None:
        lines.append(f"  RunTask/StartTask calls        {result.api_calls}")
    lines += ["", f"breakdown of COMPLETED by mechanism ({LABEL}):"]
    lines += [f"  {k:22s} {v:8.1f} s" for k, v in result.completed_breakdown.as_dict().items()]
    lines += [f"  {'total':22s} {result.completed_breakdown.total():8.1f} s"]
    lines += ["", f"breakdown of traffic-stopped by mechanism ({LABEL}):"]
    lines += [f"  {k:22s} {v:8.1f} s" for k, v in result.traffic_stopped_breakdown.as_dict().items()]
    lines += [f"  {'total':22s} {result.traffic_stopped_breakdown.total():8.1f} s"]
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python bench/ecs_model.py --n 4000 --start-seconds 5 --drain-seconds 20 [--json]``."""
    ap = argparse.ArgumentParser(description=f"ECS rolling deployment model — {LABEL}")
    ap.add_argument("--n", type=int, required=True, help="number of tasks")
    ap.add_argument("--start-seconds", type=float, required=True, help="image pull + app start per task")
    ap.add_argument("--drain-seconds", type=float, required=True, help="request in flight at SIGTERM")
    ap.add_argument(
        "--preset",
        choices=[*PRESETS, "plaid2019"],
        default="default",
        help="parameter set (default: default)",
    )
    ap.add_argument(
        "--calls-per-second",
        type=float,
        action="append",
        help="plaid2019 StartTask call rate; repeat to sweep (default: 0.5 1 2 5)",
    )
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a parameter")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument(
        "--timeline-step",
        type=float,
        metavar="SECONDS",
        help="with --json: add the timeline (new launched/healthy, old serving/draining) every SECONDS",
    )
    args = ap.parse_args(argv)

    if args.preset == "plaid2019":
        base = [plaid_2019(c) for c in (args.calls_per_second or [0.5, 1.0, 2.0, 5.0])]
    else:
        base = [PRESETS[args.preset]()]
    results = []
    for p in base:
        params = _parse_overrides(p, args.set)
        results.append(simulate(args.n, args.start_seconds, args.drain_seconds, params))
    if args.json:
        docs = []
        for r in results:
            doc = r.summary()
            if args.timeline_step:
                doc["timeline"] = [dataclasses.asdict(pt) for pt in timeline(r, args.timeline_step)]
            docs.append(doc)
        out: object = docs if len(docs) > 1 else docs[0]
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n\n".join(render_text(r) for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
