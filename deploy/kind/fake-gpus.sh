#!/usr/bin/env bash
# Makes the GPU workers of the kind cluster (deploy/kind/kind-config.yaml) look like GPU
# nodes to the scheduler: the nvidia.com/gpu=true:NoSchedule taint, and nvidia.com/gpu
# capacity advertised through the node status (there is no real GPU or device plugin;
# a kubelet restart may drop the advertised capacity, rerun this script then).
set -euo pipefail
KUBECTL="${KUBECTL:-kubectl}"
for node in $($KUBECTL get nodes -l nvidia.com/gpu.product -o jsonpath='{.items[*].metadata.name}'); do
  count="$($KUBECTL get node "$node" -o jsonpath='{.metadata.labels.nvidia\.com/gpu\.count}')"
  $KUBECTL taint nodes "$node" nvidia.com/gpu=true:NoSchedule --overwrite
  $KUBECTL patch node "$node" --subresource=status --type=json -p \
    "[{\"op\":\"add\",\"path\":\"/status/capacity/nvidia.com~1gpu\",\"value\":\"${count:-1}\"}]"
done
