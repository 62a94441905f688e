"""What `history` lists and where `undo` goes, from the ReplicaSets the revision history keeps. Pure.

Each ReplicaSet the operator made carries, in the annotation fastrollout.io/source, the exact spec
fields its revision hashes (template, version, effective drain). Undo puts those back, so the new
target is that same revision and the operator reuses the kept ReplicaSet (scaled up, no new name).
"""

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastrollout.plugin.names import ANNOTATION_SOURCE, LABEL_REVISION, LABEL_VERSION

DEFAULT_GRACE_SECONDS = 600  # fastrollout.api.constants.DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS


class UndoError(Exception):
    """No revision to go back to, or one that cannot be restored exactly."""


@dataclass(frozen=True)
class Kept:
    """One ReplicaSet of a FastRollout (owned by it), as history shows it."""

    replica_set: str
    revision: str
    version: str
    replicas: int
    created: datetime | None
    source: Mapping[str, Any] | None  # the parsed fastrollout.io/source annotation; None if absent


def kept_from(replica_sets: Iterable[Mapping[str, Any]], uid: str) -> list[Kept]:
    """The ReplicaSets whose controller is the FastRollout with `uid` (labels alone prove nothing)."""
    out = []
    for rs in replica_sets:
        metadata = rs.get("metadata") or {}
        owners = metadata.get("ownerReferences") or []
        if not any(o.get("controller") and o.get("uid") == uid for o in owners):
            continue
        labels = metadata.get("labels") or {}
        out.append(
            Kept(
                replica_set=str(metadata.get("name", "")),
                revision=str(labels.get(LABEL_REVISION, "")),
                version=str(labels.get(LABEL_VERSION, "")),
                replicas=int((rs.get("spec") or {}).get("replicas") or 0),
                created=_parse_time(metadata.get("creationTimestamp")),
                source=_parse_source((metadata.get("annotations") or {}).get(ANNOTATION_SOURCE)),
            )
        )
    return out


def choose(kept: Iterable[Kept], current_revision: str | None, to_version: str | None) -> Kept:
    """The revision undo returns to.

    --to-version V: the newest kept ReplicaSet of version V. Without it: the newest kept one other than
    the current target, i.e. the previous version (after an undo, undo again goes forward, as kubectl
    rollout undo does).
        kept v1 (09:00), v2 (10:00), v3 (11:00), target v3 -> v2; --to-version v1 -> v1
    """
    candidates = sorted(kept, key=lambda k: (k.created or datetime.min.replace(tzinfo=UTC), k.replica_set))
    if to_version is not None:
        matching = [k for k in candidates if k.version == to_version]
        if not matching:
            versions = ", ".join(sorted({k.version for k in candidates})) or "none"
            raise UndoError(f"version {to_version} is not in the revision history (kept: {versions})")
        return matching[-1]
    others = [k for k in candidates if k.revision != current_revision]
    if not others:
        raise UndoError("no previous version in the revision history (spec.revisionHistoryLimit)")
    return others[-1]


def restored_spec(spec: Mapping[str, Any], chosen: Kept) -> dict[str, Any]:
    """`spec` with the chosen revision's template, version and drain put back; the rest untouched.

    Drain values are written only where the current spec would give a different effective value
    (a grace period left to the template stays left to it when the template carries the same one).
    """
    source = chosen.source
    if source is None or not isinstance(source.get("template"), Mapping):
        raise UndoError(
            f"ReplicaSet {chosen.replica_set} has no {ANNOTATION_SOURCE} annotation "
            "(made by an operator before revision history): re-apply its template instead"
        )
    new = copy.deepcopy(dict(spec))
    new["template"] = copy.deepcopy(dict(source["template"]))
    if source.get("version") is None:
        new.pop("version", None)
    else:
        new["version"] = source["version"]
    drain = dict(new.get("drain") or {})
    wanted = source.get("drain") or {}
    sleep = wanted.get("preStopSleepSeconds")
    if sleep is not None and drain.get("preStopSleepSeconds", 5) != sleep:
        drain["preStopSleepSeconds"] = sleep
    grace = wanted.get("terminationGracePeriodSeconds")
    if grace is not None and _effective_grace(drain, new["template"]) != grace:
        drain["terminationGracePeriodSeconds"] = grace
    new["drain"] = drain
    return new


def _effective_grace(drain: Mapping[str, Any], template: Mapping[str, Any]) -> int:
    """As FastRolloutSpec.termination_grace_period_seconds(): drain, else the template's, else 600."""
    if isinstance(drain.get("terminationGracePeriodSeconds"), int):
        return int(drain["terminationGracePeriodSeconds"])
    value = (template.get("spec") or {}).get("terminationGracePeriodSeconds")
    return value if isinstance(value, int) else DEFAULT_GRACE_SECONDS


def _parse_source(text: object) -> Mapping[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, Mapping) else None


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
