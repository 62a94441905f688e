"""Names fixed by the API contract (DESIGN.md section 1): group, kind, labels."""

GROUP = "fastrollout.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "FastRollout"
PLURAL = "fastrollouts"
SINGULAR = "fastrollout"
SHORT_NAMES = ("fr",)
CATEGORIES = ("all",)

# Every ReplicaSet and pod the operator makes carries these three labels.
LABEL_NAME = f"{GROUP}/name"
LABEL_VERSION = f"{GROUP}/version"
LABEL_REVISION = f"{GROUP}/revision"

# Used when neither spec.drain nor the template sets a grace period: long enough for a slow request.
DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 600

# On each ReplicaSet: the canonical JSON of what its revision hashes (template, version, effective drain),
# so `kubectl fastrollout undo` can re-apply exactly that revision and the operator reuses its ReplicaSet.
ANNOTATION_SOURCE = f"{GROUP}/source"

# On a FastRollout while the Service's selector carries its pin (strategy.cutover ServiceSelector):
# deleting the FastRollout then removes the pin first, so the Service is not left selecting one
# revision that no longer exists.
FINALIZER = f"{GROUP}/service-selector"
