{{/*
Names, labels and the pieces every pod of the chart shares. Every role runs the same
image; what differs is in "pos-mesh.roles" below.
*/}}

{{- define "pos-mesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix of every object name. */}}
{{- define "pos-mesh.fullname" -}}
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

{{/* app.kubernetes.io/* labels of every object; pass (dict "root" $ "component" "edge"). */}}
{{- define "pos-mesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "pos-mesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: pos-mesh
{{- end -}}

{{/* What selects one component's pods: stable across upgrades. */}}
{{- define "pos-mesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pos-mesh.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "pos-mesh.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "pos-mesh.secretName" -}}
{{- default (include "pos-mesh.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "pos-mesh.configName" -}}
{{- include "pos-mesh.fullname" . -}}
{{- end -}}

{{- define "pos-mesh.serviceAccountName" -}}
{{- include "pos-mesh.fullname" . -}}
{{- end -}}

{{/* The port every role serves gRPC, grpc-web and health on. */}}
{{- define "pos-mesh.port" -}}8080{{- end -}}

{{/* Where a role is reached from inside the cluster: its Service. */}}
{{- define "pos-mesh.address" -}}
{{- printf "http://%s-%s:%s" (include "pos-mesh.fullname" .root) .role (include "pos-mesh.port" .root) -}}
{{- end -}}

{{/*
What each role needs, as YAML: its health service (the readiness probe asks it), the
roles it calls, and whether it has a database, Redis or the signing key. The roles
called are those `pos serve <role>` takes a `POS_<ROLE>_ADDR` for.
*/}}
{{- define "pos-mesh.roles" -}}
edge:
  health: pos.v1.StoreService
  peers: [store, user, trade, settlement]
  database: false
  redis: true
  signingKey: true
user:
  health: pos.v1.UserService
  peers: [store]
  database: true
  redis: true
  signingKey: true
store:
  health: pos.v1.StoreService
  peers: [user, trade]
  database: true
  redis: true
  signingKey: true
trade:
  health: pos.v1.TradeService
  peers: [store, user]
  database: true
  redis: true
  signingKey: true
settlement:
  health: pos.v1.SettlementService
  peers: [store, user]
  database: true
  redis: false
  signingKey: true
{{- end -}}

{{/* A Secret key as an env var; pass (dict "root" $ "name" "POS_X" "key" "k"). */}}
{{- define "pos-mesh.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "pos-mesh.secretName" .root }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* A ConfigMap key as an env var; pass (dict "root" $ "name" "POS_X"). */}}
{{- define "pos-mesh.configEnv" -}}
- name: {{ .name }}
  valueFrom:
    configMapKeyRef:
      name: {{ include "pos-mesh.configName" .root }}
      key: {{ .name }}
{{- end -}}

{{- define "pos-mesh.signingKeyPath" -}}/etc/pos/keys/signing-key.pem{{- end -}}

{{/* The signing key, mounted read-only from the Secret. */}}
{{- define "pos-mesh.signingKeyVolume" -}}
- name: signing-key
  secret:
    secretName: {{ include "pos-mesh.secretName" . }}
    defaultMode: 0440
    items:
      - key: signing-key.pem
        path: signing-key.pem
{{- end -}}

{{- define "pos-mesh.signingKeyMount" -}}
- name: signing-key
  mountPath: /etc/pos/keys
  readOnly: true
{{- end -}}

{{/* Every pod: a non-root user, the group that may read the mounted key. */}}
{{- define "pos-mesh.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Every container: nothing to escalate to, nothing to write but /tmp. */}}
{{- define "pos-mesh.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "pos-mesh.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Placement shared by every pod. */}}
{{- define "pos-mesh.placement" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
