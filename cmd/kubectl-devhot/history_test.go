package main

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// TestReleases folds Events into releases, newest first, with each pod's
// outcome and where each is still kept.
func TestReleases(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	var evs []eventsv1.Event
	add := func(rec refresh.Record, pod string, s int) { evs = append(evs, *refreshEvent(rec, pod, at(s))) }
	for i, c := range []string{"a", "b", "c", "e"} {
		for _, pod := range []string{"p1", "p2"} {
			add(refresh.Record{Marker: refresh.MarkerOK, Digest: d(c), Commit: "commit-" + c}, pod, 10*i)
			add(refresh.Record{Marker: refresh.MarkerLive, Digest: d(c)}, pod, 10*i+1)
		}
	}
	add(refresh.Record{Marker: refresh.MarkerOK, Digest: d("f")}, "p1", 50)
	add(refresh.Record{Marker: refresh.MarkerFail, Reason: refresh.ReasonAppCrashed, Digest: d("f"), Error: "x", GaveUp: true, RolledBackTo: d("e")}, "p1", 51)

	rs := releases(evs)
	var got []string
	for _, r := range rs {
		got = append(got, r.digest[7:8])
	}
	if want := []string{"f", "e", "c", "b", "a"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("releases %v, want newest first %v", got, want)
	}
	if rs[0].live() || outcome(rs[0].pods["p1"]) != "app_crashed, rolled back" {
		t.Errorf("f: live %v, p1 %q", rs[0].live(), outcome(rs[0].pods["p1"]))
	}
	if !rs[1].live() || rs[1].commit != "commit-e" || outcome(rs[1].pods["p2"]) != "live" {
		t.Errorf("e: %+v", rs[1])
	}
	// p1 published a, b, c, e, f: it keeps the last KeepReleases.
	if sidecar.KeepReleases != 3 {
		t.Fatalf("the test assumes 3 releases kept, not %d", sidecar.KeepReleases)
	}
	for _, c := range []struct {
		digest string
		onDisk []string
	}{{"f", []string{"p1"}}, {"e", []string{"p1", "p2"}}, {"c", []string{"p1", "p2"}}, {"b", []string{"p2"}}, {"a", nil}} {
		for _, r := range rs {
			if r.digest == d(c.digest) && !reflect.DeepEqual(r.onDisk, c.onDisk) {
				t.Errorf("%s kept on %v, want %v", c.digest, r.onDisk, c.onDisk)
			}
		}
	}

	// rollback: the newest live release before the desired one.
	if to, commit, err := rollbackTo(rs, d("f"), ""); err != nil || to != d("e") || commit != "commit-e" {
		t.Errorf("rollbackTo(f) = %s, %s, %v; want e", to, commit, err)
	}
	if to, _, err := rollbackTo(rs, d("e"), ""); err != nil || to != d("c") {
		t.Errorf("rollbackTo(e) = %s, %v; want c", to, err)
	}
	if to, _, err := rollbackTo(rs, d("e"), d("a")); err != nil || to != d("a") {
		t.Errorf("rollbackTo(--to a) = %s, %v", to, err)
	}
	if _, _, err := rollbackTo(rs, d("e"), d("9")); err == nil || !strings.Contains(err.Error(), "no pod has reported") {
		t.Errorf("rollbackTo(--to unknown) = %v", err)
	}
	if _, _, err := rollbackTo(rs, d("e"), "sha256:zz"); err == nil || !strings.Contains(err.Error(), "--to: ") {
		t.Errorf("rollbackTo(--to malformed) = %v", err)
	}
	if _, _, err := rollbackTo(nil, d("e"), ""); err == nil || !strings.Contains(err.Error(), "nothing to roll back to") {
		t.Errorf("rollbackTo with no history = %v", err)
	}
}

func TestSwapDigest(t *testing.T) {
	a, b := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	if got, err := swapDigest("http://store.svc/v1/blobs/sha256/"+a[7:], a, b); err != nil || got != "http://store.svc/v1/blobs/sha256/"+b[7:] {
		t.Errorf("store URL: %q, %v", got, err)
	}
	if _, err := swapDigest("http://files.example/app.tgz", a, b); err == nil || !strings.Contains(err.Error(), "pass --artifact-url") {
		t.Errorf("a URL without the digest: %v", err)
	}
}

func TestLogContainers(t *testing.T) {
	native := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "wait-for-db"}, {Name: sidecar.ContainerName}},
		Containers:     []corev1.Container{{Name: "exporter"}, {Name: "api"}},
	}}
	legacy := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: sidecar.ContainerName}, {Name: "api"}}}}
	for _, c := range []struct {
		pod  *corev1.Pod
		o    logsOptions
		want []string
	}{
		{native, logsOptions{}, []string{sidecar.ContainerName, "exporter", "api"}},
		{native, logsOptions{fetcher: true}, []string{sidecar.ContainerName}},
		{native, logsOptions{app: true}, []string{"exporter", "api"}},
		{legacy, logsOptions{}, []string{sidecar.ContainerName, "api"}},
		{legacy, logsOptions{app: true}, []string{"api"}},
	} {
		if got := logContainers(c.pod, c.o); !reflect.DeepEqual(got, c.want) {
			t.Errorf("logContainers(%+v) = %v, want %v", c.o, got, c.want)
		}
	}
}

// TestLogs prefixes each line with its pod and container, for every
// running pod of the Deployment.
func TestLogs(t *testing.T) {
	sel := map[string]string{"app": "web"}
	pod := func(name string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: sel},
			Spec:       corev1.PodSpec{InitContainers: []corev1.Container{{Name: sidecar.ContainerName}}, Containers: []corev1.Container{{Name: "app"}}},
			Status:     corev1.PodStatus{Phase: phase},
		}
	}
	client := fake.NewClientset(
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}, Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: sel}}},
		pod("web-1", corev1.PodRunning), pod("web-2", corev1.PodRunning), pod("web-3", corev1.PodPending))
	c := &cluster{client: client, namespace: "ns"}
	d, err := c.deployment(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := c.logs(context.Background(), d, logsOptions{tail: 5}, &syncWriter{w: &out}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// The fake API server answers every log with "fake logs".
	for _, want := range []string{"web-1 aether-fetcher | fake logs", "web-1 app | fake logs", "web-2 aether-fetcher | fake logs", "web-2 app | fake logs"} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("logs lack %q:\n%s", want, out.String())
		}
	}
	if len(lines) != 4 || strings.Contains(out.String(), "web-3") {
		t.Errorf("logs of %d streams, want 4 (the pending pod has none):\n%s", len(lines), out.String())
	}
}
