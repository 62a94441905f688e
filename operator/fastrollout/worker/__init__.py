"""Drain-safe single-request workers, standard library only.

A worker built on this serves one request at a time on its port (others wait in the kernel's accept
queue, never refused), answers probes and scrapes on a second port that never waits behind that
request, and on SIGTERM turns not-ready, finishes what it accepted and exits 0 within a deadline.
That is the contract fastrollout relies on to roll thousands of pods without failing a request;
``docs/worker-contract.md`` gives it for any language.

    from fastrollout.worker import Request, Response, serve

    def handle(request: Request) -> Response:
        return Response(200, {"Content-Type": "text/plain"}, b"hello\\n")

    serve(handle, version="1.2.3", port=8080, metrics_port=9090)

``python -m fastrollout.worker`` runs the reference worker used by the project's tests.
"""

from fastrollout.worker.protocol import Handler, Request, Response, json_response, text_response
from fastrollout.worker.server import EXIT_DEADLINE, serve

__all__ = [
    "EXIT_DEADLINE",
    "Handler",
    "Request",
    "Response",
    "json_response",
    "serve",
    "text_response",
]
