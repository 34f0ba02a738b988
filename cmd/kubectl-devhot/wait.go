package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// podState is how far one pod has got with the digest.
type podState struct {
	published bool
	live      time.Duration // since the annotation; 0 while not live
	// failed is the pod's failure of the digest, nil unless it failed
	// (and did not go live after).
	failed *refresh.Record
}

// rollout follows one digest's Events until every expected pod has
// either loaded it or failed on it. With no Pods to list (a local control
// plane has no kubelet), it expects as many distinct pods as the
// Deployment's replicas.
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

// observe takes one Event, prints what it says of a pod, and reports
// whether every pod is done: live, or failed. Only the fetcher's refresh
// Events of this digest count (refresh.FromEvent).
func (r *rollout) observe(e *eventsv1.Event, at time.Time) bool {
	rec, pod, ok := refresh.FromEvent(e)
	if !ok || rec.Digest != r.digest {
		return false
	}
	if r.want != nil && !slices.Contains(r.want, pod) {
		return false
	}
	st := r.pods[pod]
	if st == nil {
		st = &podState{}
		r.pods[pod] = st
	}
	switch rec.Marker {
	case refresh.MarkerFail:
		st.failed, st.live = &rec, 0
		fmt.Fprint(r.out, failureLines(pod, rec))
	case refresh.MarkerOK:
		st.published = true
	case refresh.MarkerInstall:
		st.published = true
		fmt.Fprintf(r.out, "  %s: installing the dependencies of %s in the pod…\n", pod, rec.Lockfile)
	case refresh.MarkerLive:
		if st.live == 0 {
			st.live, st.failed = max(at.Sub(r.sent), time.Millisecond), nil
			fmt.Fprintf(r.out, "  %s: live in %s%s\n", pod, ms(st.live), depsText(rec))
		}
	}
	return r.done()
}

// maxErrorLines is how much of an app's error push prints per pod; the
// Event and the fetcher's log have all of it.
const maxErrorLines = 6

// failureLines says what failed on a pod: the reason, the error's first
// lines, and what serves now.
func failureLines(pod string, rec refresh.Record) string {
	var b strings.Builder
	lines := strings.Split(strings.TrimRight(rec.Error, "\n"), "\n")
	if len(lines) > maxErrorLines {
		lines = append(lines[:maxErrorLines], "…")
	}
	fmt.Fprintf(&b, "  %s: %s: %s\n", pod, reasonText(rec.Reason), lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	switch {
	case rec.RolledBackTo == refresh.ImageCode:
		fmt.Fprintf(&b, "    rolled back to the image's own code\n")
	case rec.RolledBackTo != "":
		fmt.Fprintf(&b, "    rolled back to %s\n", rec.RolledBackTo)
	case rec.Reason == refresh.ReasonAppDown && !rec.GaveUp:
		fmt.Fprintf(&b, "    restarting it in %s\n", ms(rec.RetryIn))
	case rec.Reason == refresh.ReasonAppCrashed || rec.Reason == refresh.ReasonUnhealthy:
		fmt.Fprintf(&b, "    not rolled back: the pod has nothing earlier to run\n")
	case !rec.GaveUp:
		fmt.Fprintf(&b, "    the fetcher retries in %s; the previous code serves\n", ms(rec.RetryIn))
	default:
		fmt.Fprintf(&b, "    the previous code serves\n")
	}
	return b.String()
}

// depsText says how a release that carries a lockfile got its
// dependencies, "" for one without.
func depsText(rec refresh.Record) string {
	switch rec.Deps {
	case refresh.DepsImage:
		return " (dependencies: the image's)"
	case refresh.DepsCached:
		return " (dependencies: cached in the pod, nothing installed)"
	case refresh.DepsInstalled:
		return fmt.Sprintf(" (dependencies installed in %s)", ms(rec.Install))
	}
	return ""
}

// reasonText reads a failure reason to the developer.
func reasonText(r refresh.Reason) string {
	switch r {
	case refresh.ReasonAppCrashed:
		return "the app crashed on it"
	case refresh.ReasonUnhealthy:
		return "the app was not healthy on it in time"
	case refresh.ReasonAppDown:
		return "the app went down"
	case refresh.ReasonDepsInstall:
		return "installing its dependencies failed"
	case refresh.ReasonNoPackageManager:
		return "its dependencies cannot be installed"
	}
	return "refresh failed: " + string(r)
}

func (r *rollout) done() bool {
	settled := 0
	for _, st := range r.pods {
		if st.live > 0 || st.failed != nil {
			settled++
		}
	}
	return r.count > 0 && settled >= r.count
}

// result is the outcome once done: nil when every pod runs the digest,
// else an error that counts the failures.
func (r *rollout) result() error {
	var failed []string
	reasons := map[refresh.Reason]bool{}
	for pod, st := range r.pods {
		if st.failed != nil {
			failed = append(failed, pod)
			reasons[st.failed.Reason] = true
		}
	}
	if len(failed) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(reasons))
	why := make([]string, len(names))
	for i, n := range names {
		why[i] = string(n)
	}
	return fmt.Errorf("%s failed on %d of %d pods (%s)", r.digest, len(failed), r.count, strings.Join(why, ", "))
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
		case st.live > 0 || st.failed != nil:
		case st.published:
			parts = append(parts, pod+" published it, and the app has not gone live on it yet (slow to load? see "+annotations.HealthTimeoutSec+")")
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

// deliver annotates d with digest and url (and commit, "" for none), and
// waits up to timeout until every running pod has gone live on it or
// failed, printing each pod's outcome to out; latencies run from started.
// The error is the rollout's result, or why it could not wait.
func (c *cluster) deliver(ctx context.Context, d *appsv1.Deployment, digest, url, commit string, started time.Time, timeout time.Duration, out io.Writer) (*rollout, error) {
	pods, replicas, err := expectedPods(ctx, c, d)
	if err != nil {
		return nil, err
	}
	rv, err := eventsSince(ctx, c, d.Name)
	if err != nil {
		return nil, err
	}
	if err := c.annotate(ctx, d.Name, digest, url, commit); err != nil {
		return nil, err
	}
	if commit == "" {
		commit = "none: not a git checkout"
	}
	fmt.Fprintf(out, "annotated deployment.apps/%s (commit %s)\n", d.Name, commit)
	r := newRollout(digest, started, pods, replicas, out)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r, r.wait(wctx, c, d.Name, rv)
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

// wait watches the Deployment's Events from rv until every pod is live or
// failed, or ctx ends. It returns r.result() when done.
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
		done := r.drain(ctx, w, &rv)
		w.Stop()
		if done {
			return r.result()
		}
		if ctx.Err() != nil {
			return r.timeout(ctx)
		}
	}
}

// drain reads one watch until it closes or r is done, recording the last
// version seen.
func (r *rollout) drain(ctx context.Context, w watch.Interface, rv *string) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false
			}
			e, isEvent := ev.Object.(*eventsv1.Event)
			if !isEvent || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			*rv = e.ResourceVersion
			if r.observe(e, time.Now()) {
				return true
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
