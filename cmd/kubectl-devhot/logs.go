package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// logsOptions are `kubectl devhot logs`'s flags.
type logsOptions struct {
	follow bool
	tail   int64
	since  time.Duration
	// fetcher and app pick the containers; neither set means both.
	fetcher, app bool
}

func newLogsCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := logsOptions{tail: 20}
	cmd := &cobra.Command{
		Use:   "logs DEPLOYMENT",
		Short: "Print the app's and the fetcher's logs of every pod, each line prefixed by its pod and container; -f follows, new pods included",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, d, err := target(cmd.Context(), flags, args[0])
			if err != nil {
				return err
			}
			return c.logs(cmd.Context(), d, o, &syncWriter{w: streams.Out})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.follow, "follow", "f", false, "keep streaming, and add the pods that start")
	f.Var(bounds.IntFlag[int64]{P: &o.tail, Range: logsTailRange}, "tail", "lines of each container's past log to print first; -1 for all ("+logsTailRange.String()+")")
	f.Var(bounds.DurationFlag{P: &o.since, Range: logsSinceRange}, "since", "only lines newer than this, e.g. 5m; 0 for all ("+logsSinceRange.String()+")")
	f.BoolVar(&o.fetcher, "fetcher", false, "only the fetcher's log")
	f.BoolVar(&o.app, "app", false, "only the app containers' logs")
	return cmd
}

// logContainers names the containers of pod whose logs are printed: the
// fetcher (a native sidecar among the initContainers, or the first
// container in legacy mode) and the other containers, as o picks them.
func logContainers(pod *corev1.Pod, o logsOptions) []string {
	all := !o.fetcher && !o.app
	var out []string
	for _, c := range pod.Spec.InitContainers {
		if c.Name == sidecar.ContainerName && (all || o.fetcher) {
			out = append(out, c.Name)
		}
	}
	for _, c := range pod.Spec.Containers {
		isFetcher := c.Name == sidecar.ContainerName
		if all || (isFetcher && o.fetcher) || (!isFetcher && o.app) {
			out = append(out, c.Name)
		}
	}
	return out
}

// logs streams the logs of d's running pods to out until they end, or,
// with o.follow, until ctx ends, adding the pods that start meanwhile.
func (c *cluster) logs(ctx context.Context, d *appsv1.Deployment, o logsOptions, out io.Writer) error {
	name := d.Name
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return err
	}
	list, err := c.client.CoreV1().Pods(c.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", name, err)
	}
	var wg sync.WaitGroup
	streaming := map[string]bool{}
	start := func(pod *corev1.Pod, tail int64) {
		if streaming[pod.Name] || pod.Status.Phase != corev1.PodRunning {
			return
		}
		streaming[pod.Name] = true
		for _, container := range logContainers(pod, o) {
			wg.Go(func() { c.streamLog(ctx, pod.Name, container, o, tail, out) })
		}
	}
	pods := list.Items
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	for i := range pods {
		start(&pods[i], o.tail)
	}
	if o.follow {
		w, err := c.client.CoreV1().Pods(c.namespace).Watch(ctx, metav1.ListOptions{LabelSelector: sel.String(), ResourceVersion: list.ResourceVersion})
		if err != nil {
			return fmt.Errorf("watch pods of %s: %w", name, err)
		}
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				// A pod that starts now: all of its log.
				start(p, -1)
			}
		}
		w.Stop()
	}
	wg.Wait()
	return nil
}

// streamLog copies one container's log to out, each line prefixed; an
// error is printed in its place, since the other streams go on.
func (c *cluster) streamLog(ctx context.Context, pod, container string, o logsOptions, tail int64, out io.Writer) {
	opts := &corev1.PodLogOptions{Container: container, Follow: o.follow}
	if tail >= 0 {
		opts.TailLines = &tail
	}
	if o.since > 0 {
		s := int64(o.since.Seconds())
		opts.SinceSeconds = &s
	}
	prefix := pod + " " + container + " | "
	r, err := c.client.CoreV1().Pods(c.namespace).GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintf(out, "%s(no log: %v)\n", prefix, err)
		}
		return
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Fprintf(out, "%s%s\n", prefix, sc.Text())
	}
}
