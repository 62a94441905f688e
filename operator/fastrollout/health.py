"""Liveness and readiness on the health port: `/healthz` is about the process, `/readyz` the watches.

    GET /healthz  200 while the event loop answers and every child watch thread runs (500 if one died);
                  body {"children_synced": bool} (every first list is in) for people and the benchmark
    GET /readyz   200 when every child watch is listed and current; 503 otherwise, naming each watch
                  that is not, with the API's message: {"ready": false, "watches": [{"kind": "pods",
                  "scope": "b", "synced": false, "failures": 7, "error": "Forbidden: pods is ..."}]}

Why two endpoints rather than kopf's one: a namespace whose Role was removed (403) can never be listed
until someone fixes RBAC. If that failed liveness, the kubelet would restart the operator again and
again, and every healthy namespace would stop with it, for a fault a restart cannot fix. So the fault
fails readiness only (the pod shows 0/1 Ready, `helm --wait` and `kubectl rollout status` say so), and
liveness stays about the process. kopf's own liveness endpoint answers 200 unless a probe raises, so it
could not say "not ready" without also saying "restart me".
"""

import json
from collections.abc import Callable, Sequence

from aiohttp import web

from fastrollout.observe import WatchHealth

HTTP_OK, HTTP_ERROR, HTTP_UNAVAILABLE = 200, 500, 503


def readiness(watches: Sequence[WatchHealth]) -> tuple[bool, dict[str, object]]:
    """Pure: whether the operator is ready, and the body that says why not."""
    behind = [watch for watch in watches if not watch.current]
    body: dict[str, object] = {
        "ready": not behind,
        "watches": [
            {
                "kind": watch.kind,
                "scope": watch.scope,
                "synced": watch.synced,
                "failures": watch.failures,
                "error": watch.error,
            }
            for watch in behind
        ],
    }
    return not behind, body


class HealthServer:
    """The two endpoints, served from the operator's event loop (so a stuck loop fails liveness)."""

    def __init__(
        self, port: int, watches: Callable[[], Sequence[WatchHealth]], threads_alive: Callable[[], bool]
    ) -> None:
        self._port = port
        self._watches = watches
        self._threads_alive = threads_alive
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.get("/healthz", self._healthz), web.get("/readyz", self._readyz)])
        # No access log: the kubelet probes every few seconds.
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "0.0.0.0", self._port).start()  # noqa: S104 -- kubelet probes

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        alive = self._threads_alive()
        synced = all(watch.synced for watch in self._watches())
        return _json(
            {"children_synced": synced, "watch_threads_alive": alive}, HTTP_OK if alive else HTTP_ERROR
        )

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready, body = readiness(self._watches())
        return _json(body, HTTP_OK if ready else HTTP_UNAVAILABLE)


def _json(body: dict[str, object], status: int) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")
