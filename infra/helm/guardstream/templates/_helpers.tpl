{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "guardstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart unless the release already contains it. */}}
{{- define "guardstream.fullname" -}}
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

{{- define "guardstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "guardstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "guardstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "guardstream.labels" -}}
helm.sh/chart: {{ include "guardstream.chart" . }}
{{ include "guardstream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "guardstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "guardstream.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the pods read with envFrom, or "" when there is none. */}}
{{- define "guardstream.secretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else if .Values.secret.create }}
{{- include "guardstream.fullname" . }}
{{- end }}
{{- end }}

{{- define "guardstream.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* KEDA's name for the worker's SASL mechanism. */}}
{{- define "guardstream.kedaSasl" -}}
{{- $m := .Values.kafka.saslMechanism | upper }}
{{- if eq $m "PLAIN" }}plaintext
{{- else if eq $m "SCRAM-SHA-256" }}scram_sha256
{{- else if eq $m "SCRAM-SHA-512" }}scram_sha512
{{- else if eq $m "OAUTHBEARER" }}oauthbearer
{{- else }}none
{{- end }}
{{- end }}

{{/*
Render-time checks: a bad combination fails `helm template/install` with a message
instead of producing pods that cannot work.
*/}}
{{- define "guardstream.validate" -}}
{{- $v := .Values }}
{{- if le (float64 $v.terminationGracePeriodSeconds) (float64 $v.shutdownTimeoutSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed shutdownTimeoutSeconds (%v): the kubelet kills the worker after the grace period, mid-drain" $v.terminationGracePeriodSeconds $v.shutdownTimeoutSeconds) }}
{{- end }}
{{- $partitions := int $v.kafka.inputPartitions }}
{{- if gt $partitions 0 }}
{{- if and $v.autoscaling.keda.enabled (gt (int $v.autoscaling.keda.maxReplicaCount) $partitions) }}
{{- fail (printf "autoscaling.keda.maxReplicaCount (%v) exceeds kafka.inputPartitions (%v): extra pods get no partition but hold a GPU" $v.autoscaling.keda.maxReplicaCount $partitions) }}
{{- end }}
{{- if and (not $v.autoscaling.keda.enabled) (gt (int $v.replicaCount) $partitions) }}
{{- fail (printf "replicaCount (%v) exceeds kafka.inputPartitions (%v)" $v.replicaCount $partitions) }}
{{- end }}
{{- end }}
{{- if and $v.autoscaling.keda.enabled (gt (int $v.autoscaling.keda.minReplicaCount) (int $v.autoscaling.keda.maxReplicaCount)) }}
{{- fail "autoscaling.keda.minReplicaCount must not exceed maxReplicaCount" }}
{{- end }}
{{- $gpu := index (default dict $v.resources.limits) "nvidia.com/gpu" }}
{{- if and $gpu (ne (int $gpu) 1) }}
{{- fail "resources.limits.nvidia.com/gpu must be 1: the worker is one process per GPU (scale with replicas)" }}
{{- end }}
{{- if not (has $v.model.source (list "mounted" "hub")) }}
{{- fail "model.source must be 'mounted' or 'hub'" }}
{{- end }}
{{- if and (hasPrefix "SASL" $v.kafka.securityProtocol) (not $v.kafka.saslMechanism) }}
{{- fail "kafka.saslMechanism is required with a SASL_* securityProtocol" }}
{{- end }}
{{- range $key, $_ := $v.settings }}
{{- if hasPrefix "GUARDSTREAM_" $key }}
{{- fail (printf "settings.%s: give the key without the GUARDSTREAM_ prefix" $key) }}
{{- end }}
{{- end }}
{{- end }}
