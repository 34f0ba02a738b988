package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// okAt and failAt are fetcher marker lines, kubelet-stamped at t0+d.
func okAt(d time.Duration, latencyMS int) string {
	return stamp(d, "REFRESH_OK digest="+digest+" latency_ms="+strconv.Itoa(latencyMS)+" bytes=20 files=2 downloaded=154")
}

func failAt(d time.Duration, reason string) string {
	return stamp(d, "REFRESH_FAIL reason="+reason+" digest="+digest+` error="unexpected EOF" attempt=1 retry_in_ms=250`)
}

// fetcherPod is a dev-hot pod whose fetcher runs, as an initContainer in
// native mode or a container in legacy mode, owned by the ReplicaSet
// name-rs of an injected Deployment name (startIngester makes both).
func fetcherPod(namespace, name string, native bool) *corev1.Pod {
	return replica(namespace, name, name, native)
}

// replica is fetcherPod for a pod name of Deployment deployment.
func replica(namespace, deployment, name string, native bool) *corev1.Pod {
	pod := strayPod(namespace, name, native)
	pod.OwnerReferences = []metav1.OwnerReference{controllerRef("ReplicaSet", namespace, deployment+"-rs")}
	return pod
}

// strayPod looks like a dev-hot pod — the annotation, a running
// aether-fetcher — but nothing owns it: anyone who may create pods can
// make one.
func strayPod(namespace, name string, native bool) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   namespace,
			Name:        name,
			UID:         uid(namespace, name),
			Annotations: map[string]string{annotations.DevHot: annotations.DevHotEnabled},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	st := []corev1.ContainerStatus{{Name: fetcherContainer, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if native {
		pod.Status.InitContainerStatuses = st
	} else {
		pod.Status.ContainerStatuses = st
	}
	return pod
}

func uid(namespace, name string) types.UID { return types.UID("uid-" + namespace + "-" + name) }

func controllerRef(kind, namespace, name string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid(namespace, name), Controller: ptr.To(true)}
}

// ownersOf are the ReplicaSets that pods name as their controller, each
// owned by the Deployment whose name it ends in -rs, with the webhook's
// injection record.
func ownersOf(pods []*corev1.Pod) []runtime.Object {
	var objs []runtime.Object
	seen := map[string]bool{}
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil || seen[p.Namespace+"/"+ref.Name] {
			continue
		}
		seen[p.Namespace+"/"+ref.Name] = true
		deployment := strings.TrimSuffix(ref.Name, "-rs")
		objs = append(objs,
			&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
				Namespace: p.Namespace, Name: ref.Name, UID: ref.UID,
				OwnerReferences: []metav1.OwnerReference{controllerRef("Deployment", p.Namespace, deployment)},
			}},
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
				Namespace: p.Namespace, Name: deployment, UID: uid(p.Namespace, deployment),
				Annotations: map[string]string{annotations.Injected: `{"v":1}`},
			}})
	}
	return objs
}

// ingestHarness runs an Ingester against a fake clientset for the pods and
// fakeLogs for their logs, counting from t0.
type ingestHarness struct {
	t      *testing.T
	client *fake.Clientset
	logs   *fakeLogs
	reg    *prometheus.Registry
	ing    *Ingester
	cancel context.CancelFunc
	done   chan error
}

func startIngester(t *testing.T, logs *fakeLogs, pods ...*corev1.Pod) *ingestHarness {
	t.Helper()
	return startIngesterWith(t, logs, nil, pods...)
}

// startIngesterWith is startIngester with more options.
func startIngesterWith(t *testing.T, logs *fakeLogs, opts []Option, pods ...*corev1.Pod) *ingestHarness {
	t.Helper()
	h := &ingestHarness{t: t, logs: logs, reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	objs := ownersOf(pods)
	for _, p := range pods {
		objs = append(objs, p)
	}
	h.client = fake.NewClientset(objs...)
	opts = append([]Option{WithLogSource(logs), WithBackoff(time.Millisecond, 10*time.Millisecond), withClock(func() time.Time { return t0 })}, opts...)
	ing, err := New(h.client, h.reg, testr.NewWithOptions(t, testr.Options{Verbosity: 1}), opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.ing = ing
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- ing.Start(ctx) }()
	t.Cleanup(h.stop)
	// The fake clientset drops changes made between the informer's list
	// and its watch; wait for the watch before the script changes pods.
	wait.For(t, "the informers watch", 5*time.Second, func() error {
		for _, r := range []string{"pods", "replicasets", "deployments"} {
			if !slices.ContainsFunc(h.client.Actions(), func(a k8stesting.Action) bool {
				return a.GetVerb() == "watch" && a.GetResource().Resource == r
			}) {
				return fmt.Errorf("no watch on %s in %d actions", r, len(h.client.Actions()))
			}
		}
		return nil
	})
	return h
}

// stop ends the Ingester and waits for Start to return; it is idempotent.
func (h *ingestHarness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Start: %v", err)
		}
	case <-time.After(5 * time.Second):
		h.t.Fatal("Start did not return after its context ended")
	}
}

func (h *ingestHarness) update(pod *corev1.Pod) {
	h.t.Helper()
	if _, err := h.client.CoreV1().Pods(pod.Namespace).Update(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// waitStored waits until the informer's store holds pod's fetcher as given.
func (h *ingestHarness) waitStored(pod *corev1.Pod) {
	h.t.Helper()
	slim, _ := slimPod(pod)
	want, _ := fetcherOf(slim.(*corev1.Pod))
	wait.For(h.t, "the informer sees "+pod.Name, 5*time.Second, func() error {
		obj, ok, err := h.ing.pods.GetByKey(pod.Namespace + "/" + pod.Name)
		if err != nil || !ok {
			return fmt.Errorf("not stored: %v", err)
		}
		if got, _ := fetcherOf(obj.(*corev1.Pod)); got != want {
			return fmt.Errorf("stored %+v, want %+v", got, want)
		}
		return nil
	})
}

// waitSamples waits until the metrics are exactly want.
func (h *ingestHarness) waitSamples(want map[string]float64) {
	h.t.Helper()
	wait.For(h.t, "metrics", 5*time.Second, func() error {
		if got := samples(h.t, h.reg); !maps.Equal(got, want) {
			return fmt.Errorf("\n got %v\nwant %v", got, want)
		}
		return nil
	})
}

func (h *ingestHarness) tails() int {
	h.ing.mu.Lock()
	defer h.ing.mu.Unlock()
	return len(h.ing.tails)
}

// TestIngester drives the Ingester end to end — pod informer, tails,
// cursors, parser, metrics — with a fake clientset for the pods and a
// scripted log source for GET pods/log, which needs a kubelet. Each case
// ends with the metrics equal to want, waited for, and still equal once
// the Ingester has stopped: a line counted twice would show.
func TestIngester(t *testing.T) {
	web := func() *corev1.Pod { return fetcherPod("team-a", "web", false) }
	tests := []struct {
		name string
		// setup fills the logs before the Ingester starts.
		setup  func(logs *fakeLogs)
		pods   []*corev1.Pod
		script func(h *ingestHarness)
		want   map[string]float64
		// previous is how many times a previous instance's log is read.
		previous int
	}{
		{
			name: "per namespace, from Start on, dev-hot pods only",
			setup: func(logs *fakeLogs) {
				logs.add("team-a/web",
					okAt(-time.Second, 100), // before Start: the previous leader's
					okAt(time.Second, 250),
					stamp(time.Second+time.Millisecond, `time=2026-01-02T03:04:06.001Z level=INFO msg="fetcher started" namespace=team-a deployment=web mode=watch`),
					failAt(2*time.Second, "checksum"))
				logs.add("team-b/api", failAt(time.Second, "http_status"), okAt(3*time.Second, 500))
				logs.add("team-a/plain", okAt(time.Second, 1))
			},
			pods: []*corev1.Pod{
				web(),
				fetcherPod("team-b", "api", true),
				func() *corev1.Pod {
					p := fetcherPod("team-a", "plain", false)
					p.Annotations = nil
					return p
				}(),
			},
			script: func(h *ingestHarness) {
				h.logs.add("team-a/web", okAt(4*time.Second, 500))
			},
			want: map[string]float64{
				"dev_hot_fleet_refresh_total{namespace=team-a}":                            2,
				"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-a}":            2,
				"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-a}":              0.75,
				"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=checksum}":    1,
				"dev_hot_fleet_refresh_total{namespace=team-b}":                            1,
				"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-b}":            1,
				"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-b}":              0.5,
				"dev_hot_fleet_refresh_failure_total{namespace=team-b,reason=http_status}": 1,
			},
		},
		{
			name: "broken streams resume without counting twice",
			setup: func(logs *fakeLogs) {
				// Two lines share a timestamp, and every reconnect asks for
				// whole seconds, so each one replays lines already counted.
				logs.add("team-a/web",
					okAt(time.Second, 250), okAt(time.Second, 250),
					okAt(time.Second+5*time.Millisecond, 250), okAt(2*time.Second, 250))
				// The first stream breaks inside its second line, the next
				// inside its third.
				logs.breakAt("team-a/web", 1, 2)
			},
			pods: []*corev1.Pod{web()},
			want: map[string]float64{
				"dev_hot_fleet_refresh_total{namespace=team-a}":                 4,
				"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-a}": 4,
				"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-a}":   1,
			},
		},
		{
			name:  "a container restart: its last lines are read once, from the previous instance",
			setup: func(logs *fakeLogs) { logs.add("team-a/web", okAt(time.Second, 250)) },
			pods:  []*corev1.Pod{web()},
			script: func(h *ingestHarness) {
				h.waitSamples(map[string]float64{
					"dev_hot_fleet_refresh_total{namespace=team-a}":                 1,
					"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-a}": 1,
					"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-a}":   0.25,
				})
				restarted := web()
				restarted.Status.ContainerStatuses[0].RestartCount = 1
				h.update(restarted)
				h.waitStored(restarted)
				// The open stream breaks; the old instance then writes a
				// failure that no stream sees, and the new one starts.
				h.logs.crash("team-a/web", []string{failAt(2*time.Second, "extract")}, []string{okAt(3*time.Second, 250)})
				h.logs.add("team-a/web", okAt(4*time.Second, 500))
			},
			want: map[string]float64{
				"dev_hot_fleet_refresh_total{namespace=team-a}":                        3,
				"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-a}":        3,
				"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-a}":          1,
				"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=extract}": 1,
			},
			previous: 1,
		},
		{
			name: "a pod is tailed once its fetcher has a status",
			setup: func(logs *fakeLogs) {
				logs.add("team-a/web", failAt(time.Second, "download"))
			},
			pods: []*corev1.Pod{func() *corev1.Pod {
				p := web()
				p.Status = corev1.PodStatus{Phase: corev1.PodPending}
				return p
			}()},
			script: func(h *ingestHarness) {
				if n := len(h.logs.opened()); n != 0 {
					h.t.Errorf("%d streams opened before the fetcher had a status", n)
				}
				h.update(web())
			},
			want: map[string]float64{
				"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=download}": 1,
			},
		},
		{
			name:  "a deleted pod's tail ends and is forgotten",
			setup: func(logs *fakeLogs) { logs.add("team-a/web", failAt(time.Second, "publish")) },
			pods:  []*corev1.Pod{web()},
			script: func(h *ingestHarness) {
				h.waitSamples(map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=publish}": 1})
				if err := h.client.CoreV1().Pods("team-a").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
					h.t.Fatal(err)
				}
				h.logs.remove("team-a/web")
				wait.For(h.t, "the tail is forgotten", 5*time.Second, func() error {
					if n := h.tails(); n != 0 {
						return fmt.Errorf("%d tails", n)
					}
					return nil
				})
			},
			want: map[string]float64{"dev_hot_fleet_refresh_failure_total{namespace=team-a,reason=publish}": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := newFakeLogs()
			tc.setup(logs)
			h := startIngester(t, logs, tc.pods...)
			if tc.script != nil {
				tc.script(h)
			}
			h.waitSamples(tc.want)
			h.stop()
			if err := h.ing.Start(context.Background()); err == nil {
				t.Error("a second Start succeeded")
			}
			if got := samples(t, h.reg); !maps.Equal(got, tc.want) {
				t.Errorf("after stop\n got %v\nwant %v", got, tc.want)
			}
			for _, o := range logs.opened() {
				if o.pod == "team-a/plain" {
					t.Errorf("the log of a pod without %s was opened", annotations.DevHot)
				}
			}
			previous := 0
			for _, o := range logs.opened() {
				if o.previous {
					previous++
				}
			}
			if previous != tc.previous {
				t.Errorf("previous instances read %d times, want %d: %+v", previous, tc.previous, logs.opened())
			}
		})
	}
}
