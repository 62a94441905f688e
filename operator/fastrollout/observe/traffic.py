"""How "receives new traffic" is judged: a small protocol, one implementation per module.

`judge_for()` picks the implementation a FastRollout asks for: with `spec.serviceName` the Service's
EndpointSlices decide (`traffic_endpoints`), without it the pod's own state does (`traffic_pods`).
"""

from typing import Protocol

from fastrollout.observe.records import PodRecord


class TrafficJudge(Protocol):
    def serving(self, pod: PodRecord) -> bool:
        """True while the pod can still be sent a new request."""
        ...
