// Command benchtable is `make bench`: it measures every figure of
// DESIGN.md "Performance goals" in one run on this machine and prints them
// as one table, each beside the baseline measured in the same run, the
// ratio and the goal.
//
// Phases, in order: the in-process benchmarks of pkg/mutate,
// pkg/sidecar/release and test/node (go test -bench); the start of the
// express service (test/testdata/apps/shop-api) plain and under dev-hot;
// then, on the local control plane (real etcd and kube-apiserver):
// admission overhead, webhook HTTPS throughput, H1 reload latency (watch
// and poll), save → live with kubectl devhot push --watch, API server load
// of idle fetchers (watch and poll) and fetcher memory; last, on real pods
// of the single-node cluster of test/framework/cluster with the product
// installed (the one that runs, or one brought up for the bench and taken
// down after, where this machine can run it: Linux, root): H1, and save →
// live for the express service, the health gate's rollback of crashing
// pushes, and failed requests through reloads under steady load. All
// traffic stays on
// loopback or inside that cluster's network namespace, every loop is
// bounded in count and time, and every process it starts is stopped before
// it exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/aether-dev/aether-devhot/cmd/webhook/app"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
)

// config holds the sizes of the run; the defaults keep it under ten
// minutes on two CPUs.
type config struct {
	reloads, pollReloads int
	fetchers             int
	warmup, window       time.Duration
	rounds, perRound     int
	clients              int
	tputRounds           int
	tputDuration         time.Duration
	tputMax              int64
	bigMiB               int64
	saves                int
	starts               int
	serviceSaves         int
	crashPushes          int
	tsSaves              int
	bigTreeSaves         int
	depsRounds           int
	loadReloads          int
	quietWindow          time.Duration
	count                int
	skipGoTest, keep     bool
	skipRealPods         bool
	deadline             time.Duration
	// out, when set, is a Markdown page the table is also written to.
	out string
}

// runner is one run: the control plane, what it started, and the results.
type runner struct {
	cfg        config
	ctx        context.Context
	root, dir  string
	fetcherBin string
	cp         *controlplane.ControlPlane
	// admin is an admin clientset without client-side rate limiting, so
	// that client-go's default 5 QPS does not shape the figures.
	admin   kubernetes.Interface
	arts    *artifact.Server
	mode    sidecar.Mode
	version string
	cleanup []func()
	res     results
	// benchCalls counts each stand-in webhook's reviews.
	benchCalls map[string]*atomic.Int64
}

func main() {
	var c config
	flag.IntVar(&c.reloads, "reloads", 30, "H1 reloads in watch mode")
	flag.IntVar(&c.pollReloads, "poll-reloads", 15, "H1 reloads in poll mode (each waits for the next 5 s poll)")
	flag.IntVar(&c.fetchers, "fetchers", 20, "idle fetchers for the API load figure")
	flag.DurationVar(&c.warmup, "load-warmup", 5*time.Second, "wait after the idle fetchers are ready before counting")
	flag.DurationVar(&c.window, "load-window", 60*time.Second, "API load window per mode")
	flag.IntVar(&c.rounds, "admission-rounds", 6, "admission rounds per mode, alternating with and without the webhook")
	flag.IntVar(&c.perRound, "admission-creates", 50, "timed Deployment creates per admission round")
	flag.IntVar(&c.clients, "clients", 8, "concurrent keep-alive HTTPS clients for throughput")
	flag.IntVar(&c.tputRounds, "throughput-rounds", 3, "throughput rounds per server")
	flag.DurationVar(&c.tputDuration, "throughput-duration", 3*time.Second, "length of one throughput round")
	flag.Int64Var(&c.tputMax, "throughput-max", 100000, "requests at most per throughput round")
	flag.IntVar(&c.saves, "saves", 20, "saves for the kubectl devhot push --watch figure")
	flag.IntVar(&c.starts, "starts", 15, "rounds of the app start figure (each starts the app three ways)")
	flag.IntVar(&c.serviceSaves, "service-saves", 15, "saves of the real service on real pods")
	flag.IntVar(&c.crashPushes, "crash-pushes", 10, "crashing pushes of the real service, each rolled back by the health gate")
	flag.IntVar(&c.tsSaves, "ts-saves", 10, "saves of the TypeScript service's source under push --watch with tsc --watch")
	flag.IntVar(&c.bigTreeSaves, "big-tree-saves", 10, "saves of the big tree under push --watch, each way (delta, --archive)")
	flag.IntVar(&c.depsRounds, "deps-rounds", 3, "pushes of the real service, each with a new lockfile, installed in both pods; each followed by npm ci by hand there")
	flag.IntVar(&c.loadReloads, "load-reloads", 20, "reloads of the real service under steady load")
	flag.DurationVar(&c.quietWindow, "quiet-window", 10*time.Second, "steady load without reloads, the baseline of the reloads under load")
	flag.Int64Var(&c.bigMiB, "big-mib", 100, "uncompressed size of the big artifact for the RSS figure, MiB")
	flag.IntVar(&c.count, "count", 5, "go test -count for the in-process benchmarks")
	flag.BoolVar(&c.skipGoTest, "skip-go-test", false, "skip the go test -bench phase")
	flag.BoolVar(&c.skipRealPods, "skip-real-pods", false, "skip H1 on the real pods of test/framework/cluster even when that cluster runs")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (logs, workspaces)")
	flag.DurationVar(&c.deadline, "deadline", 18*time.Minute, "give up after this long")
	flag.StringVar(&c.out, "out", "", "also write the table and its notes to this Markdown file (make bench: docs/performance.md)")
	flag.Parse()

	machine := bench.Machine() // before anything here loads the CPUs
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	b := &runner{cfg: c, ctx: ctx, root: controlplane.RepoRoot()}
	start := time.Now()
	err := b.run()
	for i := len(b.cleanup) - 1; i >= 0; i-- {
		b.cleanup[i]()
	}
	cancel()
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nbench FAILED: %v\nlogs: %s\n", err, b.dir)
		os.Exit(1)
	}
	header := fmt.Sprintf("aether-devhot bench, %s, %s in %s\nmachine: %s\n", time.Now().Format("2006-01-02 15:04"), b.version,
		time.Since(start).Round(time.Second), machine)
	table := b.table()
	fmt.Printf("\n%s\n%s", header, table)
	if c.out != "" {
		page := "# Performance\n\nWritten by `make bench` (`hack/benchtable`); every figure beside a baseline measured in the same run. " +
			"This machine is shared and noisy: read the ratios and medians, not single runs.\n\n```\n" + header + "```\n\n" + table
		if err := os.WriteFile(c.out, []byte(page), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("\nwritten to %s\n", c.out)
	}
	if c.keep {
		fmt.Printf("\nlogs and workspaces kept in %s\n", b.dir)
	} else {
		_ = os.RemoveAll(b.dir)
	}
	if len(b.res.failed) > 0 {
		os.Exit(1)
	}
}

// run runs the phases. A failed measurement phase is recorded and the
// others still run; a failed set-up ends the run.
func (b *runner) run() error {
	var err error
	if b.dir, err = os.MkdirTemp("", "aether-bench-"); err != nil {
		return err
	}
	b.res.init()
	progress("build cmd/fetcher")
	b.fetcherBin = filepath.Join(b.dir, "fetcher")
	if err := b.goBuild(b.fetcherBin, "./cmd/fetcher"); err != nil {
		return err
	}

	if !b.cfg.skipGoTest {
		b.phase("in-process benchmarks (go test -bench)", b.goTests)
	}
	if b.arts, err = artifact.NewServer(); err != nil {
		return err
	}
	b.cleanup = append(b.cleanup, func() { _ = b.arts.Close() })
	b.phase("app start: shop-api plain, under dev-hot before a push, on a pushed release", b.startTime)

	progress("start etcd and kube-apiserver (envtest, bin/)")
	if b.cp, err = controlplane.Start(filepath.Join(b.dir)); err != nil {
		return err
	}
	b.cleanup = append(b.cleanup, func() {
		progress("stop kube-apiserver and etcd")
		_ = b.cp.Stop()
	})
	cfg := rest.CopyConfig(b.cp.Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limiter
	// The webhook's admission warnings would repeat on every create.
	cfg.WarningHandler = rest.NoWarnings{}
	if b.admin, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	v, err := b.admin.Discovery().ServerVersion()
	if err != nil {
		return err
	}
	b.version = "kube-apiserver " + v.GitVersion
	b.mode = app.ModeFor(v.Major, v.Minor)
	mwc, err := b.savedWebhookConfig()
	if err != nil {
		return err
	}

	// The admission figure uses a webhook-only server (no reconcilers), so
	// that it runs before the manager starts.
	b.phase("admission overhead: Deployment creates with the webhook registered and unregistered",
		func() error { return b.admission(mwc) })

	progress("start the webhook manager in-process behind TLS")
	stopWebhook, err := b.cp.StartWebhook(b.cp.WebhookOptions())
	if err != nil {
		return err
	}
	b.cleanup = append(b.cleanup, func() {
		progress("stop the webhook")
		stopWebhook()
	})

	b.phase("webhook throughput over HTTPS", func() error { return b.throughput(mwc) })
	b.phase("H1: annotate → new version answering, watch then poll", b.h1)
	b.phase("save → live: kubectl devhot push --watch", b.saveLive)
	b.phase("API server load of idle fetchers, watch then poll", b.apiLoad)
	b.phase("fetcher RSS, idle and applying the big artifact", b.rss)
	b.realPodsPhase()
	return b.ctx.Err()
}

// realPodsPhase runs H1 on real pods of the real cluster with the product
// installed: the one that runs, or one brought up for it and taken down
// after. Where this machine cannot run one, it records why, which is no
// failure.
func (b *runner) realPodsPhase() {
	if b.cfg.skipRealPods {
		b.res.realSkip = "-skip-real-pods"
		return
	}
	c := b.realPodsCluster()
	if c.Installed() != nil {
		if why := cluster.Supported(); why != nil {
			progress("H1 on real pods: skipped, no real cluster with the product installed, and this machine cannot run one: %v", why)
			b.res.realSkip = "this machine cannot run the real cluster: " + why.Error()
			return
		}
		var stop func()
		b.phase("real cluster: build its binaries, bring it up, install the product", func() (err error) {
			stop, err = b.startRealCluster(c)
			return err
		})
		if stop == nil {
			b.res.realSkip = "the real cluster did not come up"
			return
		}
		defer stop()
	}
	b.phase("H1 on real pods: annotate → both pods answer", func() error { return b.realPods(c) })
	b.phase("save → live for a real service (shop-api, express) on 2 real pods", func() error { return b.realService(c) })
	b.phase("save → live for a TypeScript service (ts-api, tsc --watch) on 2 real pods", func() error { return b.typeScript(c) })
	b.phase("push after a lockfile change (shop-api) on 2 real pods: the install vs npm ci by hand", func() error { return b.depsChange(c) })
	b.phase(fmt.Sprintf("save → live in a tree of %d files (shop-api + lib/) on 2 real pods: delta pushes vs --archive", bigTreeFiles), func() error { return b.bigTree(c) })
}

// goBuild builds the package pkg of this module into out.
func (b *runner) goBuild(out, pkg string) error {
	build := exec.CommandContext(b.ctx, "go", "build", "-o", out, pkg)
	build.Dir = b.root
	if msg, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
	}
	return nil
}

// phase runs one measurement and records its failure, if any.
func (b *runner) phase(name string, f func() error) {
	if b.ctx.Err() != nil {
		b.res.failed[name] = b.ctx.Err()
		return
	}
	progress("%s", name)
	t := time.Now()
	if err := f(); err != nil {
		fmt.Fprintf(os.Stderr, "    FAILED: %v\n", err)
		b.res.failed[name] = err
		return
	}
	fmt.Fprintf(os.Stderr, "    done in %s\n", time.Since(t).Round(100*time.Millisecond))
}

var step int

// progress prints one line per step to stderr; the table goes to stdout.
func progress(format string, args ...any) {
	step++
	fmt.Fprintf(os.Stderr, "[%s] %d. %s\n", time.Now().Format("15:04:05"), step, fmt.Sprintf(format, args...))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
