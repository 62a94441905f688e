"""The plugin's only door to the API: pykube-ng over the user's kubeconfig.

pykube-ng, not the kubernetes client: a CLI pays import and first-request time on every run, and
bench/plugin_start.py measures pykube-ng well ahead on both (README, "kubectl plugin").
"""

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykube
import requests

from fastrollout.plugin.names import API_VERSION, LABEL_NAME, PLURAL

MERGE_PATCH = "application/merge-patch+json"
REQUEST_SECONDS = 30.0


class KubeError(Exception):
    """An API call failed: the API's own message, for the user."""


@dataclass
class Kube:
    """FastRollouts and their ReplicaSets in one namespace."""

    api: Any  # pykube.HTTPClient (untyped)
    namespace: str

    def get(self, name: str) -> dict[str, Any]:
        return self._call("get", url=f"{PLURAL}/{name}")

    def patch(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call(
            "patch", url=f"{PLURAL}/{name}", data=json.dumps(body), headers={"Content-Type": MERGE_PATCH}
        )

    def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """PUT with the object's resourceVersion: a concurrent edit fails (409) instead of being lost."""
        name = obj["metadata"]["name"]
        return self._call("put", url=f"{PLURAL}/{name}", data=json.dumps(obj))

    def replica_sets(self, name: str) -> list[dict[str, Any]]:
        found = self._call(
            "get", version="apps/v1", url="replicasets", params={"labelSelector": f"{LABEL_NAME}={name}"}
        )
        items: list[dict[str, Any]] = found.get("items") or []
        return items

    def watch(self, name: str, resource_version: str, seconds: float) -> Iterator[dict[str, Any]]:
        """The FastRollout's objects as they change, for at most `seconds` (the API ends the watch)."""
        params = {
            "watch": "true",
            "fieldSelector": f"metadata.name={name}",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(max(1, int(seconds))),
            "allowWatchBookmarks": "false",
        }
        try:
            response = self.api.get(
                version=API_VERSION,
                namespace=self.namespace,
                url=PLURAL,
                params=params,
                stream=True,
                timeout=(REQUEST_SECONDS, seconds + REQUEST_SECONDS),
            )
            self.api.raise_for_status(response)
            for line in response.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                if event.get("type") in ("ADDED", "MODIFIED") and isinstance(event.get("object"), dict):
                    yield event["object"]
                elif event.get("type") == "ERROR":  # e.g. 410 Gone: the caller lists again
                    return
        except (requests.RequestException, pykube.exceptions.PyKubeError) as error:
            raise KubeError(str(error)) from error

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("version", API_VERSION)
        kwargs.setdefault("namespace", self.namespace)
        kwargs.setdefault("timeout", REQUEST_SECONDS)
        try:
            response = getattr(self.api, method)(**kwargs)
            self.api.raise_for_status(response)
        except (requests.RequestException, pykube.exceptions.PyKubeError) as error:
            raise KubeError(_message(error)) from error
        body: dict[str, Any] = response.json()
        return body


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Kube:
    """The user's kubeconfig (--kubeconfig, else $KUBECONFIG's first existing file, else ~/.kube/config),
    its --context, and -n or the context's namespace."""
    try:
        config = pykube.KubeConfig.from_file(_kubeconfig_path(kubeconfig))
        if context:
            config.set_current_context(context)
        api = pykube.HTTPClient(config, timeout=REQUEST_SECONDS)
    except (pykube.exceptions.PyKubeError, KeyError, OSError) as error:
        raise KubeError(f"kubeconfig: {error}") from error
    return Kube(api=api, namespace=namespace or config.namespace or "default")


def _kubeconfig_path(flag: str | None) -> str:
    if flag:
        return flag
    # $KUBECONFIG may list several files; kubectl merges them, here the first existing one is used.
    for candidate in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if candidate and Path(candidate).expanduser().is_file():
            return candidate
    return str(Path("~/.kube/config").expanduser())


def _message(error: Exception) -> str:
    """pykube's HTTPError carries (code, the API's message); anything else, its text."""
    if isinstance(error, pykube.exceptions.HTTPError) and len(error.args) == 2:
        code, message = error.args
        return f"{message} (HTTP {code})"
    return str(error)
