{{/*
Every permission the operator has, in one place. Least privilege: each rule names the code that
needs it; nothing here is granted "just in case". tests/unit/test_chart.py asserts the rendered
rules equal this list exactly, so a change here is a change there too.

Two sets:
- fastrollout.rbac.namespacedRules: what the operator does inside a namespace it manages. Granted by
  the ClusterRole in cluster-wide mode (watchNamespaces empty), or by one Role per namespace in
  watchNamespaces mode.
- fastrollout.rbac.clusterRules: cluster-scoped discovery kopf does at start-up in both modes.
*/}}

{{- define "fastrollout.rbac.namespacedRules" -}}
# The FastRollout objects: kopf lists and watches them; the operator patches metadata (kopf's
# progress annotations and finalizer) but never creates, updates or deletes them.
- apiGroups: ["fastrollout.io"]
  resources: ["fastrollouts"]
  verbs: ["get", "list", "watch", "patch"]
# Status is written through the status subresource, one merge patch per change.
- apiGroups: ["fastrollout.io"]
  resources: ["fastrollouts/status"]
  verbs: ["get", "patch"]
# One ReplicaSet per version: created at full size, scaled by patch, deleted once it has no pods.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Pods: one label-selected list+watch (metadata and the fields the planner reads), and the cutover,
# which deletes every old pod in ONE DeleteCollection call. No single-pod delete, no pod writes.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "deletecollection"]
# EndpointSlices of spec.serviceName: "receives traffic" means a ready endpoint.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
# Kubernetes events for each rollout step (kopf posts core/v1 events; events.k8s.io for newer clients).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{- define "fastrollout.rbac.clusterRules" -}}
# kopf scans CRDs at start-up and watches them to know which resources it can serve.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
# kopf lists and watches namespaces to resolve the namespaces it serves.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
