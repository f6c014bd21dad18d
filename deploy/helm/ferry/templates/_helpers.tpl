{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "ferry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ferry.labels" -}}
{{ include "ferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ferry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The file store's claim when no bucket is used; fails the render for more than one replica on it. */}}
{{- define "ferry.fileStore" -}}
{{- if not .Values.storage.url -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- fail (printf "replicaCount is %d but storage.url is empty: the file store's volume can be mounted by one pod only; set storage.url to a bucket (s3://, gs://, az://) or replicaCount to 1" (int .Values.replicaCount)) -}}
{{- end -}}
{{- default (printf "%s-store" (include "ferry.fullname" .)) .Values.storage.persistence.existingClaim -}}
{{- end -}}
{{- end -}}

{{/* The scheme Ferry's own listener speaks: HTTPS with tls.secretName, for the probes. */}}
{{- define "ferry.scheme" -}}
{{- if .Values.tls.secretName -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}
