#!/usr/bin/env bash
# Builds the pinned local control plane into bin/: kube-apiserver and kubectl
# from k8s.io/kubernetes (hack/tools/kube), etcd from go.etcd.io/etcd
# (hack/tools/etcd). A binary is rebuilt only when its pin (go.mod, go.sum)
# changes. The first kube-apiserver build takes about 10-20 minutes on 2 cores;
# after that Go's build cache makes it seconds.
#
# `hack/build-tools.sh cluster` builds, in addition, what only the real
# single-node cluster (test/framework/cluster, make cluster-up) runs:
# kube-controller-manager, kube-scheduler, kubelet and kube-proxy from the
# same pin, in one go build call (2 to 12 minutes cold on 2 cores, and about
# 4 GB more build cache), the cluster's container registry from
# github.com/distribution/distribution/v3 (hack/tools/registry, about a
# minute cold) and its DNS server from github.com/coredns/coredns
# (hack/tools/coredns, about two minutes cold). make tools never builds them; make test and make demo do,
# where the machine can run that cluster (Linux, root).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
mkdir -p "$bin"

k8s_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$root/hack/tools/kube/go.mod")
minor=$(echo "$k8s_version" | cut -d. -f2)
version_ldflags="-X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"

pin() { cat "$root/hack/tools/$1/go.mod" "$root/hack/tools/$1/go.sum" | sha256sum | cut -c1-16; }

# progress prints one line every 25 packages that go build -v compiles, and
# every line that is not a package path: the go command's own messages
# ("go: ...", "# pkg" headers, "file.go:12:3: ..."). A package path never has
# a space or a colon, however much it looks like an error
# (github.com/pkg/errors).
progress() {
  local n=0 start=$SECONDS
  while IFS= read -r line; do
    case "$line" in
      *" "*|*:*) echo "  $line" ;;
      *) n=$((n + 1)); if (( n % 25 == 0 )); then echo "  ... $n packages compiled ($((SECONDS - start))s)"; fi ;;
    esac
  done
}

build() { # name module package ldflags
  local name=$1 mod=$2 pkg=$3 ldflags=$4 want
  want=$(pin "$mod")
  if [[ -x "$bin/$name" && "$(cat "$bin/.$name.pin" 2>/dev/null)" == "$want" ]]; then
    return
  fi
  echo "building bin/$name from $pkg (pinned in hack/tools/$mod)"
  local start=$SECONDS
  if ! (cd "$root/hack/tools/$mod" && go build -v -trimpath -ldflags "-s -w $ldflags" -o "$bin/$name" "$pkg") 2>&1 | progress; then
    echo "building bin/$name failed" >&2
    exit 1
  fi
  echo "$want" > "$bin/.$name.pin"
  echo "built bin/$name in $((SECONDS - start))s"
}

build etcd etcd . ""
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$version_ldflags"
build kubectl kube k8s.io/kubernetes/cmd/kubectl "$version_ldflags"
build helm helm helm.sh/helm/v3/cmd/helm "$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); printf "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=%s -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=%s", v[2], v[2] }' "$root/hack/tools/helm/go.mod")"

# build_cluster builds the cluster-only binaries, each rebuilt only when the
# kube pin changes, in one go build so that their shared packages compile once.
build_cluster() {
  local want names=() pkgs=() name
  want=$(pin kube)
  for name in kube-controller-manager kube-scheduler kubelet kube-proxy; do
    if [[ ! -x "$bin/$name" || "$(cat "$bin/.$name.pin" 2>/dev/null)" != "$want" ]]; then
      names+=("$name")
      pkgs+=("k8s.io/kubernetes/cmd/$name")
    fi
  done
  (( ${#names[@]} )) || return 0
  echo "building bin/{${names[*]}} (pinned in hack/tools/kube)"
  local start=$SECONDS
  if ! (cd "$root/hack/tools/kube" && go build -v -trimpath -ldflags "-s -w $version_ldflags" -o "$bin/" "${pkgs[@]}") 2>&1 | progress; then
    echo "building ${names[*]} failed" >&2
    exit 1
  fi
  for name in "${names[@]}"; do echo "$want" > "$bin/.$name.pin"; done
  echo "built ${names[*]} in $((SECONDS - start))s"
}

case "${1:-}" in
  "") ;;
  cluster)
    build_cluster
    build registry registry . "-X github.com/distribution/distribution/v3/version.version=$(awk '$1 == "require" && $2 == "github.com/distribution/distribution/v3" {print $3}' "$root/hack/tools/registry/go.mod")"
    build coredns coredns . "-X github.com/coredns/coredns/coremain.GitCommit=$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" {print $3}' "$root/hack/tools/coredns/go.mod")"
    ;;
  *) echo "usage: $0 [cluster]" >&2; exit 2 ;;
esac
