"""The pure planner: (FastRollout, observed snapshot, now) -> actions and the new status.

No kopf, no Kubernetes client (an import-linter contract checks this): everything here is testable
with plain values. `decide` is the entry point; `revision_of` and `render_pod_template` are exported for
observe.py and apply.py, which must agree with the planner on names and labels.
"""

from fastrollout.plan.decide import decide
from fastrollout.plan.revision import render_pod_template, replica_set_name, revision_of

__all__ = ["decide", "render_pod_template", "replica_set_name", "revision_of"]
