{{/*
Every permission the operator has, in one place. Least privilege: each rule names the code that
needs it; nothing here is granted "just in case". tests/unit/test_chart.py asserts the rendered
rules equal this list exactly, so a change here is a change there too. The list was checked by running
the operator as a ServiceAccount with only these rules through whole rollouts (no 403).

They are granted by one ClusterRole in cluster-wide mode (watchNamespaces empty), or by one Role per
namespace in watchNamespaces mode. Nothing cluster-scoped is needed: kopf's CRD and namespace scanning is
off (handlers.py), and `fastrollout run` checks that the CRD is served through discovery, which every
authenticated client may read.
*/}}

{{- define "fastrollout.rbac.namespacedRules" -}}
# The FastRollout objects: kopf lists and watches them; the operator re-reads one before each pass.
# patch: only its own finalizer (server-side apply of metadata.finalizers), held while the Service's
# selector is pinned (strategy.cutover ServiceSelector), so deleting it unpins first. No kopf annotations.
- apiGroups: ["fastrollout.io"]
  resources: ["fastrollouts"]
  verbs: ["get", "list", "watch", "patch"]
# Status is written through the status subresource, one merge patch per change.
- apiGroups: ["fastrollout.io"]
  resources: ["fastrollouts/status"]
  verbs: ["patch"]
# ReplicaSets carry an owner reference with blockOwnerDeletion; clusters with the
# OwnerReferencesPermissionEnforcement admission plugin (OpenShift) require this to set it.
- apiGroups: ["fastrollout.io"]
  resources: ["fastrollouts/finalizers"]
  verbs: ["update"]
# One ReplicaSet per version: created at full size, scaled by patch, deleted once it has no pods.
# get: after AlreadyExists on create, to tell our own ReplicaSet (the watch lags) from a name collision.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Pods: one label-selected list+watch (the fields the planner reads), and the cutover, which deletes
# every old pod of a version in ONE DeleteCollection call. No single-pod delete, no pod writes.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "deletecollection"]
# EndpointSlices of spec.serviceName: "receives traffic" means a ready endpoint.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
# Services: when new pods are not behind spec.serviceName, status names what it selects on.
# patch: strategy.cutover ServiceSelector sets (and removes) the one selector key fastrollout.io/revision.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "patch"]
# core/v1 events for each rollout step (the operator's and kopf's own warnings).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{- define "fastrollout.rbac.leaseRules" -}}
# Leader election (leader.py): read the Lease, create it when absent, renew or take it over by an
# update carrying the resourceVersion read (optimistic concurrency). Granted by a Role in the release
# namespace only, whatever watchNamespaces says. No list/watch: the Lease is read by name.
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end }}
