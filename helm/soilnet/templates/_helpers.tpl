{{/* Chart name, truncated to a DNS label. */}}
{{- define "soilnet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name prefix: <release>-soilnet unless the release name already holds it. */}}
{{- define "soilnet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "soilnet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "soilnet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "soilnet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "soilnet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The soilnet image (CPU build). */}}
{{- define "soilnet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The soilnet image (GPU build). */}}
{{- define "soilnet.gpuImage" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- printf "%s:%s" .Values.image.repository (default (printf "%s-gpu" $tag) .Values.image.gpuTag) -}}
{{- end -}}

{{- define "soilnet.mlflowImage" -}}
{{- if .Values.mlflow.image.repository -}}
{{- printf "%s:%s" .Values.mlflow.image.repository (required "mlflow.image.tag is required with mlflow.image.repository" .Values.mlflow.image.tag) -}}
{{- else -}}
{{- include "soilnet.image" . -}}
{{- end -}}
{{- end -}}

{{- define "soilnet.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "soilnet.mlflowServiceName" -}}
{{- printf "%s-mlflow" (include "soilnet.fullname" .) -}}
{{- end -}}

{{/* Tracking URI that Ray pods use. */}}
{{- define "soilnet.trackingUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s.%s.svc:%d" (include "soilnet.mlflowServiceName" .) .Release.Namespace (int .Values.mlflow.port) -}}
{{- else -}}
{{- .Values.mlflow.externalTrackingUri -}}
{{- end -}}
{{- end -}}

{{/* s3://bucket[/prefix] of the object store. */}}
{{- define "soilnet.storageRoot" -}}
{{- if .Values.objectStore.prefix -}}
{{- printf "s3://%s/%s" .Values.objectStore.bucket .Values.objectStore.prefix -}}
{{- else -}}
{{- printf "s3://%s" .Values.objectStore.bucket -}}
{{- end -}}
{{- end -}}

{{/* Object store settings as environment variables; the keys only through the Secret. */}}
{{- define "soilnet.objectStoreEnv" -}}
{{- with .Values.objectStore.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: AWS_REGION
  value: {{ .Values.objectStore.region | quote }}
{{- with .Values.objectStore.credentials }}
{{- if .secretName }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .secretAccessKeyKey }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Environment of Ray containers. */}}
{{- define "soilnet.rayEnv" -}}
- name: HOME
  value: /tmp
- name: SOILNET_STORAGE_ROOT
  value: {{ include "soilnet.storageRoot" . | quote }}
{{- with (include "soilnet.trackingUri" .) }}
- name: MLFLOW_TRACKING_URI
  value: {{ . | quote }}
{{- end }}
{{- include "soilnet.objectStoreEnv" . }}
{{- with .Values.nightly.webhookSecret }}
{{- if .name }}
- name: SOILNET_NIGHTLY_WEBHOOK_URL
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
      optional: true
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
One Ray pod template. Arguments: dict with "root" (the chart context), "container" (name),
"image", "resources", "shmSize", "nodeSelector", "tolerations".
*/}}
{{- define "soilnet.rayPodTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "soilnet.labels" $root | nindent 4 }}
    app.kubernetes.io/component: ray
spec:
  {{- include "soilnet.imagePullSecrets" $root | nindent 2 }}
  automountServiceAccountToken: false
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with .nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .container }}
      image: {{ .image }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      env:
        {{- include "soilnet.rayEnv" $root | nindent 8 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: dshm
          mountPath: /dev/shm
        - name: tmp
          mountPath: /tmp
        - name: job-configs
          mountPath: /etc/soilnet/jobs
          readOnly: true
  volumes:
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: {{ .shmSize }}
    - name: tmp
      emptyDir: {}
    - name: job-configs
      configMap:
        name: {{ include "soilnet.fullname" $root }}-job-configs
{{- end -}}

{{/* One worker group. Arguments: dict with "root", "name", "group" (values), "image". */}}
{{- define "soilnet.workerGroup" -}}
- groupName: {{ .name }}
  replicas: {{ .group.replicas }}
  minReplicas: {{ .group.minReplicas }}
  maxReplicas: {{ .group.maxReplicas }}
  rayStartParams:
    {{- toYaml .group.rayStartParams | nindent 4 }}
  template:
    {{- include "soilnet.rayPodTemplate" (dict "root" .root "container" "ray-worker" "image" .image "resources" .group.resources "shmSize" .group.shmSize "nodeSelector" .group.nodeSelector "tolerations" .group.tolerations) | nindent 4 }}
{{- end -}}

{{/* The RayCluster spec, shared by the RayCluster and by RayJobs in "dedicated" mode. */}}
{{- define "soilnet.rayClusterSpec" -}}
{{- $ray := .Values.ray -}}
rayVersion: {{ $ray.version | quote }}
authOptions:
  mode: {{ $ray.authMode }}
enableInTreeAutoscaling: true
autoscalerOptions:
  upscalingMode: {{ $ray.autoscaler.upscalingMode }}
  idleTimeoutSeconds: {{ $ray.autoscaler.idleTimeoutSeconds }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  resources:
    {{- toYaml $ray.autoscaler.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
headGroupSpec:
  rayStartParams:
    {{- toYaml (merge (dict "num-cpus" "0" "dashboard-host" "0.0.0.0") $ray.head.rayStartParams) | nindent 4 }}
  template:
    {{- include "soilnet.rayPodTemplate" (dict "root" . "container" "ray-head" "image" (include "soilnet.image" .) "resources" $ray.head.resources "shmSize" $ray.head.shmSize "nodeSelector" $ray.head.nodeSelector "tolerations" $ray.head.tolerations) | nindent 4 }}
workerGroupSpecs:
{{- if $ray.workers.cpu.enabled }}
{{ include "soilnet.workerGroup" (dict "root" . "name" "cpu" "group" $ray.workers.cpu "image" (include "soilnet.image" .)) }}
{{- end }}
{{- if $ray.workers.gpu.enabled }}
{{ include "soilnet.workerGroup" (dict "root" . "name" "gpu" "group" $ray.workers.gpu "image" (include "soilnet.gpuImage" .)) }}
{{- end }}
{{- if $ray.workers.gpuSpot.enabled }}
{{ include "soilnet.workerGroup" (dict "root" . "name" "gpu-spot" "group" $ray.workers.gpuSpot "image" (include "soilnet.gpuImage" .)) }}
{{- end }}
{{- end -}}

{{/* Name of the chart's RayCluster. */}}
{{- define "soilnet.rayClusterName" -}}
{{- printf "%s-ray" (include "soilnet.fullname" .) -}}
{{- end -}}

{{/*
Refuse to run a job that has no configuration. Arguments: dict with "root", "job" (a key of .Values.jobs)
and "why" (what would run it). An empty config means "not configured": soilnet would refuse it at start.
*/}}
{{- define "soilnet.requireJobConfig" -}}
{{- if not (hasKey .root.Values.jobs .job) -}}
{{- fail (printf "%s: %q is not a key of jobs" .why .job) -}}
{{- end -}}
{{- if empty (index .root.Values.jobs .job).config -}}
{{- fail (printf "%s needs a configuration: jobs.%s.config is empty (give the job's soilnet YAML config there, see values-production.yaml)" .why .job) -}}
{{- end -}}
{{- end -}}

{{/*
Extra entry point arguments of a job: the elastic range for the training jobs (elasticTraining).
Arguments: dict with "root" and "job".
*/}}
{{- define "soilnet.elasticArgs" -}}
{{- $elastic := .root.Values.elasticTraining -}}
{{- if and $elastic.enabled (has .job $elastic.jobs) -}}
{{- if gt (int $elastic.minWorkers) (int $elastic.maxWorkers) -}}
{{- fail (printf "elasticTraining: minWorkers (%d) is larger than maxWorkers (%d)" (int $elastic.minWorkers) (int $elastic.maxWorkers)) -}}
{{- end -}}
{{- printf "--set 'train.num_workers=[%d,%d]'" (int $elastic.minWorkers) (int $elastic.maxWorkers) -}}
{{- end -}}
{{- end -}}

{{/* The RayJob spec of one job. Arguments: dict with "root" and "job" (a key of .Values.jobs). */}}
{{- define "soilnet.rayJobSpec" -}}
{{- $root := .root -}}
{{- $job := index $root.Values.jobs .job -}}
{{- $entry := list "python" "-m" (printf "jobs.%s" .job) "--config" (printf "/etc/soilnet/jobs/%s.yaml" .job) -}}
{{- $elastic := include "soilnet.elasticArgs" . -}}
entrypoint: {{ join " " (concat $entry $job.args (ternary (list $elastic) (list) (ne $elastic ""))) | quote }}
submissionMode: K8sJobMode
activeDeadlineSeconds: {{ $job.activeDeadlineSeconds }}
backoffLimit: {{ $job.backoffLimit }}
{{- if eq $root.Values.rayJob.clusterMode "shared" }}
clusterSelector:
  ray.io/cluster: {{ include "soilnet.rayClusterName" $root }}
{{- else }}
shutdownAfterJobFinishes: true
ttlSecondsAfterFinished: {{ $root.Values.rayJob.ttlSecondsAfterFinished }}
rayClusterSpec:
  {{- include "soilnet.rayClusterSpec" $root | nindent 2 }}
{{- end }}
submitterPodTemplate:
  metadata:
    labels:
      {{- include "soilnet.labels" $root | nindent 6 }}
      app.kubernetes.io/component: ray-job-submitter
  spec:
    restartPolicy: Never
    automountServiceAccountToken: false
    {{- include "soilnet.imagePullSecrets" $root | nindent 4 }}
    securityContext:
      {{- toYaml $root.Values.podSecurityContext | nindent 6 }}
    containers:
      - name: ray-job-submitter
        image: {{ include "soilnet.image" $root }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy }}
        env:
          - name: HOME
            value: /tmp
        resources:
          {{- toYaml $root.Values.rayJob.submitterResources | nindent 10 }}
        securityContext:
          {{- toYaml $root.Values.containerSecurityContext | nindent 10 }}
        volumeMounts:
          - name: tmp
            mountPath: /tmp
    volumes:
      - name: tmp
        emptyDir: {}
{{- end -}}

{{/* A complete RayJob manifest. Arguments: dict with "root" and "job". */}}
{{- define "soilnet.rayJob" -}}
apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: {{ include "soilnet.fullname" .root }}-{{ .job }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "soilnet.labels" .root | nindent 4 }}
    app.kubernetes.io/component: ray-job
    soilnet.io/job: {{ .job }}
spec:
  {{- include "soilnet.rayJobSpec" . | nindent 2 }}
{{- end -}}
