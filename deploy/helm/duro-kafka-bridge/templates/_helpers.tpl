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
consumer-only properties.
*/}}
{{- define "duro.kafkaEnv" -}}
{{- $k := .root.Values.kafka -}}
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
- name: {{ include "duro.rdkafkaEnv" (dict "scope" "" "prop" $prop) }}
  value: {{ toString $value | quote }}
{{- end }}
{{- range $prop, $value := $k.producerConfig }}
- name: {{ include "duro.rdkafkaEnv" (dict "scope" "PRODUCER_" "prop" $prop) }}
  value: {{ toString $value | quote }}
{{- end }}
{{- if .consumer }}
{{- range $prop, $value := $k.consumerConfig }}
- name: {{ include "duro.rdkafkaEnv" (dict "scope" "CONSUMER_" "prop" $prop) }}
  value: {{ toString $value | quote }}
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
{{- list "components.graphql" "change_orders.graphql" "webhooks_list.graphql" "webhooks_create.graphql" "webhooks_update.graphql" "webhooks_logs.graphql" | toJson -}}
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
