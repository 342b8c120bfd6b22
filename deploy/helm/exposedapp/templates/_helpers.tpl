{{/*
Names. Kubernetes limits most names and every label value to 63 characters.
*/}}
{{- define "exposedapp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "exposedapp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Cluster-scoped objects are shared by all namespaces: the release namespace keeps two
releases of the same name apart.
*/}}
{{- define "exposedapp.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "exposedapp.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
A StatefulSet's Pods carry a controller-revision-hash label "<name>-<10 chars>", which must
fit in 63 characters too.
*/}}
{{- define "exposedapp.statefulSetName" -}}
{{- include "exposedapp.fullname" . | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "exposedapp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "exposedapp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "exposedapp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "exposedapp.peering" -}}
{{- if gt (int .Values.replicaCount) 1 -}}true{{- end -}}
{{- end -}}

{{- define "exposedapp.peeringName" -}}
{{- default (include "exposedapp.clusterName" .) .Values.peering.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "exposedapp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "exposedapp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "exposedapp.labels" -}}
helm.sh/chart: {{ include "exposedapp.chart" . }}
{{ include "exposedapp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: exposedapp
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
RBAC rules: exactly what the operator does. Every verb is traced to the code that uses it
(operator/exposedapp/runtime/client.py, handlers.py, and kopf). No secrets, no wildcards, no
pods/exec, no update of Pods or Services, no delete of ExposedApps.
*/}}
{{- define "exposedapp.rules.framework.clusterwide" -}}
# --- Framework (kopf) ---------------------------------------------------------------
# kopf watches CRDs to notice resources that appear or go while it runs. Without this it
# logs a warning and keeps the resources it found at start-up (the namespaced mode).
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end -}}

{{- define "exposedapp.rules.framework.peering" -}}
# --- Framework (kopf peering, replicaCount > 1) ---------------------------------------
# kopf lists and watches the peering objects, and merge-patches its keep-alive record into
# its own peering object. It never creates one: the chart does.
- apiGroups: ["kopf.dev"]
  resources: [{{ .resource | quote }}]
  verbs: ["list", "watch"]
- apiGroups: ["kopf.dev"]
  resources: [{{ .resource | quote }}]
  resourceNames: [{{ .name | quote }}]
  verbs: ["patch"]
{{- end -}}

{{- define "exposedapp.rules.application" -}}
# --- Application (the reconciler) -----------------------------------------------------
# ExposedApps: read through kopf's index (list + watch; kopf never GETs one object);
# never written, never deleted.
- apiGroups: ["exposedapp.dev"]
  resources: ["exposedapps"]
  verbs: ["list", "watch"]
# Status, conditions and the resolved port mapping: a JSON merge patch.
- apiGroups: ["exposedapp.dev"]
  resources: ["exposedapps/status"]
  verbs: ["patch"]
# Children carry ownerReferences with blockOwnerDeletion: true; where the
# OwnerReferencesPermissionEnforcement admission plugin is on, that needs this.
- apiGroups: ["exposedapp.dev"]
  resources: ["exposedapps/finalizers"]
  verbs: ["update"]
# Pods: watched (index), created by name, deleted with a UID precondition; get answers
# "whose is it?" after an AlreadyExists; patched (metadata only, a JSON merge patch with a
# UID precondition) to drain one: its app-uid label removed, the drain annotation added.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The Service: server-side apply (patch; creating through apply needs create too), get
# to see who owns a Service with our name, delete to switch to or from Headless.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Ready endpoints per port for status: watched (index), never written.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
# The rollout history: one ControllerRevision per template, created when its first Pods
# are (a metadata list of the app's revisions first, never watched), pruned past
# revisionHistoryLimit; never updated (their data is immutable).
- apiGroups: ["apps"]
  resources: ["controllerrevisions"]
  verbs: ["list", "create", "delete"]
# spec.disruptionBudget: the app's PodDisruptionBudget, server-side applied (patch;
# creating through apply needs create too), deleted when the spec drops it.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# spec.rolloutOnConfigChange: ConfigMaps watched, their data hashed (the data is not
# kept), never written. Secrets only with the secret-rollouts option (not here).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "watch"]
{{- if .Values.configRollout.secrets }}
# configRollout.secrets: Secrets watched for rolloutOnConfigChange, their data hashed (the
# data is not kept), never written. This grants reading every Secret in scope.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
{{- end }}
# The operator's own events (events.k8s.io/v1); kopf's event posting is off.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}
