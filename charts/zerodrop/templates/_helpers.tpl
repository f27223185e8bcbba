{{- define "zerodrop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "zerodrop.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "zerodrop.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "zerodrop.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "zerodrop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zerodrop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "zerodrop.labels" -}}
{{ include "zerodrop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The TLS Secret: ours (selfManaged, certManager) or the user's (provided). */}}
{{- define "zerodrop.tlsSecret" -}}
{{- if eq .Values.certificates.mode "provided" -}}
{{- required "certificates.provided.secretName is required in provided mode" .Values.certificates.provided.secretName -}}
{{- else -}}
{{- printf "%s-tls" (include "zerodrop.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "zerodrop.serviceDNS" -}}
{{- printf "%s.%s.svc" (include "zerodrop.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* Grace period of our own pods: preStop sleep + shutdown delay + drain bound + margin. */}}
{{- define "zerodrop.grace" -}}
{{- add .Values.server.preStopSleepSeconds .Values.server.shutdownDelaySeconds .Values.server.shutdownTimeoutSeconds 5 -}}
{{- end -}}

{{/* caBundle for a webhook configuration: provided value, or (selfManaged) whatever zerodrop
     already patched in, so `helm upgrade` does not blank it. */}}
{{- define "zerodrop.caBundle" -}}
{{- $root := index . 0 -}}{{- $kind := index . 1 -}}
{{- if eq $root.Values.certificates.mode "provided" -}}
{{- required "certificates.provided.caBundle is required in provided mode" $root.Values.certificates.provided.caBundle -}}
{{- else if eq $root.Values.certificates.mode "selfManaged" -}}
{{- $existing := lookup "admissionregistration.k8s.io/v1" $kind "" (include "zerodrop.fullname" $root) -}}
{{- if $existing -}}{{- (index $existing.webhooks 0).clientConfig.caBundle | default "" -}}{{- end -}}
{{- end -}}
{{- end -}}

{{- define "zerodrop.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: zerodrop.dev/mode
      operator: In
      values: [enforce, audit]
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- toYaml (concat (list .Release.Namespace "kube-system") .Values.webhook.excludeNamespaces | uniq) | nindent 8 }}
{{- end -}}

{{/* Seconds of a simple duration value: 30s, 5m or 1h. */}}
{{- define "zerodrop.seconds" -}}
{{- $d := toString . -}}
{{- if hasSuffix "h" $d -}}{{- mul (trimSuffix "h" $d | int) 3600 -}}
{{- else if hasSuffix "m" $d -}}{{- mul (trimSuffix "m" $d | int) 60 -}}
{{- else -}}{{- trimSuffix "s" $d | int -}}
{{- end -}}
{{- end -}}
