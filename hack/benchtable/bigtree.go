package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/store"
	"github.com/aether-dev/aether-devhot/test/framework/apps"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
)

const (
	bigTreeNS    = "bench-bigtree"
	bigTreeFiles = 5000
	bigTreeBytes = 50 << 20
)

// bigTreeRun is one way of pushing the big tree: its saves' latencies and
// the bytes that each save moved.
type bigTreeRun struct {
	lat []time.Duration
	// up is the bytes push uploaded per save, root, parts and files
	// (delta only); down,
	// the bytes each pod downloaded per save (REFRESH_OK downloaded).
	up, down []int64
}

// bigTree is save → live of a one-line change in a big tree on real pods:
// shop-api with 2 replicas, its source plus lib/ of bigTreeFiles modules
// (bigTreeBytes in all), under `kubectl devhot push --watch`, first as
// delta releases, then with --archive, the whole-archive baseline. Each
// save rewrites src/message.js; the latency runs from just before the
// write to when both pods answer it.
func (b *runner) bigTree(c *cluster.Cluster) error {
	e, err := b.enableService(c, bigTreeNS, service)
	if err != nil {
		return err
	}
	defer e.cleanup()
	src := filepath.Join(b.dir, "bigtree-src")
	if err := apps.Copy(service, src); err != nil {
		return err
	}
	if err := artifact.WriteTree(filepath.Join(src, "lib"), bigTreeFiles, bigTreeBytes); err != nil {
		return err
	}
	k := realpod.Kubectl{Bin: filepath.Join(b.root, "bin", "kubectl"), Kubeconfig: c.Kubeconfig(), Namespace: bigTreeNS}
	for _, m := range []struct {
		name string
		args []string
		run  *bigTreeRun
		src  refresh.Source
	}{{"delta", nil, &b.res.bigDelta, refresh.SourceDelta}, {"archive", []string{"--archive"}, &b.res.bigArchive, refresh.SourceArchive}} {
		if err := b.bigTreeSaves(e, k, src, m.args, m.run, m.src); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		r := m.run
		fmt.Fprintf(os.Stderr, "    %s: %d saves of a %d-file tree on 2 real pods: p50 %v; downloaded per pod p50 %d bytes, uploaded p50 %d bytes\n",
			m.name, len(r.lat), bigTreeFiles, bench.Percentile(r.lat, 50).Round(time.Millisecond), bench.Median(r.down), bench.Median(r.up))
	}
	return nil
}

// bigTreeSaves runs push --watch with args on src and times the saves.
func (b *runner) bigTreeSaves(e *enabled, k realpod.Kubectl, src string, args []string, run *bigTreeRun, source refresh.Source) error {
	cmd := e.devhot(append([]string{"push", service, src, "--watch", "--timeout", "60s"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	lines, err := startLines(cmd)
	if err != nil {
		return err
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		_ = cmd.Wait()
	}()
	if err := waitLine(lines, "deployment.apps/"+service+": sha256:", 3*time.Minute); err != nil {
		return err
	}
	// Each save's report, with what it uploaded.
	reported := func() error {
		deadline := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return fmt.Errorf("kubectl devhot push --watch ended")
				}
				if strings.HasPrefix(l, "push failed") {
					return fmt.Errorf("kubectl devhot: %s", l)
				}
				if u, ok := store.ParseUploaded(l); ok {
					run.up = append(run.up, u.Bytes)
				}
				if strings.HasPrefix(l, "save → live: ") {
					return nil
				}
			case <-deadline:
				return fmt.Errorf("no save → live report within 20 s")
			}
		}
	}
	save := func(msg string) error { return writeMessage(src, msg) }
	if run.lat, err = b.timedSaves(b.cfg.bigTreeSaves, 300*time.Millisecond, e.pods, save, reported); err != nil {
		return err
	}
	for _, p := range e.pods {
		out, err := k.Run("", "logs", p.Name, "-c", "aether-fetcher")
		if err != nil {
			return err
		}
		var down []int64
		for _, l := range strings.Split(out, "\n") {
			if r, ok := refresh.Parse(l); ok && r.Marker == refresh.MarkerOK && r.Source == source {
				down = append(down, r.Downloaded)
			}
		}
		// The saves are the last pushes; the first one of each way moved
		// the whole tree.
		run.down = append(run.down, down[max(0, len(down)-len(run.lat)):]...)
	}
	return nil
}
