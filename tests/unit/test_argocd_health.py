"""The Argo CD health check in docs/argocd-health.lua, run by a real Lua against the planner's status
samples (tests/unit/plan/status_samples.py), and the copy of it in docs/gitops.md kept identical.

Argo CD runs health checks in gopher-lua, a Lua 5.1 with the base, table, string and math libraries and
`obj` (the live object, converted from JSON) as a global; lupa's Lua 5.1 with the rest removed is that.
"""

import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.unit.plan.status_samples import samples

lua51 = pytest.importorskip("lupa.lua51")

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCRIPT = (DOCS / "argocd-health.lua").read_text()

EXPECTED = {
    "progressing": "Progressing",
    "paused": "Suspended",
    "complete": "Healthy",
    "failed": "Degraded",
    "rolled-back": "Degraded",
    "generation-not-observed": "Progressing",
    "no-status-yet": "Progressing",
}
SAMPLES = samples()


def health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    for unsafe in ("os", "io", "debug", "package", "require", "dofile", "loadfile", "load", "loadstring"):
        lua.globals()[unsafe] = None
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return result["status"], result["message"]


@pytest.mark.parametrize("sample", EXPECTED)
def test_health_of_each_phase(sample: str) -> None:
    status, message = health(SAMPLES[sample])
    assert status == EXPECTED[sample], message
    assert message


def test_degraded_says_why() -> None:
    _, message = health(SAMPLES["rolled-back"])
    assert "progress deadline" in message, message
    assert "rolled back" in message, message


def test_a_complete_status_of_an_older_generation_is_not_healthy() -> None:
    obj = SAMPLES["complete"]
    assert health(obj)[0] == "Healthy"
    unobserved = {**obj, "status": {k: v for k, v in obj["status"].items() if k != "observedGeneration"}}
    assert health(unobserved)[0] == "Progressing"


def test_gitops_doc_carries_the_script_verbatim() -> None:
    """docs/gitops.md's argocd-cm snippet is the script, indented under the key."""
    doc = (DOCS / "gitops.md").read_text()
    key = "resource.customizations.health.fastrollout.io_FastRollout: |\n"
    assert key in doc
    block = doc.split(key, 1)[1].split("```", 1)[0]
    indent = re.match(r" *", block).group(0)  # type: ignore[union-attr]
    assert len(indent) > 2
    embedded = "".join(line.removeprefix(indent) + "\n" for line in block.rstrip("\n").split("\n"))
    assert embedded == SCRIPT
