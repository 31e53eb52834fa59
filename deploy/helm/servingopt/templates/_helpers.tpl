{{/* Names and labels shared by every template. */}}
{{- define "servingopt.name" -}}servingopt{{- end }}

{{- define "servingopt.fullname" -}}
{{- if contains "servingopt" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-servingopt" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end }}

{{- define "servingopt.labels" -}}
app.kubernetes.io/name: servingopt
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: servingopt
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "servingopt.selector" -}}
app.kubernetes.io/name: servingopt
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The rules of the role (kind, name) in a file under files/ (copied from deploy/ by
`make chart-sync`, kept equal by a test): (list $ file kind name). */}}
{{- define "servingopt.rulesOf" -}}
{{- $kind := index . 2 -}}
{{- $name := index . 3 -}}
{{- range ((index . 0).Files.Get (index . 1) | splitList "\n---\n") }}
{{- $doc := fromYaml . }}
{{- if and $doc (eq (get $doc "kind") $kind) (eq (get $doc.metadata "name") $name) }}
{{- toYaml $doc.rules }}
{{- end }}
{{- end }}
{{- end }}

{{- define "servingopt.operatorRules" -}}
{{- if .Values.recommendOnly -}}
{{ include "servingopt.rulesOf" (list . "files/read-only-cluster-role.yaml" "ClusterRole" "servingopt") }}
{{- else -}}
{{ include "servingopt.rulesOf" (list . "files/rbac.yaml" "ClusterRole" "servingopt") }}
{{- end -}}
{{- end }}
