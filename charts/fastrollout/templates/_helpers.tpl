{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "fastrollout.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: the release name, plus the chart name unless the release name contains it.
*/}}
{{- define "fastrollout.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "fastrollout.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object of the chart.
*/}}
{{- define "fastrollout.labels" -}}
helm.sh/chart: {{ include "fastrollout.chart" . }}
{{ include "fastrollout.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: stable for the life of a release (a Deployment's selector is immutable).
*/}}
{{- define "fastrollout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fastrollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Name of the operator's ServiceAccount.
*/}}
{{- define "fastrollout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fastrollout.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Operator image reference: repository plus digest, else tag (default: the chart's appVersion).
*/}}
{{- define "fastrollout.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Name of the metrics Service.
*/}}
{{- define "fastrollout.metricsServiceName" -}}
{{- printf "%s-metrics" (include "fastrollout.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Restricted security context of every container the chart runs (the operator and the chart test).
*/}}
{{- define "fastrollout.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Pod security context of every pod the chart runs.
*/}}
{{- define "fastrollout.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Checks across values that values.schema.json cannot express; rendered (as nothing) by the Deployment.
The operator binds both ports on all addresses: equal ones would fail at start with "address in use"
after the pod was scheduled, so say it at install time instead.
*/}}
{{- define "fastrollout.validateValues" -}}
{{- if eq (int .Values.health.port) (int .Values.metrics.port) }}
{{- fail (printf "health.port and metrics.port are both %d: the operator serves /healthz and /readyz on one port and /metrics on another; set them apart" (int .Values.health.port)) }}
{{- end }}
{{- end }}
