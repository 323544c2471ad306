{{/*
Names, labels and the pieces both tiers share. The edge and session templates mirror
k8s/base/*-deployment.yaml (test/integration/helm-chart.test.ts compares the pod specs).
*/}}

{{/*
"true" when the release runs `megaphone node` pods (mode: nodes) instead of the edge and
session tiers. The two never run together in one release: a node's member hands replies to its
own sockets in process, which is in order only when no plain session member writes to its edge.
*/}}
{{- define "megaphone.nodes" -}}
{{- if eq .Values.mode "nodes" -}}true{{- end -}}
{{- end -}}

{{/*
The component whose pods serve clients: `edge`, or `node` in mode nodes. The client-facing
objects (Services, Ingress, HTTPRoute, the edges' NetworkPolicy) keep their edge names and
labels in both modes, so clients, port-forwards and dashboards find them unchanged; only the
pods they select differ.
*/}}
{{- define "megaphone.clientComponent" -}}
{{- if include "megaphone.nodes" . -}}node{{- else -}}edge{{- end -}}
{{- end -}}

{{/* The /metrics port of the pods that serve clients when it is their own (edge.metricsPort or node.metricsPort), else 0. */}}
{{- define "megaphone.clientMetricsPort" -}}
{{- if include "megaphone.nodes" . -}}{{ .Values.node.metricsPort }}{{- else -}}{{ .Values.edge.metricsPort }}{{- end -}}
{{- end -}}

{{- define "megaphone.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-megaphone, or the release name alone when it already says megaphone. */}}
{{- define "megaphone.fullname" -}}
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

{{/* Selector labels of one component: include "megaphone.selectorLabels" (list $ "edge") */}}
{{- define "megaphone.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "megaphone.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Every label of one component's objects. */}}
{{- define "megaphone.labels" -}}
{{- $ := index . 0 -}}
{{ include "megaphone.selectorLabels" . }}
app.kubernetes.io/part-of: megaphone
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $.Chart.Name $.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "megaphone.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "megaphone.configName" -}}
{{- printf "%s-config" (include "megaphone.fullname" .) -}}
{{- end -}}

{{/* The Secret holding the Redis URL, and whether this chart creates it. */}}
{{- define "megaphone.redisSecretName" -}}
{{- default (printf "%s-redis" (include "megaphone.fullname" .)) .Values.redis.existingSecret -}}
{{- end -}}

{{- define "megaphone.redisSecretCreated" -}}
{{- if or .Values.redis.url .Values.redis.builtin.enabled -}}true{{- end -}}
{{- end -}}

{{/*
A setting name (camelCase) as its environment variable, as Megaphone derives it (an underscore
before each capital): maxStanzaBytes -> MEGAPHONE_MAX_STANZA_BYTES, c2sRequireTls ->
MEGAPHONE_C2S_REQUIRE_TLS (sprig's snakecase would split the digit off: C_2S).
*/}}
{{- define "megaphone.envName" -}}
{{- printf "MEGAPHONE_%s" (regexReplaceAll "([A-Z])" . "_${1}" | upper) -}}
{{- end -}}

{{/*
A setting's value as the string Megaphone parses: integers without an exponent (values arrive
as float64), lists comma-separated.
*/}}
{{- define "megaphone.envValue" -}}
{{- if kindIs "float64" . -}}
{{- printf "%d" (int64 .) -}}
{{- else if kindIs "slice" . -}}
{{- join "," . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/* Extra env entries of one tier: include "megaphone.tierEnv" .Values.edge.config */}}
{{- define "megaphone.tierEnv" -}}
{{- range $key, $value := . }}
- name: {{ include "megaphone.envName" $key }}
  value: {{ include "megaphone.envValue" $value | quote }}
{{- end -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds from the drain: preStop sleep + shutdownGraceMs (rounded up) +
the 2 s a megaphone process allows itself past shutdownGraceMs before it exits regardless
(services/cli/services.ts) + a margin. include "megaphone.gracePeriod" (list preStopSeconds shutdownGraceMs margin)
*/}}
{{- define "megaphone.gracePeriod" -}}
{{- $preStop := int64 (index . 0) -}}
{{- $graceSeconds := div (add (int64 (index . 1)) 999) 1000 -}}
{{- add $preStop $graceSeconds 2 (int64 (index . 2)) -}}
{{- end -}}

{{/* The restricted Pod Security profile, pod level (Megaphone runs as the image's UID 1000). */}}
{{- define "megaphone.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "megaphone.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Zone and node spread of one component's pods: include "megaphone.topologySpread" (list $ "edge") */}}
{{- define "megaphone.topologySpread" -}}
{{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
- maxSkew: 1
  topologyKey: {{ . }}
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "megaphone.selectorLabels" $ | nindent 6 }}
  matchLabelKeys: ["pod-template-hash"]
{{- end -}}
{{- end -}}

{{/* The env entry with the Redis URL. */}}
{{- define "megaphone.redisEnv" -}}
- name: MEGAPHONE_REDIS
  valueFrom:
    secretKeyRef:
      name: {{ include "megaphone.redisSecretName" . }}
      key: {{ .Values.redis.existingSecretKey }}
{{- end -}}

{{/* Values that cannot be expressed in values.schema.json, checked once per render. */}}
{{- define "megaphone.validate" -}}
{{- $nodes := include "megaphone.nodes" . -}}
{{- $drained := ternary "node" "edge" (eq $nodes "true") -}}
{{- $d := index .Values $drained -}}
{{- if gt (add (int64 $d.drainDelayMs) (int64 $d.drainWindowMs)) (int64 $d.shutdownGraceMs) -}}
{{- fail (printf "%s.drainDelayMs (%d) + %s.drainWindowMs (%d) must fit in %s.shutdownGraceMs (%d), which also covers the inbox drain after them (Megaphone refuses to start otherwise)" $drained (int64 $d.drainDelayMs) $drained (int64 $d.drainWindowMs) $drained (int64 $d.shutdownGraceMs)) -}}
{{- end -}}
{{- /*
Mode nodes renders no edge or session Deployment. What would then be lost unseen is refused:
their HPAs and PDBs, their per-tier settings (limits among them), and edge.metricsPort (without
it the nodes' /metrics would be served on the public client port).
*/ -}}
{{- if $nodes -}}
{{- range $t := list "edge" "session" -}}
{{- range $what := list "autoscaling" "pdb" -}}
{{- if (index (index $.Values $t) $what).enabled -}}
{{- fail (printf "%s.%s.enabled is for the %s Deployment, which mode nodes does not render: set node.%s instead" $t $what $t $what) -}}
{{- end -}}
{{- end -}}
{{- if (index $.Values $t).config -}}
{{- fail (printf "%s.config is for the %s Deployment, which mode nodes does not render: set node.config instead" $t $t) -}}
{{- end -}}
{{- end -}}
{{- if .Values.edge.metricsPort -}}
{{- fail "edge.metricsPort is for the edge Deployment, which mode nodes does not render: set node.metricsPort instead" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.redis.url .Values.redis.builtin.enabled -}}
{{- fail "redis.url and redis.builtin.enabled exclude each other: the built-in Redis sets the URL itself" -}}
{{- end -}}
{{- if and .Values.redis.existingSecret (include "megaphone.redisSecretCreated" .) -}}
{{- fail "redis.existingSecret names a Secret you created; leave it empty with redis.url or redis.builtin.enabled, which make the chart create one" -}}
{{- end -}}
{{- if and .Values.edge.ingress.enabled .Values.edge.httpRoute.enabled -}}
{{- fail "edge.ingress and edge.httpRoute both route the same path: enable one of them" -}}
{{- end -}}
{{- if and .Values.edge.httpRoute.enabled (not .Values.edge.httpRoute.parentRefs) -}}
{{- fail "edge.httpRoute.parentRefs must name the Gateway the route attaches to" -}}
{{- end -}}
{{- $c2s := .Values.edge.c2s -}}
{{- if $c2s.enabled -}}
{{- if not (or $c2s.port $c2s.tlsPort) -}}
{{- fail "edge.c2s.enabled needs edge.c2s.port or edge.c2s.tlsPort (0 turns each off)" -}}
{{- end -}}
{{- $tierConfig := (index .Values $drained).config -}}
{{- $plaintextOnly := and (not $c2s.tlsPort) (hasKey $tierConfig "c2sRequireTls") (eq (toString $tierConfig.c2sRequireTls) "false") -}}
{{- if not (or $c2s.tls.secretName $c2s.tls.sniSecrets $plaintextOnly) -}}
{{- fail (printf "edge.c2s needs a certificate: edge.c2s.tls.secretName or edge.c2s.tls.sniSecrets (kubernetes.io/tls Secrets); the %ss refuse to start a TLS c2s port without one" $drained) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Target labels of the metric contract, from the pod's labels (ServiceMonitor and PodMonitor). */}}
{{- define "megaphone.targetRelabelings" -}}
- sourceLabels: [__meta_kubernetes_pod_label_app_kubernetes_io_instance]
  targetLabel: release
  action: replace
- sourceLabels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
  targetLabel: tier
  action: replace
{{- end -}}

{{/* NetworkPolicy egress rules every pod of the release needs: DNS and Redis. */}}
{{- define "megaphone.egressDnsRedis" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- ports:
    {{- range .Values.networkPolicy.redisPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end -}}

{{/* NetworkPolicy peer: the Prometheus pods. */}}
{{- define "megaphone.fromPrometheus" -}}
- namespaceSelector:
    matchLabels:
      {{- toYaml .Values.networkPolicy.prometheusNamespaceLabels | nindent 6 }}
  podSelector:
    matchLabels:
      {{- toYaml .Values.networkPolicy.prometheusPodLabels | nindent 6 }}
{{- end -}}

{{/*
The scrape endpoints of a ServiceMonitor or PodMonitor: port `http` of every pod, or, when the
pods that serve clients have /metrics on their own port (edge.metricsPort, node.metricsPort),
`http` for the others only (theirs answers 404 there) and `metrics` for them. In mode nodes
with node.metricsPort there are no others: `metrics` alone.
include "megaphone.metricsEndpoints" (list $ .Values.metrics.serviceMonitor)
*/}}
{{- define "megaphone.metricsEndpoints" -}}
{{- $ := index . 0 -}}
{{- $m := index . 1 -}}
{{- $ownPort := ne (include "megaphone.clientMetricsPort" $) "0" -}}
{{- if not (and $ownPort (include "megaphone.nodes" $)) -}}
- port: http
  path: /metrics
  interval: {{ $m.interval }}
  scrapeTimeout: {{ $m.scrapeTimeout }}
  relabelings:
    {{- if $ownPort }}
    - sourceLabels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
      regex: {{ include "megaphone.clientComponent" $ }}
      action: drop
    {{- end }}
    {{- include "megaphone.targetRelabelings" $ | nindent 4 }}
{{- end }}
{{- if $ownPort }}
- port: metrics
  path: /metrics
  interval: {{ $m.interval }}
  scrapeTimeout: {{ $m.scrapeTimeout }}
  relabelings:
    {{- include "megaphone.targetRelabelings" $ | nindent 4 }}
{{- end }}
{{- end -}}

{{/* Where the c2s certificates are mounted (a projected volume of kubernetes.io/tls Secrets). */}}
{{- define "megaphone.c2sTlsDir" -}}/etc/megaphone/tls{{- end -}}

{{/* The components the ServiceMonitor and PodMonitor select: both tiers, or the nodes. */}}
{{- define "megaphone.scrapedComponents" -}}
{{- if include "megaphone.nodes" . -}}[node]{{- else -}}[edge, session]{{- end -}}
{{- end -}}

{{/*
TCP c2s (edge.c2s) on the pods that serve clients, edges or nodes alike: their container ports,
env entries, the certificates' mount and volume. Each renders nothing with c2s off; callers
wrap them in `with` so that nothing leaves an empty line.
*/}}
{{- define "megaphone.c2sTlsSecrets" -}}
{{- $c2s := .Values.edge.c2s -}}
{{- if and $c2s.enabled (or $c2s.tls.secretName $c2s.tls.sniSecrets) -}}true{{- end -}}
{{- end -}}

{{- define "megaphone.c2sContainerPorts" -}}
{{- $c2s := .Values.edge.c2s -}}
{{- if and $c2s.enabled $c2s.port }}
- name: xmpp-client
  containerPort: {{ $c2s.port }}
  protocol: TCP
{{- end }}
{{- if and $c2s.enabled $c2s.tlsPort }}
- name: xmpps-client
  containerPort: {{ $c2s.tlsPort }}
  protocol: TCP
{{- end }}
{{- end -}}

{{- define "megaphone.c2sEnv" -}}
{{- $c2s := .Values.edge.c2s -}}
{{- $tlsDir := include "megaphone.c2sTlsDir" . -}}
{{- if $c2s.enabled }}
{{- if $c2s.port }}
- name: MEGAPHONE_C2S_PORT
  value: {{ $c2s.port | quote }}
{{- end }}
{{- if $c2s.tlsPort }}
- name: MEGAPHONE_C2S_TLS_PORT
  value: {{ $c2s.tlsPort | quote }}
{{- end }}
{{- if $c2s.tls.secretName }}
- name: MEGAPHONE_TLS_CERT
  value: {{ $tlsDir }}/tls.crt
- name: MEGAPHONE_TLS_KEY
  value: {{ $tlsDir }}/tls.key
{{- end }}
{{- if $c2s.tls.sniSecrets }}
- name: MEGAPHONE_TLS_CERT_DIR
  value: {{ $tlsDir }}/sni
{{- end }}
{{- end }}
{{- end -}}

{{- define "megaphone.c2sTlsMount" -}}
{{- if include "megaphone.c2sTlsSecrets" . }}
- name: tls
  mountPath: {{ include "megaphone.c2sTlsDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "megaphone.c2sTlsVolume" -}}
{{- $c2s := .Values.edge.c2s -}}
{{- if include "megaphone.c2sTlsSecrets" . }}
# The c2s certificates. No subPath: the kubelet swaps a Secret volume's files in place
# when the Secret changes, and the edge reloads them (tlsReloadIntervalMs). The default
# mode (0644) because the pods run with no fsGroup: root owns the files, UID 1000 reads.
- name: tls
  projected:
    sources:
      {{- with $c2s.tls.secretName }}
      - secret:
          name: {{ . }}
          items:
            - key: tls.crt
              path: tls.crt
            - key: tls.key
              path: tls.key
      {{- end }}
      {{- range $c2s.tls.sniSecrets }}
      - secret:
          name: {{ .secretName }}
          items:
            - key: tls.crt
              path: sni/{{ .domain }}.crt
            - key: tls.key
              path: sni/{{ .domain }}.key
      {{- end }}
{{- end }}
{{- end -}}
