package realcluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/fleet"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// TestClusterFleetMetrics turns the chart's fleetMetrics on and checks
// that the leader's Ingester, reading the fetcher's log through the
// kubelet (GET pods/log), counts each REFRESH_OK line of a real pod once
// and each REFRESH_FAIL by its reason, per namespace. The chart goes back
// to fleetMetrics.enabled=false at the end.
func TestClusterFleetMetrics(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	helmSet(t, kubeconfig, "fleetMetrics.enabled=true")
	t.Cleanup(func() { helmSet(t, kubeconfig, "fleetMetrics.enabled=false") })
	system := &clusterNS{kubeconfig: kubeconfig, ns: webhookNamespace}
	k := clusterNamespace(t, kubeconfig, true)

	// fleet sums a fleet metric of this namespace over the webhook's pods
	// (only the leader's Ingester counts), read through the API server's
	// pod proxy, optionally for one reason.
	fleetSum := func(name, reason string) (float64, error) {
		pods := strings.Fields(system.kubectl(t, "", "get", "pods", "-l", "app.kubernetes.io/name=aether-devhot,app.kubernetes.io/component=webhook",
			"--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}"))
		if len(pods) == 0 {
			return 0, fmt.Errorf("no running webhook pod")
		}
		var total float64
		for _, pod := range pods {
			text, err := system.run("", "get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:8080/proxy/metrics", webhookNamespace, pod))
			if err != nil {
				return 0, err
			}
			samples, err := bench.ParseMetrics([]byte(text), name)
			if err != nil {
				return 0, err
			}
			for _, s := range samples {
				if s.Labels["namespace"] == k.ns && (reason == "" || s.Labels["reason"] == reason) {
					total += s.Value
				}
			}
		}
		return total, nil
	}

	arts, err := realpod.ServeArtifacts(k.kc(), t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := realpod.DeploySample(k.kc(), 1, arts)
	if err != nil {
		t.Fatal(err)
	}
	for v := 2; v <= 3; v++ {
		if _, err := realpod.PatchAndWait(k.kc(), pods, v, arts.URL(v), arts.Versions[v].Digest, h1Ceiling); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
	}
	// A digest that the artifact does not match: REFRESH_FAIL reason=checksum.
	k.kubectl(t, "", "annotate", "--overwrite", "deployment", deployment,
		annotations.Digest+"=sha256:"+strings.Repeat("0", 64), annotations.ArtifactURL+"="+arts.URL(3))

	const published = 3 // versions 1, 2 and 3 on one pod
	start := time.Now()
	var ok, failed float64
	wait.For(t, "fleet metrics counting the pod's refreshes", 120*time.Second, func() (err error) {
		if ok, err = fleetSum(fleet.MetricRefreshTotal, ""); err != nil {
			return err
		}
		if failed, err = fleetSum(fleet.MetricRefreshFailureTotal, "checksum"); err != nil {
			return err
		}
		if ok != published || failed < 1 {
			return fmt.Errorf("%s %v (want %d), %s{reason=\"checksum\"} %v (want ≥ 1)",
				fleet.MetricRefreshTotal, ok, published, fleet.MetricRefreshFailureTotal, failed)
		}
		return nil
	})
	t.Logf("fleet metrics of %s, %d ms after the bad digest: %v refreshes, %v checksum failures",
		k.ns, time.Since(start).Milliseconds(), ok, failed)
	lines := logCount(t, k, "REFRESH_OK", pods[0], "-c", "aether-fetcher")
	if lines != published {
		t.Errorf("the fetcher logged %d REFRESH_OK lines, want %d", lines, published)
	}
	// Counted once: the total holds while the Ingester keeps reading.
	time.Sleep(5 * time.Second)
	if ok, err := fleetSum(fleet.MetricRefreshTotal, ""); err != nil || ok != published {
		t.Errorf("%s %v (%v) 5 s later, want %d", fleet.MetricRefreshTotal, ok, err, published)
	}
}
