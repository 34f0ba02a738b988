package fleet

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

// TestOwnersInjected: a pod counts only through the controller chain pod →
// ReplicaSet → Deployment, each matched by UID, to a Deployment with the
// webhook's injection record.
func TestOwnersInjected(t *testing.T) {
	pod := fetcherPod("team-a", "web", false)
	edit := func(objs []runtime.Object, f func(rs *appsv1.ReplicaSet, d *appsv1.Deployment)) []runtime.Object {
		rs, d := objs[0].(*appsv1.ReplicaSet).DeepCopy(), objs[1].(*appsv1.Deployment).DeepCopy()
		f(rs, d)
		return []runtime.Object{rs, d}
	}
	good := ownersOf([]*corev1.Pod{pod})
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		objs []runtime.Object
		want bool
	}{
		{"owned by an injected Deployment", pod, good, true},
		{"no owner", strayPod("team-a", "web", false), good, false},
		{"owners not seen yet", pod, nil, false},
		{"the Deployment has no injection record", pod, edit(good, func(_ *appsv1.ReplicaSet, d *appsv1.Deployment) { d.Annotations = nil }), false},
		{"the ReplicaSet was replaced: another UID", pod, edit(good, func(rs *appsv1.ReplicaSet, _ *appsv1.Deployment) { rs.UID = "other" }), false},
		{"the Deployment was replaced: another UID", pod, edit(good, func(_ *appsv1.ReplicaSet, d *appsv1.Deployment) { d.UID = "other" }), false},
		{"the ReplicaSet has no controller", pod, edit(good, func(rs *appsv1.ReplicaSet, _ *appsv1.Deployment) { rs.OwnerReferences[0].Controller = nil }), false},
		{"a pod owned by something else", func() *corev1.Pod {
			p := pod.DeepCopy()
			p.OwnerReferences[0].Kind = "StatefulSet"
			return p
		}(), good, false},
		{"an owner in another namespace", func() *corev1.Pod {
			p := pod.DeepCopy()
			p.Namespace = "team-b"
			return p
		}(), good, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := owners{
				replicaSets: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{ownerIndex: byController}),
				deployments: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}),
			}
			for _, obj := range tc.objs {
				var err error
				switch obj := obj.(type) {
				case *appsv1.ReplicaSet:
					slim, _ := slimReplicaSet(obj)
					err = o.replicaSets.Add(slim)
				case *appsv1.Deployment:
					slim, _ := slimDeployment(obj)
					err = o.deployments.Add(slim)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			slim, _ := slimPod(tc.pod)
			if got := o.injected(slim.(*corev1.Pod)); got != tc.want {
				t.Errorf("injected = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestIngesterStreamSlots: the review's finding — 100 idle pods that only
// look like dev-hot pods took every stream slot, and a real REFRESH_OK was
// never counted — and its sibling, one namespace with more real fetchers
// than slots. Each ends with the other namespace's refresh counted.
func TestIngesterStreamSlots(t *testing.T) {
	tests := []struct {
		name string
		pods func() []*corev1.Pod
		opts []Option
		want map[string]float64
	}{
		{
			name: "a flood of pods that no injected Deployment owns",
			pods: func() []*corev1.Pod {
				var pods []*corev1.Pod
				for n := range 100 {
					pods = append(pods, strayPod("team-a", fmt.Sprintf("fake-%03d", n), n%2 == 0))
				}
				return append(pods, fetcherPod("team-b", "api", true))
			},
			want: map[string]float64{
				"dev_hot_fleet_pods_ignored{namespace=team-a}":                  100,
				"dev_hot_fleet_refresh_total{namespace=team-b}":                 1,
				"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-b}": 1,
				"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-b}":   0.25,
			},
		},
		{
			name: "a namespace with more fetchers than its slots",
			pods: func() []*corev1.Pod {
				var pods []*corev1.Pod
				for n := range 100 {
					pods = append(pods, replica("team-a", "web", fmt.Sprintf("web-%03d", n), false))
				}
				return append(pods, fetcherPod("team-b", "api", true))
			},
			opts: []Option{WithStreamsPerNamespace(10)},
			want: map[string]float64{
				// Ten streams open, and stay open; ninety wait.
				"dev_hot_fleet_refresh_total{namespace=team-a}":                 10,
				"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-a}": 10,
				"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-a}":   2.5,
				"dev_hot_fleet_streams_waiting{namespace=team-a}":               90,
				"dev_hot_fleet_refresh_total{namespace=team-b}":                 1,
				"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-b}": 1,
				"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-b}":   0.25,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := newFakeLogs()
			pods := tc.pods()
			for _, p := range pods {
				logs.add(p.Namespace+"/"+p.Name, okAt(time.Second, 250))
			}
			h := startIngesterWith(t, logs, tc.opts, pods...)
			h.waitSamples(tc.want)
			for _, o := range logs.opened() {
				if strings.HasPrefix(o.pod, "team-a/fake-") {
					t.Fatalf("the log of %s, which no injected Deployment owns, was opened", o.pod)
				}
			}
		})
	}
}

// TestIngesterOwnerSeenAfterPod: the pod informer and the owners' informers
// are separate watches, so a new pod can come before its ReplicaSet. It is
// ignored until then, and tailed when the ReplicaSet comes.
func TestIngesterOwnerSeenAfterPod(t *testing.T) {
	logs := newFakeLogs()
	logs.add("team-a/web-0", okAt(time.Second, 250))
	pod := replica("team-a", "web", "web-0", true)
	h := startIngesterWith(t, logs, nil)
	ctx := context.Background()
	if _, err := h.client.CoreV1().Pods("team-a").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitSamples(map[string]float64{"dev_hot_fleet_pods_ignored{namespace=team-a}": 1})
	objs := ownersOf([]*corev1.Pod{pod})
	// The Deployment first, then the ReplicaSet: the ReplicaSet's event
	// finds the pod.
	if _, err := h.client.AppsV1().Deployments("team-a").Create(ctx, objs[1].(*appsv1.Deployment), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs := objs[0].(*appsv1.ReplicaSet)
	if _, err := h.client.AppsV1().ReplicaSets("team-a").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"dev_hot_fleet_refresh_total{namespace=team-a}":                 1,
		"dev_hot_fleet_refresh_latency_seconds_count{namespace=team-a}": 1,
		"dev_hot_fleet_refresh_latency_seconds_sum{namespace=team-a}":   0.25,
	}
	h.waitSamples(want)

	// The injection record goes (the label was removed): the pod is
	// ignored again, and its tail ends.
	d := objs[1].(*appsv1.Deployment).DeepCopy()
	delete(d.Annotations, annotations.Injected)
	if _, err := h.client.AppsV1().Deployments("team-a").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want["dev_hot_fleet_pods_ignored{namespace=team-a}"] = 1
	h.waitSamples(want)
}
