"""How "receives new traffic" is judged: a small protocol, one implementation per module.

`judge_for()` picks the implementation a FastRollout asks for: with `spec.serviceName` the Service's
EndpointSlices decide (`traffic_endpoints`), without it the pod's own state does (`traffic_pods`).
"""

from collections.abc import Collection, Set
from typing import Protocol

from fastrollout.observe.records import PodRecord


class TrafficJudge(Protocol):
    def serving(self, pod: PodRecord) -> bool:
        """True while the pod can still be sent a new request."""
        ...

    def serving_without_pod(self, known: Set[str]) -> Collection[str]:
        """Names of pods not in `known` (already deleted, as far as the pod cache knows) that can still be
        sent a new request: their endpoint outlived them, as it does for the moment between a pod's
        deletion and the EndpointSlice controller's update."""
        ...
