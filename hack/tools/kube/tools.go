//go:build tools

// Package tools records the Kubernetes commands this module builds, so that
// go mod tidy keeps their dependencies: kube-apiserver and kubectl for the
// local control plane (make tools), and the node and controller binaries
// that only the real single-node cluster needs (hack/build-tools.sh cluster).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
