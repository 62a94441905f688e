"""The admin port: ``/readyz``, ``/livez`` and ``/metrics``.

These live on their own port with a thread per connection because the worker port is busy by
design: a probe queued behind a 20 s request would time out, and the kubelet would mark a healthy
pod unready (or kill it, for liveness).
"""

from __future__ import annotations

from http import HTTPStatus

from fastrollout.worker.protocol import Handler, Request, Response, text_response
from fastrollout.worker.state import WorkerState, render_metrics

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def probe_handler(state: WorkerState) -> Handler:
    """Route admin requests.

    * ``/readyz``: 200 while serving, 503 from the moment a termination signal arrives, so the
      endpoint turns ``serving=false`` and kube-proxy's fallback to terminating endpoints skips it.
      Readiness does not follow "busy": flapping readiness per request would churn EndpointSlices
      across the whole fleet, and busy workers queue rather than fail.
    * ``/livez``: 200 as long as this process answers, including while draining. A liveness failure
      gets the container killed, which would lose the request in flight.
    * ``/metrics``: Prometheus text.
    """

    def handle(request: Request) -> Response:
        snap = state.snapshot()
        if request.path == "/readyz":
            if snap.ready:
                return text_response(HTTPStatus.OK, "ready")
            return text_response(HTTPStatus.SERVICE_UNAVAILABLE, "draining" if snap.draining else "starting")
        if request.path == "/livez":
            return text_response(HTTPStatus.OK, "alive")
        if request.path == "/metrics":
            body = render_metrics(snap).encode()
            return Response(HTTPStatus.OK, {"Content-Type": METRICS_CONTENT_TYPE}, body)
        return text_response(HTTPStatus.NOT_FOUND, "try /readyz, /livez or /metrics")

    return handle
