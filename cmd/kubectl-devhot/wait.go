package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// podState is how far one pod has got with the digest.
type podState struct {
	published bool
	live      time.Duration // since the annotation; 0 while not live
}

// rollout follows one digest's Events until every expected pod has
// loaded it. With no Pods to list (a local control plane has no kubelet),
// it expects as many distinct pods as the Deployment's replicas.
type rollout struct {
	digest string
	sent   time.Time
	want   []string // pod names, sorted; nil to count
	count  int
	pods   map[string]*podState
	out    io.Writer
}

func newRollout(digest string, sent time.Time, pods []string, replicas int, out io.Writer) *rollout {
	r := &rollout{digest: digest, sent: sent, want: pods, count: len(pods), pods: map[string]*podState{}, out: out}
	if pods == nil {
		r.count = replicas
	}
	return r
}

// expectedPods lists the running pods of d, or nil when there are none.
func expectedPods(ctx context.Context, c *cluster, d *appsv1.Deployment) ([]string, int, error) {
	replicas := 1
	if d.Spec.Replicas != nil {
		replicas = int(*d.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, replicas, err
	}
	list, err := c.client.CoreV1().Pods(c.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, replicas, fmt.Errorf("list pods of %s: %w", d.Name, err)
	}
	var names []string
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names, replicas, nil
}

// observe takes one Event and reports whether every pod is live, or an
// error naming the reason of a failed refresh of this digest. Only the
// fetcher's refresh Events count (refresh.FromEvent).
func (r *rollout) observe(e *eventsv1.Event, at time.Time) (bool, error) {
	rec, pod, ok := refresh.FromEvent(e)
	if !ok || rec.Digest != r.digest {
		return false, nil
	}
	if r.want != nil && !slices.Contains(r.want, pod) {
		return false, nil
	}
	st := r.pods[pod]
	if st == nil {
		st = &podState{}
		r.pods[pod] = st
	}
	switch rec.Marker {
	case refresh.MarkerFail:
		return false, fmt.Errorf("pod %s: refresh failed: %s: %s", pod, rec.Reason, rec.Error)
	case refresh.MarkerOK:
		st.published = true
	case refresh.MarkerLive:
		if st.live == 0 {
			st.live = max(at.Sub(r.sent), time.Millisecond)
			fmt.Fprintf(r.out, "  %s: live in %s\n", pod, ms(st.live))
		}
	}
	return r.done(), nil
}

func (r *rollout) done() bool {
	live := 0
	for _, st := range r.pods {
		if st.live > 0 {
			live++
		}
	}
	return r.count > 0 && live >= r.count
}

// slowest is the latency of the last pod to load the digest.
func (r *rollout) slowest() time.Duration {
	var d time.Duration
	for _, st := range r.pods {
		d = max(d, st.live)
	}
	return d
}

// stuck says, for a timeout, which pods got how far.
func (r *rollout) stuck() string {
	var parts []string
	for pod, st := range r.pods {
		switch {
		case st.live > 0:
		case st.published:
			parts = append(parts, pod+" published it, but the app has not loaded it (does it start? see the app's log)")
		default:
			parts = append(parts, pod+" has not published it")
		}
	}
	slices.Sort(parts)
	if missing := r.count - len(r.pods); missing > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d pods have not reported at all (is the fetcher running?)", missing, r.count))
	}
	return strings.Join(parts, "; ")
}

// eventsSince returns the resource version to watch a Deployment's refresh
// Events from, taken before the annotation so that no Event is missed.
func eventsSince(ctx context.Context, c *cluster, name string) (string, error) {
	list, err := c.client.EventsV1().Events(c.namespace).List(ctx, metav1.ListOptions{FieldSelector: refresh.EventSelector(name), Limit: 1})
	if err != nil {
		return "", fmt.Errorf("list events: %w", err)
	}
	return list.ResourceVersion, nil
}

// wait watches the Deployment's Events from rv until r is done, a pod
// fails, or ctx ends.
func (r *rollout) wait(ctx context.Context, c *cluster, name, rv string) error {
	if r.count == 0 {
		fmt.Fprintf(r.out, "  deployment %s has 0 replicas: nothing to wait for\n", name)
		return nil
	}
	for {
		w, err := c.client.EventsV1().Events(c.namespace).Watch(ctx, metav1.ListOptions{FieldSelector: refresh.EventSelector(name), ResourceVersion: rv})
		if err != nil {
			if ctx.Err() != nil {
				return r.timeout(ctx)
			}
			return fmt.Errorf("watch events: %w", err)
		}
		done, err := r.drain(ctx, w, &rv)
		w.Stop()
		if done || err != nil {
			return err
		}
		if ctx.Err() != nil {
			return r.timeout(ctx)
		}
	}
}

// drain reads one watch until it closes, recording the last version seen.
func (r *rollout) drain(ctx context.Context, w watch.Interface, rv *string) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			e, isEvent := ev.Object.(*eventsv1.Event)
			if !isEvent || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			*rv = e.ResourceVersion
			if done, err := r.observe(e, time.Now()); done || err != nil {
				return done, err
			}
		}
	}
}

func (r *rollout) timeout(ctx context.Context) error {
	if ctx.Err() == context.Canceled {
		return ctx.Err()
	}
	return fmt.Errorf("timed out waiting for %s: %s", r.digest, r.stuck())
}

func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }
