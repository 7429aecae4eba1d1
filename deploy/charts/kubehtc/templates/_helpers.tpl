{{/* Name prefix of every object. */}}
{{- define "kubehtc.fullname" -}}
{{- .Values.fullnameOverride | default "kubehtc" | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; call with (dict "ctx" $ "component" "scheduler"). */}}
{{- define "kubehtc.labels" -}}
app.kubernetes.io/name: {{ include "kubehtc.fullname" .ctx }}-{{ .component }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: kubehtc
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Values.managedBy | default .ctx.Release.Service }}
helm.sh/chart: {{ .ctx.Chart.Name }}-{{ .ctx.Chart.Version }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels (stable across upgrades); call like kubehtc.labels. */}}
{{- define "kubehtc.selector" -}}
app.kubernetes.io/name: {{ include "kubehtc.fullname" .ctx }}-{{ .component }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end -}}

{{/* Image of a binary; call with (dict "ctx" $ "binary" "kubehtc-scheduler" "values" .Values.scheduler.image). */}}
{{- define "kubehtc.image" -}}
{{- $repo := .values.repository | default (printf "%s/%s" .ctx.Values.image.registry .binary) -}}
{{- $tag := .values.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* Pod-level fields shared by the Deployments; call with (dict "ctx" $ "values" .Values.scheduler). */}}
{{- define "kubehtc.podCommon" -}}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets: {{ toYaml . | nindent 2 }}
{{- end }}
{{- if .ctx.Values.priorityClasses.create }}
priorityClassName: {{ .ctx.Values.priorityClasses.services.name }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  seccompProfile: {type: RuntimeDefault}
{{- with .values.nodeSelector }}
nodeSelector: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Container securityContext of the Deployments (the node DaemonSets are privileged by necessity). */}}
{{- define "kubehtc.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end -}}

{{/* A PodDisruptionBudget; call with (dict "ctx" $ "component" "scheduler" "values" .Values.scheduler). */}}
{{- define "kubehtc.pdb" -}}
{{- if and .values.pdb.enabled (gt (int .values.replicas) 1) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "kubehtc.fullname" .ctx }}-{{ .component }}
  namespace: {{ .ctx.Release.Namespace }}
  labels: {{- include "kubehtc.labels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
spec:
  maxUnavailable: {{ .values.pdb.maxUnavailable }}
  selector:
    matchLabels: {{- include "kubehtc.selector" (dict "ctx" .ctx "component" .component) | nindent 6 }}
{{- end }}
{{- end -}}

{{/* A ServiceMonitor; call with (dict "ctx" $ "component" "controller" "port" "metrics" "scheme" "http"). */}}
{{- define "kubehtc.serviceMonitor" -}}
{{- if .ctx.Values.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "kubehtc.fullname" .ctx }}-{{ .component }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "kubehtc.labels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
    {{- with .ctx.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels: {{- include "kubehtc.selector" (dict "ctx" .ctx "component" .component) | nindent 6 }}
  endpoints:
  - port: {{ .port }}
    interval: {{ .ctx.Values.serviceMonitor.interval }}
    scheme: {{ .scheme }}
    {{- if eq .scheme "https" }}
    # kube-scheduler's secure port: Prometheus authenticates with its token and needs get on /metrics.
    bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
    tlsConfig: {insecureSkipVerify: true}
    {{- end }}
{{- end }}
{{- end -}}

{{/* The scheduler's KubeSchedulerConfiguration: files/kubehtc-scheduler-config.yaml (the repository's
scheduler/kubehtc-scheduler-config.yaml) with leader election on; a second scheduler serves only the
kubehtc profile. */}}
{{- define "kubehtc.schedulerConfig" -}}
{{- if .Values.scheduler.configOverride -}}
{{- .Values.scheduler.configOverride -}}
{{- else -}}
{{- $cfg := .Files.Get "files/kubehtc-scheduler-config.yaml" | fromYaml -}}
{{- if hasKey $cfg "Error" }}{{ fail (printf "files/kubehtc-scheduler-config.yaml: %s" $cfg.Error) }}{{ end -}}
{{- $name := printf "%s-scheduler" (include "kubehtc.fullname" .) -}}
{{- if eq .Values.scheduler.mode "replace" -}}
{{- $_ := set $cfg "leaderElection" (dict "leaderElect" true "resourceNamespace" "kube-system" "resourceName" "kube-scheduler") -}}
{{- else -}}
{{- $_ := set $cfg "leaderElection" (dict "leaderElect" true "resourceNamespace" .Release.Namespace "resourceName" $name) -}}
{{- $profiles := list -}}
{{- range $cfg.profiles -}}
{{- if ne .schedulerName "default-scheduler" }}{{ $profiles = append $profiles . }}{{ end -}}
{{- end -}}
{{- $_ := set $cfg "profiles" $profiles -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
{{- end -}}
