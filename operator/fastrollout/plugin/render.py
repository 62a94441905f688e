"""Tables for `get` and `history`, in kubectl's plain column style. Pure."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fastrollout.plugin.undo import Kept


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by three spaces, as kubectl prints them."""
    cells = [list(header), *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def versions_table(obj: Mapping[str, Any]) -> str:
    """One summary line, then one row per version in status.versions (target first)."""
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name", "")
    summary = (
        f"{name}: version {status.get('version')}, phase {status.get('phase') or 'Pending'}, "
        f"desired {spec.get('replicas', 1)}, stable {status.get('stableVersion') or '-'}"
    )
    target = status.get("version")
    rows = [
        (
            v.get("version", ""),
            "target" if v.get("version") == target else "old",
            v.get("replicaSet", ""),
            v.get("replicas", 0),
            v.get("readyReplicas", 0),
            v.get("servingReplicas", 0),
            v.get("drainingReplicas", 0),
        )
        for v in status.get("versions") or []
    ]
    header = ("VERSION", "ROLE", "REPLICASET", "PODS", "READY", "SERVING", "DRAINING")
    return summary + "\n" + table(header, rows)


def history_table(kept: Sequence[Kept], target_revision: str | None, stable_revision: str | None) -> str:
    """Oldest first (unknown creation first), like kubectl rollout history; CURRENT names the target
    and the stable revision."""

    def current(k: Kept) -> str:
        roles = [
            r for r, rev in (("target", target_revision), ("stable", stable_revision)) if rev == k.revision
        ]
        return ",".join(roles)

    rows = [
        (k.version, k.revision, k.replica_set, _time(k.created), k.replicas, current(k))
        for k in sorted(kept, key=lambda k: (k.created is not None, k.created or datetime.min, k.replica_set))
    ]
    return table(("VERSION", "REVISION", "REPLICASET", "CREATED", "REPLICAS", "CURRENT"), rows)


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else "-"
