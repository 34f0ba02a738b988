#!/usr/bin/env bash
# make e2e-kind: the install paths of the README, end to end on a kind
# cluster with real pods.
#
#  1. create the kind cluster (hack/kind/kind-config.yaml);
#  2. build the image (Dockerfile) and load it into the nodes;
#  3. install cert-manager from its published manifest and wait for it;
#  4. install the chart (Helm, cert-manager TLS) and wait for the webhook;
#  5. run the Go e2e package (test/e2e, TestKindH1H2) against the cluster:
#     it applies the sample test/testdata/deployment.yaml, patches its digest
#     and asserts H1 (new code answers) and H2 (same digest: no download, no
#     restart) on the real pods.
#
# Without a Docker engine it prints "docker not available: skipped" and
# exits 0. Environment: IMG (image, default aether-devhot:dev), KIND (kind
# binary; default: kind on PATH, else built from sigs.k8s.io/kind),
# KEEP_CLUSTER=1 (leave the cluster for debugging).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "docker not available: skipped"
  exit 0
fi

img=${IMG:-aether-devhot:dev}
cluster=aether-devhot
namespace=aether-system
cert_manager_version=v1.21.2
kind_version=v0.33.0
kind=${KIND:-}
if [[ -z "$kind" ]]; then
  if command -v kind >/dev/null 2>&1; then kind=kind; else kind="go run sigs.k8s.io/kind@$kind_version"; fi
fi

"$root/hack/build-tools.sh"  # pinned kubectl and helm into bin/
kubectl="$root/bin/kubectl"
helm="$root/bin/helm"
work=$(mktemp -d)
export KUBECONFIG="$work/kubeconfig"

cleanup() {
  if [[ "${KEEP_CLUSTER:-}" == 1 ]]; then
    echo "cluster kept: KUBECONFIG=$KUBECONFIG; delete it with: $kind delete cluster --name $cluster"
  else
    $kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
}
trap cleanup EXIT

step() { echo "==> $*"; }

step "kind cluster $cluster"
$kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
$kind create cluster --name "$cluster" --config "$root/hack/kind/kind-config.yaml" --kubeconfig "$KUBECONFIG" --wait 120s

step "image $img"
docker build -t "$img" "$root"
$kind load docker-image "$img" --name "$cluster"

step "cert-manager $cert_manager_version"
"$kubectl" apply -f "https://github.com/cert-manager/cert-manager/releases/download/$cert_manager_version/cert-manager.yaml"
"$kubectl" -n cert-manager wait --for=condition=Available --timeout=300s deployment --all

step "chart charts/aether-devhot"
"$helm" upgrade --install aether-devhot "$root/charts/aether-devhot" \
  --namespace "$namespace" --create-namespace \
  --set image.repository="${img%:*}" --set image.tag="${img##*:}" \
  --wait --timeout 300s
"$kubectl" -n "$namespace" rollout status deployment/aether-devhot --timeout=120s
# The API server calls the webhook only once cainjector has filled caBundle.
for _ in $(seq 60); do
  ca=$("$kubectl" get mutatingwebhookconfiguration aether-devhot -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
  [[ -n "$ca" ]] && break
  sleep 2
done
[[ -n "$ca" ]] || { echo "caBundle was not injected by cert-manager" >&2; exit 1; }

step "e2e: sample Deployment, digest patch, H1 and H2 on real pods"
# The Go e2e package, pointed at this cluster: TestKindH1H2 serves the
# artifacts from inside the cluster and asks the app from inside its pod.
# (The package's TestMain also starts the local control plane, from bin/.)
cd "$root"
KUBEBUILDER_ASSETS="$root/bin" AETHER_E2E_KUBECONFIG="$KUBECONFIG" \
  go test ./test/e2e/realcluster -run '^TestKindH1H2$' -count=1 -v -timeout 20m
