// Package realcluster holds the end-to-end tests that run on real pods: the
// TestCluster* tests on the single-node cluster of test/framework/cluster
// (make test-cluster sets AETHER_CLUSTER_KUBECONFIG) and TestKindH1H2 on a
// kind cluster (make e2e-kind sets AETHER_E2E_KUBECONFIG). Without those
// variables every test skips. Unlike test/e2e, it starts no local control
// plane: the cluster under test is the only one.
package realcluster
