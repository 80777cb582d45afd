{{/*
Names, labels and the pieces every pod of the chart shares. Every role runs the same
image; what differs is in "pos-mesh.roles" below.
*/}}

{{- define "pos-mesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's prefix of every object name, at most 32 characters: a CronJob's name may
have 52 (its Jobs add 11) and the longest suffix is `-product-sales-month` (20).
*/}}
{{- define "pos-mesh.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 32 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 32 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 32 | trimSuffix "-" -}}
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
roles it calls, whether it has a database and Redis, and whether it signs tokens with
the signing key (owner tokens: user; tablet credentials: store). The others use a key
only for their service tokens: the signing key, or with `secret.serviceKeys` a key of
their own. The roles called are those `pos serve <role>` takes a `POS_<ROLE>_ADDR` for.
*/}}
{{- define "pos-mesh.roles" -}}
edge:
  health: pos.v1.StoreService
  peers: [store, user, trade, settlement]
  database: false
  redis: true
  signs: false
user:
  health: pos.v1.UserService
  peers: [store]
  database: true
  redis: true
  signs: true
store:
  health: pos.v1.StoreService
  peers: [user, trade]
  database: true
  redis: true
  signs: true
trade:
  health: pos.v1.TradeService
  peers: [store, user]
  database: true
  redis: true
  signs: false
settlement:
  health: pos.v1.SettlementService
  peers: [store, user]
  database: true
  redis: true
  signs: false
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

{{- define "pos-mesh.keyDir" -}}/etc/pos/keys{{- end -}}

{{/*
The keys a pod mounts read-only from the Secret; pass (dict "root" $ "signs" bool). The
signing key goes only where tokens are signed with it, unless service tokens are signed
with it too (no `secret.serviceKeys`).
*/}}
{{- define "pos-mesh.keysVolume" -}}
- name: keys
  secret:
    secretName: {{ include "pos-mesh.secretName" .root }}
    # 0440: readable by the pods' group (fsGroup), written as decimal so that YAML 1.1 and
    # 1.2 parsers agree.
    defaultMode: 288
    items:
      {{- if or .signs (not .root.Values.secret.serviceKeys) }}
      - key: signing-key.pem
        path: signing-key.pem
      {{- end }}
      {{- if .root.Values.secret.serviceKeys }}
      - key: service-key.pem
        path: service-key.pem
      - key: service-jwks.json
        path: service-jwks.json
      {{- end }}
{{- end -}}

{{- define "pos-mesh.keysMount" -}}
- name: keys
  mountPath: {{ include "pos-mesh.keyDir" . }}
  readOnly: true
{{- end -}}

{{/*
The env naming those keys; pass (dict "root" $ "signs" bool "verifies" bool). A role that
verifies tokens gets the service keys' JWKS, so it accepts service tokens only from them.
*/}}
{{- define "pos-mesh.keysEnv" -}}
{{- $dir := include "pos-mesh.keyDir" .root -}}
{{- if or .signs (not .root.Values.secret.serviceKeys) }}
- name: POS_SIGNING_KEY_FILE
  value: {{ $dir }}/signing-key.pem
{{- end }}
{{- if .root.Values.secret.serviceKeys }}
- name: POS_SERVICE_KEY_FILE
  value: {{ $dir }}/service-key.pem
{{- if .verifies }}
- name: POS_SERVICE_JWKS_FILE
  value: {{ $dir }}/service-jwks.json
{{- end }}
{{- end }}
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
