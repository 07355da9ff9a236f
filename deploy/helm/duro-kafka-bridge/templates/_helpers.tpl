{{/* Names and labels. */}}
{{- define "duro.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "duro.fullname" -}}
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

{{/* A component's name: <fullname>-<component>, at most 63 characters. */}}
{{- define "duro.component" -}}
{{- printf "%s-%s" (include "duro.fullname" .root | trunc (int (sub 62 (len .name))) | trimSuffix "-") .name -}}
{{- end -}}

{{- define "duro.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "duro.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: duro-kafka-bridge
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "duro.selectorLabels" -}}
app.kubernetes.io/name: {{ include "duro.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "duro.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "duro.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "duro.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
A duration ("90s", "30m", "24h", "7d") in whole seconds. values.schema.json allows only
that form; this fails clearly if the schema was bypassed.
*/}}
{{- define "duro.seconds" -}}
{{- $v := toString . -}}
{{- $m := regexFind "^[0-9]+" $v -}}
{{- $u := trimPrefix $m $v -}}
{{- if or (not $m) (not (has $u (list "s" "m" "h" "d"))) -}}
{{- fail (printf "%q is not a duration: use a whole number and s, m, h or d (e.g. 24h)" $v) -}}
{{- end -}}
{{- $n := atoi $m -}}
{{- if eq $u "s" }}{{ $n }}
{{- else if eq $u "m" }}{{ mul $n 60 }}
{{- else if eq $u "h" }}{{ mul $n 3600 }}
{{- else }}{{ mul $n 86400 }}
{{- end -}}
{{- end -}}

{{/*
the guarantees: the dedupe window must exceed the bridge's maximum event age plus 10 minutes
of clock skew, and the raw topic must keep records longer than the window plus the
longest enricher outage tolerated. All three come from .Values.eventMaxAge.
*/}}
{{- define "duro.maxEventAgeS" -}}
{{- $age := include "duro.seconds" .Values.eventMaxAge | atoi -}}
{{- if lt $age 1 -}}
{{- fail "eventMaxAge must be at least 1s: the dedupe window is derived from it" -}}
{{- end -}}
{{- $age -}}
{{- end -}}

{{- define "duro.dedupeWindowS" -}}
{{- add (include "duro.maxEventAgeS" . | atoi) 600 (include "duro.seconds" .Values.dedupeMargin | atoi) -}}
{{- end -}}

{{- define "duro.rawRetentionMs" -}}
{{- mul (add (include "duro.dedupeWindowS" . | atoi) (include "duro.seconds" .Values.toleratedOutage | atoi)) 1000 -}}
{{- end -}}

{{/* "true" when the programs provision topics themselves. */}}
{{- define "duro.createTopics" -}}
{{- if kindIs "bool" .Values.topics.create -}}
{{- .Values.topics.create -}}
{{- else -}}
{{- not .Values.topics.strimzi.enabled -}}
{{- end -}}
{{- end -}}

{{/* An output topic: kafka.topicTemplate with {event} lower-cased, outside [a-z0-9._-] → "_". */}}
{{- define "duro.outputTopic" -}}
{{- $event := regexReplaceAll "[^a-z0-9._-]" (lower .event) "_" -}}
{{- replace "{event}" $event .root.Values.kafka.topicTemplate -}}
{{- end -}}

{{/* A state topic: enricher.stateTopics.topicTemplate with {kind} (item, change_order). */}}
{{- define "duro.stateTopic" -}}
{{- replace "{kind}" .kind .root.Values.enricher.stateTopics.topicTemplate -}}
{{- end -}}

{{/* The events with a built-in output topic besides topics.events: the snapshots that
`duro-enricher snapshot` writes (the event table always has them). */}}
{{- define "duro.snapshotEvents" -}}
{{- list "ITEM_SNAPSHOT" "CO_SNAPSHOT" | toJson -}}
{{- end -}}

{{- define "duro.securityProtocol" -}}
{{- $k := .Values.kafka -}}
{{- if $k.securityProtocol -}}
{{- $k.securityProtocol -}}
{{- else if and $k.sasl.mechanism $k.tls.enabled -}}SASL_SSL
{{- else if $k.sasl.mechanism -}}SASL_PLAINTEXT
{{- else if $k.tls.enabled -}}SSL
{{- else -}}PLAINTEXT
{{- end -}}
{{- end -}}

{{/* librdkafka property → the programs' environment variable name. */}}
{{- define "duro.rdkafkaEnv" -}}
{{- printf "DURO_RDKAFKA_%s%s" .scope (.prop | upper | replace "." "_") -}}
{{- end -}}

{{/*
Kafka connection environment for one program: bootstrap servers, security, SASL/TLS
material from existing Secrets, pass-through properties. .consumer: include the
consumer-only properties. .omit: properties of kafka.config and kafka.consumerConfig
left out (the classic group protocol's, under enricher.assignment=consumer).
*/}}
{{- define "duro.kafkaEnv" -}}
{{- $k := .root.Values.kafka -}}
{{- $omit := .omit | default list -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required" $k.bootstrapServers | quote }}
- name: DURO_RDKAFKA_SECURITY_PROTOCOL
  value: {{ include "duro.securityProtocol" .root | quote }}
{{- if $k.sasl.mechanism }}
- name: DURO_RDKAFKA_SASL_MECHANISMS
  value: {{ $k.sasl.mechanism | quote }}
- name: DURO_RDKAFKA_SASL_USERNAME
{{- if $k.sasl.usernameSecret.name }}
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.usernameSecret.name | quote }}
      key: {{ $k.sasl.usernameSecret.key | quote }}
{{- else }}
  value: {{ required "kafka.sasl.username or kafka.sasl.usernameSecret.name is required with kafka.sasl.mechanism" $k.sasl.username | quote }}
{{- end }}
- name: DURO_RDKAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.passwordSecret.name is required with kafka.sasl.mechanism" $k.sasl.passwordSecret.name | quote }}
      key: {{ $k.sasl.passwordSecret.key | quote }}
{{- end }}
{{- if $k.tls.enabled }}
{{- if $k.tls.caSecret.name }}
- name: DURO_RDKAFKA_SSL_CA_LOCATION
  value: {{ printf "/etc/duro/kafka/ca/%s" $k.tls.caSecret.key | quote }}
{{- end }}
{{- if $k.tls.clientSecret.name }}
- name: DURO_RDKAFKA_SSL_CERTIFICATE_LOCATION
  value: {{ printf "/etc/duro/kafka/client/%s" $k.tls.clientSecret.certKey | quote }}
- name: DURO_RDKAFKA_SSL_KEY_LOCATION
  value: {{ printf "/etc/duro/kafka/client/%s" $k.tls.clientSecret.keyKey | quote }}
{{- end }}
{{- if $k.tls.keyPasswordSecret.name }}
- name: DURO_RDKAFKA_SSL_KEY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.tls.keyPasswordSecret.name | quote }}
      key: {{ required "kafka.tls.keyPasswordSecret.key is required with its name" $k.tls.keyPasswordSecret.key | quote }}
{{- end }}
{{- end }}
{{- range $prop, $value := $k.config }}
{{- if not (has $prop $omit) }}
- name: {{ include "duro.rdkafkaEnv" (dict "scope" "" "prop" $prop) }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- range $prop, $value := $k.producerConfig }}
- name: {{ include "duro.rdkafkaEnv" (dict "scope" "PRODUCER_" "prop" $prop) }}
  value: {{ toString $value | quote }}
{{- end }}
{{- if .consumer }}
{{- range $prop, $value := $k.consumerConfig }}
{{- if not (has $prop $omit) }}
- name: {{ include "duro.rdkafkaEnv" (dict "scope" "CONSUMER_" "prop" $prop) }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Topic provisioning at start (both programs), when on. */}}
{{- define "duro.topicEnv" -}}
{{- if eq (include "duro.createTopics" .) "true" }}
- name: DURO_CREATE_TOPICS
  value: "true"
- name: DURO_TOPIC_PARTITIONS
  value: {{ .Values.topics.partitions | quote }}
- name: DURO_TOPIC_REPLICATION
  value: {{ .Values.topics.replicas | quote }}
- name: DURO_RAW_RETENTION_MS
  value: {{ include "duro.rawRetentionMs" . | quote }}
- name: DURO_TOPIC_CONFIGS
  value: {{ printf "min.insync.replicas=%d" (int .Values.topics.minInsyncReplicas) | quote }}
{{- end }}
{{- end -}}

{{/* Volumes for the Kafka TLS material (both programs). */}}
{{- define "duro.kafkaVolumes" -}}
{{- $t := .Values.kafka.tls -}}
{{- if and $t.enabled $t.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ $t.caSecret.name | quote }}
    defaultMode: 0440
    items:
      - key: {{ $t.caSecret.key | quote }}
        path: {{ $t.caSecret.key | quote }}
{{- end }}
{{- if and $t.enabled $t.clientSecret.name }}
- name: kafka-client
  secret:
    secretName: {{ $t.clientSecret.name | quote }}
    defaultMode: 0440
    items:
      - key: {{ $t.clientSecret.certKey | quote }}
        path: {{ $t.clientSecret.certKey | quote }}
      - key: {{ $t.clientSecret.keyKey | quote }}
        path: {{ $t.clientSecret.keyKey | quote }}
{{- end }}
{{- end -}}

{{- define "duro.kafkaVolumeMounts" -}}
{{- $t := .Values.kafka.tls -}}
{{- if and $t.enabled $t.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/duro/kafka/ca
  readOnly: true
{{- end }}
{{- if and $t.enabled $t.clientSecret.name }}
- name: kafka-client
  mountPath: /etc/duro/kafka/client
  readOnly: true
{{- end }}
{{- end -}}

{{/*
The files that describe Duro's API (apiFiles): the event table (both programs,
DURO_EVENT_TABLE) and the GraphQL documents (the enricher's pod, DURO_QUERIES_DIR; the
admin command `duro-bridge webhooks` is run there too). Each comes from a ConfigMap the
release makes of the values' text, or from an existing one; unset, the image's copies.
*/}}
{{/* The documents a queries folder must hold: a folder without one stops start-up. */}}
{{- define "duro.queryDocuments" -}}
{{- list "components.graphql" "change_orders.graphql" "snapshot_components.graphql" "snapshot_change_orders.graphql" "webhooks_list.graphql" "webhooks_create.graphql" "webhooks_update.graphql" "webhooks_logs.graphql" | toJson -}}
{{- end -}}

{{/* The event table's ConfigMap: the release's own (text), an existing one, or "". */}}
{{- define "duro.eventTableConfigMap" -}}
{{- $t := .Values.apiFiles.eventTable -}}
{{- if and $t.text $t.existingConfigMap -}}
{{- fail "apiFiles.eventTable: give text or existingConfigMap, not both" -}}
{{- end -}}
{{- if $t.text -}}
{{- include "duro.component" (dict "root" . "name" "event-table") -}}
{{- else -}}
{{- $t.existingConfigMap -}}
{{- end -}}
{{- end -}}

{{/* The queries' ConfigMap: the release's own (files, every document), an existing one
(enricher.queries.existingConfigMap is its older name), or "". */}}
{{- define "duro.queriesConfigMap" -}}
{{- $q := .Values.apiFiles.queries -}}
{{- $old := .Values.enricher.queries.existingConfigMap -}}
{{- if and $q.existingConfigMap $old -}}
{{- fail "apiFiles.queries.existingConfigMap and enricher.queries.existingConfigMap (its older name): give one" -}}
{{- end -}}
{{- $existing := $q.existingConfigMap | default $old -}}
{{- if and $q.files $existing -}}
{{- fail "apiFiles.queries: give files or existingConfigMap, not both" -}}
{{- end -}}
{{- if $q.files -}}
{{- $docs := include "duro.queryDocuments" . | fromJsonArray -}}
{{- $missing := list -}}
{{- range $docs -}}
{{- if not (get $q.files .) -}}
{{- $missing = append $missing . -}}
{{- end -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "apiFiles.queries.files lacks %s: the folder replaces the image's, and the enricher needs every document in it (%s)" (join ", " $missing) (join ", " $docs)) -}}
{{- end -}}
{{- include "duro.component" (dict "root" . "name" "queries") -}}
{{- else -}}
{{- $existing -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMaps' data (the ConfigMaps and the pods' checksums). */}}
{{- define "duro.eventTableData" -}}
{{- toYaml (dict "event-table.txt" .Values.apiFiles.eventTable.text) -}}
{{- end -}}

{{- define "duro.queriesData" -}}
{{- toYaml .Values.apiFiles.queries.files -}}
{{- end -}}

{{/* For one program (.queries: the enricher's pod): pod annotations that roll the pods
when a ConfigMap of the release changes (the programs read the files at start-up). */}}
{{- define "duro.apiFilesChecksums" -}}
{{- if .root.Values.apiFiles.eventTable.text }}
checksum/event-table: {{ include "duro.eventTableData" .root | sha256sum }}
{{- end }}
{{- if and .queries .root.Values.apiFiles.queries.files }}
checksum/queries: {{ include "duro.queriesData" .root | sha256sum }}
{{- end }}
{{- end -}}

{{- define "duro.apiFilesEnv" -}}
{{- if include "duro.eventTableConfigMap" .root }}
- name: DURO_EVENT_TABLE
  value: /etc/duro/event-table/event-table.txt
{{- end }}
{{- if and .queries (include "duro.queriesConfigMap" .root) }}
- name: DURO_QUERIES_DIR
  value: /etc/duro/queries
{{- end }}
{{- end -}}

{{- define "duro.apiFilesVolumeMounts" -}}
{{- if include "duro.eventTableConfigMap" .root }}
- name: event-table
  mountPath: /etc/duro/event-table
  readOnly: true
{{- end }}
{{- if and .queries (include "duro.queriesConfigMap" .root) }}
- name: queries
  mountPath: /etc/duro/queries
  readOnly: true
{{- end }}
{{- end -}}

{{/* Whole-ConfigMap volumes (no subPath): the mounted files follow the ConfigMap. */}}
{{- define "duro.apiFilesVolumes" -}}
{{- $t := .root.Values.apiFiles.eventTable -}}
{{- with include "duro.eventTableConfigMap" .root }}
- name: event-table
  configMap:
    name: {{ . | quote }}
    items:
      - key: {{ if $t.text }}event-table.txt{{ else }}{{ required "apiFiles.eventTable.key is required with existingConfigMap" $t.key | quote }}{{ end }}
        path: event-table.txt
{{- end }}
{{- if .queries }}
{{- with include "duro.queriesConfigMap" .root }}
- name: queries
  configMap:
    name: {{ . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* enricher.assignment (DURO_ASSIGNMENT): eager, cooperative or consumer. */}}
{{- define "duro.assignment" -}}
{{- .Values.enricher.assignment | default "eager" -}}
{{- end -}}

{{/*
The classic group protocol's properties, which the enricher refuses under
DURO_ASSIGNMENT=consumer (KIP-848: the broker's group.consumer.* settings govern), as a
JSON array: those of kafka.config and kafka.consumerConfig that the enricher and its
Jobs leave out then; [] otherwise. (partition.assignment.strategy is refused by the
schema in any mode.)
*/}}
{{- define "duro.classicOnlyProps" -}}
{{- if eq (include "duro.assignment" .) "consumer" -}}
{{- list "session.timeout.ms" "heartbeat.interval.ms" "partition.assignment.strategy" "group.protocol.type" | toJson -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{/*
The enricher's environment, without the variables that name its pod (POD_NAME,
DURO_TRANSACTIONAL_ID, DURO_GROUP_INSTANCE_ID) and without extraEnv. .job: "" (the
enricher), or the Job whose command reads it: "snapshot" (`duro-enricher snapshot`:
the same Kafka, with the consumer's properties, raw, state and progress topics, group,
Duro API, API files and GraphQL limits as the enricher) or "reconcile" (`duro-enricher
reconcile`: the same, without the state and progress topics, which it does not read);
none of the enricher's own (group protocol, DLQ and output topics, progress reset, admin
listener, batching, dedupe window, topic provisioning), and DURO_LOG_LEVEL from the Job's
logLevel (default: the enricher's). One list for all three, so that the Jobs connect
exactly as the enricher does: under enricher.assignment=consumer none of them has the
classic protocol's properties (duro.classicOnlyProps; the Jobs join no group).
*/}}
{{- define "duro.enricherEnv" -}}
{{- $root := .root -}}
{{- $e := $root.Values.enricher -}}
{{- $job := .job | default "" -}}
{{- if not (has $job (list "" "snapshot" "reconcile")) -}}
{{- fail (printf "duro.enricherEnv: unknown job %q" $job) -}}
{{- end -}}
{{- $all := not $job -}}
{{- $topics := ne $job "reconcile" -}}
{{- $omit := include "duro.classicOnlyProps" $root | fromJsonArray -}}
{{ include "duro.kafkaEnv" (dict "root" $root "consumer" true "omit" $omit) }}
- name: DURO_RAW_TOPIC
  value: {{ $root.Values.kafka.rawTopic | quote }}
{{- if $all }}
- name: DURO_DLQ_TOPIC
  value: {{ $root.Values.kafka.dlqTopic | quote }}
- name: DURO_TOPIC_TEMPLATE
  value: {{ $root.Values.kafka.topicTemplate | quote }}
# The compacted state topics and the progress topic: they must exist,
# compacted, or the enricher refuses to start (see values.yaml).
{{- end }}
{{- if $topics }}
- name: DURO_STATE_TOPICS
  value: {{ $e.stateTopics.enabled | quote }}
- name: DURO_STATE_TOPIC_TEMPLATE
  value: {{ $e.stateTopics.topicTemplate | quote }}
- name: DURO_PROGRESS_TOPIC
  value: {{ $e.progressTopic.name | quote }}
{{- end }}
{{- if $all }}
- name: DURO_PROGRESS_IGNORE
  value: {{ $e.progressTopic.ignore | quote }}
{{- end }}
- name: DURO_ENRICHER_GROUP
  value: {{ $e.group | quote }}
{{- if $all }}
# The group's rebalance protocol (see values.yaml): every member the same.
- name: DURO_ASSIGNMENT
  value: {{ include "duro.assignment" $root | quote }}
- name: DURO_ENRICHER_ADMIN_LISTEN
  value: {{ printf "0.0.0.0:%d" (int $e.adminPort) | quote }}
{{- end }}
{{- with $e.api.url }}
- name: DURO_API_URL
  value: {{ . | quote }}
{{- end }}
- name: DURO_API_KEY_FILE
  value: {{ printf "/etc/duro/api/%s" $e.api.keySecret.key | quote }}
{{- with $e.api.organization }}
- name: DURO_API_ORGANIZATION
  value: {{ . | quote }}
{{- end }}
{{- with $e.api.library }}
- name: DURO_API_LIBRARY
  value: {{ . | quote }}
{{- end }}
{{- include "duro.apiFilesEnv" (dict "root" $root "queries" true) }}
{{- if $all }}
# eventMaxAge + 10 minutes of clock skew + dedupeMargin (see values.yaml).
- name: DURO_DEDUPE_WINDOW_S
  value: {{ include "duro.dedupeWindowS" $root | quote }}
- name: DURO_BATCH_MAX
  value: {{ $e.batchMax | quote }}
- name: DURO_BATCH_WAIT_MS
  value: {{ $e.batchWaitMs | quote }}
- name: DURO_PULL_AHEAD
  value: {{ $e.pullAhead | quote }}
- name: DURO_GRAPHQL_MAX_IDS
  value: {{ $e.graphql.maxIds | quote }}
- name: DURO_GRAPHQL_CONCURRENCY
  value: {{ $e.graphql.concurrency | quote }}
{{- end }}
- name: DURO_GRAPHQL_RATE
  value: {{ $e.graphql.ratePerSecond | quote }}
- name: DURO_GRAPHQL_TIMEOUT_MS
  value: {{ $e.graphql.timeoutMs | quote }}
- name: DURO_GRAPHQL_MAX_ATTEMPTS
  value: {{ $e.graphql.maxAttempts | quote }}
{{- if $all }}
- name: DURO_NOT_FOUND_GRACE_MS
  value: {{ $e.notFoundGraceMs | quote }}
# CloudEvents headers on what the enricher writes (see values.yaml).
- name: DURO_CLOUDEVENTS
  value: {{ $e.cloudEvents.enabled | quote }}
{{- with $e.cloudEvents.source }}
- name: DURO_CE_SOURCE
  value: {{ . | quote }}
{{- end }}
- name: DURO_LOG_LEVEL
  value: {{ $e.logLevel | quote }}
{{- include "duro.topicEnv" $root }}
{{- else }}
- name: DURO_LOG_LEVEL
  value: {{ (get $root.Values $job).logLevel | default $e.logLevel | quote }}
{{- end }}
{{- end -}}

{{/* The enricher's volumes and mounts (the snapshot Jobs' too): the API key, the API
files, the Kafka TLS material, /tmp. */}}
{{- define "duro.enricherVolumeMounts" -}}
- name: api-key
  mountPath: /etc/duro/api
  readOnly: true
{{- include "duro.apiFilesVolumeMounts" (dict "root" . "queries" true) }}
{{- include "duro.kafkaVolumeMounts" . }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "duro.enricherVolumes" -}}
{{- $e := .Values.enricher -}}
# A whole-Secret volume (no subPath): the enricher re-reads the key when
# Kubernetes swaps the file.
- name: api-key
  secret:
    secretName: {{ required "enricher.api.keySecret.existingSecret is required" $e.api.keySecret.existingSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ $e.api.keySecret.key | quote }}
        path: {{ $e.api.keySecret.key | quote }}
{{- include "duro.apiFilesVolumes" (dict "root" . "queries" true) }}
{{- include "duro.kafkaVolumes" . }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{/*
The snapshot (`duro-enricher snapshot`): every item and change order of the Duro library
as one synthetic ping each on the raw topic, in Kafka transactions, resumable by its run
id. The CronJob's name leaves the CronJob controller the 11 characters it appends to a
Job's name (52 at most).
*/}}
{{- define "duro.snapshotName" -}}
{{- printf "%s-snapshot" (include "duro.fullname" . | trunc 43 | trimSuffix "-") -}}
{{- end -}}

{{/* "true" when the release renders a snapshot Job or CronJob (the enricher's settings
are theirs). */}}
{{- define "duro.snapshotOn" -}}
{{- and .Values.enricher.enabled (or .Values.snapshot.enabled .Values.snapshot.atInstall) -}}
{{- end -}}

{{/*
A snapshot Job's spec (a Job's, or a CronJob's jobTemplate). .runId: the run id; "" =
the Job's own name, from its pods' job-name label (the Job controller sets it on every
pod of a Job it selects for, on every Kubernetes version; batch.kubernetes.io/job-name
only from 1.27), so that a Job created again under the same name resumes the run.
*/}}
{{- define "duro.snapshotJobSpec" -}}
{{- $root := .root -}}
{{- $s := $root.Values.snapshot -}}
{{- $e := $root.Values.enricher -}}
{{- $port := $s.adminPort -}}
backoffLimit: {{ $s.backoffLimit }}
{{- with $s.activeDeadlineSeconds }}
activeDeadlineSeconds: {{ . }}
{{- end }}
{{- if not (kindIs "invalid" $s.ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ $s.ttlSecondsAfterFinished }}
{{- end }}
# Exit status 2 (a bad setting) fails the Job at once: no retry can fix it. A pod
# evicted or preempted (a node drained) does not count against backoffLimit. With a
# podFailurePolicy a new pod starts only once the failed one is gone (never two pods of
# one run at a time); each new pod continues the run where the last one stopped.
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: snapshot
        operator: In
        values: [2]
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
template:
  metadata:
    labels:
      {{- include "duro.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: snapshot
      {{- with $s.podLabels }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with $s.podAnnotations }}
    annotations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  spec:
    restartPolicy: Never
    serviceAccountName: {{ include "duro.serviceAccountName" $root }}
    automountServiceAccountToken: false
    enableServiceLinks: false
    # Time to abort the open transaction (as the enricher's).
    terminationGracePeriodSeconds: {{ $e.terminationGracePeriodSeconds }}
    {{- with $root.Values.imagePullSecrets }}
    imagePullSecrets:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $s.priorityClassName }}
    priorityClassName: {{ . | quote }}
    {{- end }}
    securityContext:
      {{- toYaml $root.Values.podSecurityContext | nindent 6 }}
    containers:
      - name: snapshot
        image: {{ include "duro.image" $root | quote }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy }}
        command: ["duro-enricher", "snapshot"]
        {{- if $port }}
        ports:
          - name: admin
            containerPort: {{ $port }}
            protocol: TCP
        {{- end }}
        env:
          # The run id: its transactional.id is <group>-snapshot-<run id>, never the
          # enricher's; the same run id continues a run, a finished one exits 0 at once.
          - name: DURO_SNAPSHOT_ID
            {{- if .runId }}
            value: {{ .runId | quote }}
            {{- else }}
            valueFrom:
              fieldRef:
                fieldPath: metadata.labels['job-name']
            {{- end }}
          # The enricher's Kafka, topics, group, Duro API and API files.
          {{- include "duro.enricherEnv" (dict "root" $root "job" "snapshot") | nindent 10 }}
          - name: DURO_SNAPSHOT_KINDS
            value: {{ join "," $s.kinds | quote }}
          - name: DURO_SNAPSHOT_RATE
            value: {{ $s.ratePerSecond | quote }}
          - name: DURO_SNAPSHOT_PAGE_SIZE
            value: {{ $s.pageSize | quote }}
          {{- if $port }}
          - name: DURO_SNAPSHOT_ADMIN_LISTEN
            value: {{ printf "0.0.0.0:%d" (int $port) | quote }}
          {{- end }}
          {{- with $s.extraEnv }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        {{- if $port }}
        startupProbe:
          httpGet:
            path: /healthz
            port: admin
          periodSeconds: 2
          failureThreshold: 30
        livenessProbe:
          httpGet:
            path: /healthz
            port: admin
          periodSeconds: 10
          timeoutSeconds: 3
          failureThreshold: 6
        {{- end }}
        resources:
          {{- toYaml $s.resources | nindent 10 }}
        securityContext:
          {{- toYaml $root.Values.securityContext | nindent 10 }}
        volumeMounts:
          {{- include "duro.enricherVolumeMounts" $root | nindent 10 }}
    volumes:
      {{- include "duro.enricherVolumes" $root | nindent 6 }}
    {{- with $s.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $s.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $s.affinity }}
    affinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end -}}

{{/*
Reconcile (`duro-enricher reconcile`): the events Duro gave up on, from its webhook
logs, written again to the raw topic. The CronJob's name leaves the CronJob controller
the 11 characters it appends to a Job's name (52 at most).
*/}}
{{- define "duro.reconcileName" -}}
{{- printf "%s-reconcile" (include "duro.fullname" . | trunc 42 | trimSuffix "-") -}}
{{- end -}}

{{/* "true" when the release renders the reconcile CronJob. */}}
{{- define "duro.reconcileOn" -}}
{{- and .Values.enricher.enabled .Values.reconcile.enabled -}}
{{- end -}}

{{/* The log table's ConfigMap (reconcile.logTable), or "". */}}
{{- define "duro.logTableConfigMap" -}}
{{- if .Values.reconcile.logTable -}}
{{- include "duro.component" (dict "root" . "name" "log-table") -}}
{{- end -}}
{{- end -}}
