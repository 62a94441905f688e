"""Surge and readiness arithmetic, kept apart from any decision so it can be read with a pencil.

Like the Deployment controller's `NewRSNewReplicas` and `ResolveFenceposts`, every number here is a
pure function of small integers.
"""

from collections.abc import Sequence
from dataclasses import dataclass


def surge_count(max_surge: int | str, replicas: int) -> int:
    """maxSurge as a pod count: an int as is, a percent of replicas rounded up, at least 1 pod.

    replicas 10, "25%"  -> ceil(2.5) = 3
    replicas 1,  "1%"   -> ceil(0.01) = 1
    replicas 0,  "100%" -> 0 (nothing to surge)
    """
    if replicas == 0:
        return 0
    if isinstance(max_surge, int):
        count = max_surge
    elif max_surge.endswith("%") and max_surge[:-1].isdigit():
        count = -(-replicas * int(max_surge[:-1]) // 100)
    elif max_surge.isdigit():
        count = int(max_surge)
    else:
        raise ValueError(f"maxSurge must be an integer or a percent like '25%', got {max_surge!r}")
    return max(count, 1)


def ready_threshold(replicas: int, min_ready_percent: int) -> int:
    """Ready target pods needed before cutover: minReadyPercent of replicas, rounded up.

    replicas 10, 90% -> 9
    replicas 1,  99% -> ceil(0.99) = 1 (never cut over to zero ready pods)
    replicas 3,  50% -> ceil(1.5) = 2
    """
    return -(-replicas * min_ready_percent // 100)


def target_size(replicas: int, surge: int, current: int, old_pods: int) -> int:
    """The target ReplicaSet's size: as large as the surge bound lets it be, never above replicas.

    Never shrinks below its current size except when replicas itself went down: pods already started
    are not thrown away because old pods came back.
        replicas 10, surge 10, old 10 -> min(10, 20 - 10) = 10 (bulk: all at once)
        replicas 10, surge 3,  old 10 -> min(10, 13 - 10) = 3  (first wave)
        replicas 10, surge 3,  old 7, current 3 -> 6           (second wave)
    """
    return max(0, min(replicas, max(current, replicas + surge - old_pods)))


@dataclass(frozen=True)
class OldShare:
    """One old revision's part in a wave: its size before shrinking and its Ready pods."""

    revision: str
    size: int
    ready: int


def shrink_old(shares: Sequence[OldShare], excess: int, spare_ready: int) -> dict[str, int]:
    """New sizes of old ReplicaSets after removing up to `excess` pods without losing capacity.

    Shares are taken in order (superseded revisions first, the stable one last). A ReplicaSet that
    shrinks loses its not-Ready pods first (the ReplicaSet controller ranks not-ready pods first for
    deletion), so those cost no capacity; Ready pods may go only while `spare_ready` (Ready old pods
    beyond what keeps capacity at replicas) lasts.
        replicas 10, surge 3, so excess 10 - 3 = 7 (stable asked at 10):
        target ready 0, stable 10 Ready: spare 10 - 10 = 0                          -> stable 10
        target ready 3, stable 10 Ready: spare 10 - 7 = 3                           -> stable 7
        target ready 6, stable 7 Ready: 3 missing pods are free, spare 7 - 4 = 3    -> stable 4
    """
    sizes: dict[str, int] = {}
    for share in shares:
        not_ready = max(0, share.size - share.ready)
        ready_cut = min(spare_ready, share.size - not_ready)
        cut = min(max(excess, 0), not_ready + ready_cut)
        spare_ready -= max(0, cut - not_ready)
        excess -= cut
        sizes[share.revision] = share.size - cut
    return sizes
