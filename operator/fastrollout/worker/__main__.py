"""The reference worker: ``python -m fastrollout.worker``.

Each response names the version and pod that served it, so a load generator can prove which version
answered every request during a rollout; ``?sleep=SECONDS`` makes a request slow, to prove that
drains finish long requests. Environment:

    WORKER_VERSION          version to report (default "dev")
    POD_NAME                pod to report (default: the hostname); set it with the downward API
    PORT, METRICS_PORT      worker and probe/metrics ports (default 8080, 9090; 0 picks a free one)
    HOST                    address to listen on (default: all)
    WORKER_CRASH_ON_START=1 exit 1 at once, to test failed rollouts
    WORKER_DRAIN_DELAY_SECONDS, WORKER_DRAIN_DEADLINE_SECONDS, FASTROLLOUT_DRAIN_SECONDS,
    WORKER_HEADER_TIMEOUT_SECONDS, WORKER_BODY_TIMEOUT_SECONDS   see fastrollout.worker.server

It takes no arguments (a container is configured through its environment); ``--help`` prints this.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from http import HTTPStatus

from fastrollout.worker import Handler, Request, Response, json_response, serve

MAX_SLEEP_SECONDS = 3600.0


def make_handler(version: str, pod: str) -> Handler:
    """``/`` answers ``{"version", "pod", "sleep", "started", "finished"}`` (times in Unix seconds)."""

    def handle(request: Request) -> Response:
        if request.path != "/":
            return json_response(HTTPStatus.NOT_FOUND, {"error": "not found", "version": version, "pod": pod})
        try:
            sleep = float(request.query.get("sleep", "0"))
        except ValueError:
            sleep = -1.0
        if not 0 <= sleep <= MAX_SLEEP_SECONDS:
            return json_response(HTTPStatus.BAD_REQUEST, {"error": f"sleep must be 0..{MAX_SLEEP_SECONDS:g}"})
        started = time.time()
        time.sleep(sleep)
        payload = {
            "version": version,
            "pod": pod,
            "sleep": sleep,
            "started": started,
            "finished": time.time(),
        }
        return json_response(HTTPStatus.OK, payload)

    return handle


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m fastrollout.worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if os.environ.get("WORKER_CRASH_ON_START") == "1":
        logging.getLogger(__name__).error("WORKER_CRASH_ON_START=1: exiting 1 on purpose")
        return 1
    version = os.environ.get("WORKER_VERSION", "dev")
    pod = os.environ.get("POD_NAME") or socket.gethostname()
    serve(
        make_handler(version, pod),
        version=version,
        pod=pod,
        port=int(os.environ.get("PORT", "8080")),
        metrics_port=int(os.environ.get("METRICS_PORT", "9090")),
        host=os.environ.get("HOST") or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
