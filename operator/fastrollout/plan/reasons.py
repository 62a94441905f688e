"""Condition types, condition reasons and event reasons: the words people grep for, defined once.

Reasons are CamelCase like Kubernetes' own (Deployment: NewReplicaSetAvailable, ProgressDeadlineExceeded).
"""

from typing import Final

TRUE: Final = "True"
FALSE: Final = "False"
UNKNOWN: Final = "Unknown"

# Condition types, in the order status lists them.
PROGRESSING: Final = "Progressing"
AVAILABLE: Final = "Available"
TRAFFIC_STOPPED: Final = "TrafficStopped"
DRAINED: Final = "Drained"
# kstatus' two abnormal-true conditions (sigs.k8s.io/cli-utils/pkg/kstatus/status), read by Flux,
# Helm 4 --wait and cli-utils: Reconciling True -> InProgress, Stalled True -> Failed, neither -> Current.
# Both carry Progressing's reason and message; only their status says something new.
RECONCILING: Final = "Reconciling"
STALLED: Final = "Stalled"

# Progressing
ROLLOUT_PROGRESSING: Final = "RolloutProgressing"  # True: new pods starting, old ones still serving
NEW_PODS_NOT_IN_SERVICE: Final = "NewPodsNotInService"  # True: new pods Ready, not behind the Service
# True: cutover ServiceSelector refused, the Service also routes to pods that are not the fleet's
SERVICE_SHARED: Final = "ServiceShared"
# The Progressing reasons that name a Service to fix (each posts one Warning event when it starts).
SERVICE_MISCONFIGURED: Final = frozenset({NEW_PODS_NOT_IN_SERVICE, SERVICE_SHARED})
WAITING_FOR_TRAFFIC_STOP: Final = "WaitingForTrafficStop"  # True: cut over, old pods still serving
WAITING_FOR_DRAIN: Final = "WaitingForDrain"  # True: traffic stopped, completeWhen is Drained
ROLLOUT_COMPLETE: Final = "RolloutComplete"  # False: nothing left to do
ROLLOUT_PAUSED: Final = "RolloutPaused"  # Unknown: spec.paused
PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"  # False: failed
NEW_PODS_CRASHING: Final = "NewPodsCrashing"  # False: failed
ROLLOUT_FAILED: Final = "RolloutFailed"  # False: failed, the specific reason no longer known
FAILURE_REASONS: Final = frozenset({PROGRESS_DEADLINE_EXCEEDED, NEW_PODS_CRASHING, ROLLOUT_FAILED})

# ReplicaFailure (like the Deployment controller's): present only while True.
REPLICA_FAILURE: Final = "ReplicaFailure"
FAILED_CREATE: Final = "FailedCreate"  # the API refused a ReplicaSet create
FAILED_SCALE: Final = "FailedScale"
FAILED_DELETE: Final = "FailedDelete"
REPLICA_SET_COLLISION: Final = "ReplicaSetCollision"  # the name is taken by a ReplicaSet we do not own
FAILED_UPDATE: Final = "FailedUpdate"  # the API refused the Service's pin or the FastRollout's finalizer
API_FAILURE_REASONS: Final = frozenset(
    {FAILED_CREATE, FAILED_SCALE, FAILED_DELETE, REPLICA_SET_COLLISION, FAILED_UPDATE}
)
FOREIGN_PODS: Final = "ForeignPods"  # pods carry our labels but another controller owns them

# Available
MINIMUM_REPLICAS_AVAILABLE: Final = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE: Final = "MinimumReplicasUnavailable"

# TrafficStopped and Drained
NOT_CUT_OVER: Final = "NotCutOver"
OLD_PODS_SERVING: Final = "OldPodsServing"
OLD_PODS_NOT_SERVING: Final = "OldPodsNotServing"
OLD_PODS_RUNNING: Final = "OldPodsRunning"
OLD_PODS_GONE: Final = "OldPodsGone"

# Events (Kubernetes Event reasons)
EVENT_NEW_VERSION: Final = "NewVersion"
EVENT_SUPERSEDED: Final = "Superseded"
EVENT_CUT_OVER: Final = "CutOver"
EVENT_COMPLETE: Final = "RolloutComplete"  # a target that took over with nothing older running
EVENT_TRAFFIC_STOPPED: Final = "TrafficStopped"
EVENT_DRAINED: Final = "Drained"
EVENT_FAILED: Final = "RolloutFailed"
EVENT_ROLLED_BACK: Final = "RolledBack"
EVENT_INVALID_SPEC: Final = "InvalidSpec"  # a stored spec the models refuse (admission was bypassed)
# Warning events NewPodsNotInService and ServiceShared: the Progressing reason of SERVICE_MISCONFIGURED.
# A refused API call posts its ReplicaFailure reason (FailedCreate, ...) as a Warning event.
