{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "aether-devhot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of every object: the release name when it already holds the chart
name (so release "aether-devhot" gives "aether-devhot", the names the
reference webhook configuration in test/testdata uses), else release-chart.
*/}}
{{- define "aether-devhot.fullname" -}}
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

{{- define "aether-devhot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object of the webhook. */}}
{{- define "aether-devhot.labels" -}}
helm.sh/chart: {{ include "aether-devhot.chart" . }}
{{ include "aether-devhot.selectorLabels" . }}
{{ include "aether-devhot.versionLabels" . }}
{{- end }}

{{/* Labels of every object of the artifact store. */}}
{{- define "aether-devhot.storeLabels" -}}
helm.sh/chart: {{ include "aether-devhot.chart" . }}
{{ include "aether-devhot.storeSelectorLabels" . }}
{{ include "aether-devhot.versionLabels" . }}
{{- end }}

{{- define "aether-devhot.versionLabels" -}}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "aether-devhot.instanceLabels" -}}
app.kubernetes.io/name: {{ include "aether-devhot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels that select the manager's pods; they never change on upgrade. */}}
{{- define "aether-devhot.selectorLabels" -}}
{{ include "aether-devhot.instanceLabels" . }}
app.kubernetes.io/component: webhook
{{- end }}

{{/* Labels that select the store's pod; they never change on upgrade. */}}
{{- define "aether-devhot.storeSelectorLabels" -}}
{{ include "aether-devhot.instanceLabels" . }}
app.kubernetes.io/component: store
{{- end }}

{{/*
The store's Deployment, Service and PVC. With the default release
(aether-devhot) it is "aether-devhot-store", the Service that
`kubectl devhot push` proxies to by default.
*/}}
{{- define "aether-devhot.storeName" -}}
{{- printf "%s-store" (include "aether-devhot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The store's root URL as the pods reach it: the webhook's --store-url (the
fetchers' store tokens are bound to it, and sent there only) and the
store's --audience. The default is the URL `kubectl devhot push` writes
into aether.dev/artifact-url by default.
*/}}
{{- define "aether-devhot.storeURL" -}}
{{- default (printf "http://%s.%s.svc" (include "aether-devhot.storeName" .) .Release.Namespace) .Values.store.url }}
{{- end }}

{{- define "aether-devhot.serviceAccountName" -}}
{{- default (include "aether-devhot.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* The manager image, tag defaulting to the chart's appVersion. */}}
{{- define "aether-devhot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The injected fetcher's image: the manager's own unless set. */}}
{{- define "aether-devhot.fetcherImage" -}}
{{- default (include "aether-devhot.image" .) .Values.fetcherImage }}
{{- end }}

{{/* The store's image: the manager's own unless set. */}}
{{- define "aether-devhot.storeImage" -}}
{{- default (include "aether-devhot.image" .) .Values.store.image }}
{{- end }}

{{/* The Secret with the serving certificate. */}}
{{- define "aether-devhot.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "aether-devhot.fullname" .)) .Values.certs.existingSecret }}
{{- end }}

{{/* The serving Certificate, named in the inject-ca-from annotation. */}}
{{- define "aether-devhot.servingCertName" -}}
{{- printf "%s-serving" (include "aether-devhot.fullname" .) }}
{{- end }}
