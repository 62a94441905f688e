"""Traffic judged from the EndpointSlices of `spec.serviceName`, the same signal kube-proxy uses.

A pod receives new traffic while an endpoint of the Service targeting it has `conditions.ready` true
(absent counts as true, per the EndpointSlice API). The EndpointSlice controller sets `ready` false as soon
as the pod is terminating (and keeps `serving` = the pod's readiness, with `terminating` true), so a
terminating pod normally stops receiving new connections once kube-proxy has applied that change.

The one exception is kube-proxy's terminating-endpoint fallback (KEP-1669, on by default since 1.28):
when a Service has NO ready endpoint, kube-proxy sends traffic to endpoints that are `serving` and
`terminating` rather than drop it. So when no endpoint of the Service is ready, every serving
terminating endpoint counts as receiving traffic here too. For `externalTrafficPolicy: Local` /
`internalTrafficPolicy: Local` kube-proxy applies that fallback per node; this judge applies it to the
whole Service, which only differs when some nodes have ready endpoints and others have none.

Propagation lag is not modelled: kube-proxy (and any other dataplane) applies a slice change some
milliseconds to seconds after the API shows it. That is what the injected preStop sleep covers.
A pod with no endpoint in the Service (not selected, or not yet added) receives no traffic. An endpoint
whose pod is already deleted still counts while it is ready: with `publishNotReadyAddresses` the pod and
its ready endpoint can vanish in either order, and kube-proxy routes by the endpoint.
"""

from collections.abc import Collection, Mapping, Set

from fastrollout.observe.records import EndpointState, PodRecord


class EndpointSliceJudge:
    def __init__(self, endpoints: Mapping[str, EndpointState]) -> None:
        """`endpoints`: every endpoint of the Service by pod name, merged over its slices."""
        self._endpoints = endpoints
        self._fallback = not any(state.ready for state in endpoints.values())

    def serving(self, pod: PodRecord) -> bool:
        state = self._endpoints.get(pod.name)
        return state is not None and self._routed(state)

    def serving_without_pod(self, known: Set[str]) -> Collection[str]:
        return [name for name, state in self._endpoints.items() if name not in known and self._routed(state)]

    def _routed(self, state: EndpointState) -> bool:
        """Whether kube-proxy sends new connections to this endpoint."""
        if state.ready:
            return True
        return self._fallback and state.serving and state.terminating
