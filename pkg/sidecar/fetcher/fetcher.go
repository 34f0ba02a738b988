// Package fetcher is the fetcher sidecar's runtime: it watches its own
// Deployment, decides when the digest annotation asks for a new release,
// has package release download and publish it, and reports the outcome as
// REFRESH_* log lines, Events and metrics (DESIGN.md "Fetcher").
package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/backoff"
	"github.com/aether-dev/aether-devhot/pkg/probe"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// zeroGraceDefault bounds how long a pod that can run its image's code
// waits for the fetcher's first reading of the Deployment before the app
// starts: an unreachable API server must not keep the app down.
const zeroGraceDefault = 10 * time.Second

// errSuperseded cancels a download when a newer target arrives.
var errSuperseded = errors.New("superseded by a newer target")

// wedgedAfter is how long a cancelled Apply may take to return before
// /healthz fails. Apply returns within milliseconds of a cancellation;
// only a hung filesystem holds it, and then a restart is the way out.
const wedgedAfter = 10 * time.Second

// Fetcher keeps the workspace's current release equal to what its
// Deployment's annotations ask for.
type Fetcher struct {
	cfg     Config
	client  kubernetes.Interface
	ws      *release.Workspace
	http    *http.Client
	limits  release.Limits
	backoff backoff.Backoff
	rand    *rand.Rand
	// retouch is how long the health gate waits for a process to choose a
	// release before it touches boot.cjs again (release.DefaultRetouch).
	retouch time.Duration
	// checker runs the app's probe; nil when it has none the fetcher can
	// run, and then a release is live once it has loaded.
	checker *probe.Checker
	// zeroGrace is how long a pod that may run its image's code waits for
	// the first reading of the Deployment (zeroGraceDefault).
	zeroGrace time.Duration
	metrics   *Metrics

	// out carries the REFRESH_* lines; log the rest, on the same writer.
	out    io.Writer
	log    *slog.Logger
	events *eventSink

	inbox *inbox
	// healthc carries the health gate's verdicts to the loop.
	healthc chan health
	// live is the live release's digest, "" until one is; /readyz says
	// only whether one is.
	live atomic.Pointer[string]
	// zero is set when the app may start on its image's own code (release
	// zero, cfg.AppDir): no digest is asked for, or the first try of one
	// ended, or the Deployment could not be read for zeroGrace.
	zero atomic.Bool
	// bg counts the goroutines that watch the app.
	bg sync.WaitGroup
	// cancelledAt is when the loop cancelled the Apply it waits for, in
	// Unix nanoseconds; 0 when it waits for none.
	cancelledAt atomic.Int64
}

// New opens the workspace and prepares a Fetcher that logs to out. A bad CA
// file is a *ConfigError.
func New(cfg Config, client kubernetes.Interface, out io.Writer) (*Fetcher, error) {
	ws, err := release.Open(cfg.Workspace)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	var opts []release.ClientOption
	if cfg.StoreURL != nil {
		opts = append(opts, release.WithStoreToken(cfg.StoreURL, cfg.StoreTokenFile))
	}
	hc, err := release.NewHTTPClient(cfg.CAFile, opts...)
	if err != nil {
		return nil, &ConfigError{Setting: settingName(sidecar.EnvCAFile), Err: err}
	}
	out = &lockedWriter{w: out}
	f := &Fetcher{
		cfg:       cfg,
		client:    client,
		ws:        ws,
		http:      hc,
		limits:    release.Limits{MaxBytes: cfg.MaxArtifactBytes},
		backoff:   backoff.Backoff{Base: DefaultBackoffBase, Max: cfg.BackoffMax},
		rand:      rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		retouch:   release.DefaultRetouch,
		zeroGrace: zeroGraceDefault,
		metrics:   NewMetrics(),
		out:       out,
		log:       slog.New(slog.NewTextHandler(out, nil)),
		inbox:     newInbox(),
		healthc:   make(chan health),
	}
	for _, err := range ws.Leftovers() {
		f.log.Warn("cannot remove a leftover in the workspace; skipping it", "error", err)
	}
	if cfg.AppProbe != nil {
		f.checker = probe.NewChecker(cfg.AppProbe)
	}
	if cfg.AppDir != "" {
		if err := ws.UseImageModules(cfg.AppDir); err != nil {
			return nil, fmt.Errorf("workspace: %w", err)
		}
	}
	current := ws.Current()
	f.live.Store(&current)
	return f, nil
}

// Run runs the fetcher with New's defaults until ctx ends.
func Run(ctx context.Context, cfg Config, client kubernetes.Interface, out io.Writer) error {
	f, err := New(cfg, client, out)
	if err != nil {
		return err
	}
	return f.Run(ctx)
}

// Run serves metrics and health, follows the Deployment and applies what it
// asks for until ctx ends. It returns nil then; an artifact failure never
// ends it, because a crash-looping sidecar would take the pod down with it.
func (f *Fetcher) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", f.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Without /healthz the kubelet restarts us anyway; stop and say why.
	var serveErr error
	served := make(chan struct{})
	srv := &http.Server{Handler: f.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(served)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr = fmt.Errorf("metrics server: %w", err)
			cancel()
		}
	}()

	f.events = newEventSink(f.client, f.cfg.PodNamespace, f.cfg.PodName, f.log)
	go f.events.run()

	source := f.watch
	if f.cfg.FetchMode == FetchPoll {
		source = f.poll
	}
	sourceDone := make(chan struct{})
	go func() {
		defer close(sourceDone)
		source(ctx)
	}()
	if f.cfg.AppDir != "" {
		grace := time.AfterFunc(f.zeroGrace, f.zeroReady)
		defer grace.Stop()
	}
	f.log.Info("fetcher started", "namespace", f.cfg.PodNamespace, "deployment", f.cfg.Deployment,
		"mode", f.cfg.FetchMode, "interval", f.cfg.FetchInterval, "workspace", f.ws.Dir(), "current", *f.live.Load(),
		"releaseZero", f.cfg.AppDir)

	f.loop(ctx)

	shutdown, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	_ = srv.Shutdown(shutdown)
	<-served
	f.bg.Wait()
	// What failed Applies left is removed by the next start otherwise.
	_ = f.ws.Wait(shutdown)
	if end, ok := shutdown.Deadline(); ok {
		f.events.close(time.Until(end))
	}
	// The reflector sleeps through its backoff without watching ctx; an
	// unreachable API server must not hold up a SIGTERM for long.
	select {
	case <-sourceDone:
	case <-shutdown.Done():
	}
	return serveErr
}

// job is one Apply in flight.
type job struct {
	obs    observation
	target annotations.Target
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// outcome is what a job's Apply returned, and when.
type outcome struct {
	job *job
	res release.Result
	err error
	at  time.Time
}

// loop owns the workspace and runs at most one Apply at a time. It takes the
// latest reading, cancels a job that the reading supersedes, acts on
// decide's answer, and on the health gate's verdicts.
func (f *Fetcher) loop(ctx context.Context) {
	var (
		running *job
		done    = make(chan outcome, 1)
		att     attempts
		retry   = time.NewTimer(time.Hour)
		lastWhy string
		// last is the latest reading; desired is the digest it asked for
		// when decide last ran.
		last    *observation
		desired string
		a       = f.newApp()
	)
	retry.Stop()
	defer func() { a.stop() }()
	if a.hasGood {
		f.startGate(ctx, a, f.newGate(a.good, true, Desired{}), nil)
	}
	settle := func(o outcome) {
		running = nil
		cancelled := o.job.ctx.Err() != nil
		o.job.cancel(nil)
		switch {
		case o.err != nil && cancelled:
			f.log.Info("download cancelled", "digest", o.job.target.Digest, "cause", context.Cause(o.job.ctx))
		case o.err != nil:
			att = f.failed(o.job.obs, o.err, att)
			f.zeroReady()
		default:
			att = attempts{}
			lastWhy = whyLive
			f.succeeded(o)
			obs := o.job.obs
			g := f.newGate(o.res.Digest, false, obs.desired)
			g.preinstalled = o.res.Deps
			f.startGate(ctx, a, g, &obs)
		}
	}
	for {
		select {
		case <-ctx.Done():
			if running != nil {
				running.cancel(ctx.Err())
				f.awaitCancelled(done)
			}
			return
		case <-f.inbox.ready:
		case <-retry.C:
		case o := <-done:
			settle(o)
		case h := <-f.healthc:
			f.onHealth(ctx, a, h, last)
		case <-a.restart.C:
			f.restartApp(a)
			continue
		}
		obs, ok := f.inbox.get()
		if !ok {
			continue
		}
		last = &obs
		if running != nil {
			if running.obs.desired.key() == obs.desired.key() {
				continue
			}
			running.cancel(errSuperseded)
			settle(f.awaitCancelled(done))
		}
		if a.rejected != "" && obs.desired.Digest != a.rejected {
			// A new digest arrived: the rejected one may be tried again
			// when it is asked for again.
			a.rejected = ""
			if err := f.ws.Reject(""); err != nil {
				f.log.Warn("cannot clear the rejected digest", "error", err)
			}
		}
		current := f.ws.Current()
		f.live.Store(&current)
		d := decide(obs.desired, current, a.rejected, att, time.Now())
		retry.Stop()
		switch d.action {
		case actNone:
			f.zeroReady()
			if d.why == whyLive && obs.desired.Digest != desired && desired != "" && a.live && a.trial == nil {
				// Asked again for what runs, as after a rollback: it is
				// live already, and a waiting push must hear so.
				f.report(obs, refresh.Record{Marker: refresh.MarkerLive, Digest: current, Live: time.Since(obs.seen)},
					fmt.Sprintf("%s is already live on pod %s%s", current, f.cfg.PodName, commit(obs.desired)))
			}
			// Resyncs repeat the same answer every interval; say it once.
			if d.why != lastWhy {
				f.log.Info(d.why, "digest", obs.desired.Digest, "current", current)
			}
		case actWait:
			retry.Reset(d.wait)
		case actFail:
			att = f.failed(obs, d.err, att)
			f.zeroReady()
		case actApply:
			running = f.start(ctx, obs, d.target, done)
		}
		lastWhy = d.why
		desired = obs.desired.Digest
	}
}

// awaitCancelled waits for the outcome of the job just cancelled, and
// lets /healthz see how long that takes.
func (f *Fetcher) awaitCancelled(done <-chan outcome) outcome {
	f.cancelledAt.Store(time.Now().UnixNano())
	defer f.cancelledAt.Store(0)
	return <-done
}

// zeroReady lets the app start on its image's code, where it may.
func (f *Fetcher) zeroReady() {
	if f.cfg.AppDir != "" && !f.zero.Swap(true) {
		f.log.Info("the app may start on its image's own code (release zero)")
	}
}

// start runs Apply for t in its own goroutine, so that the loop stays free
// to notice a newer target and cancel it.
func (f *Fetcher) start(ctx context.Context, obs observation, t annotations.Target, done chan<- outcome) *job {
	jctx, cancel := context.WithCancelCause(ctx)
	j := &job{obs: obs, target: t, ctx: jctx, cancel: cancel}
	go func() {
		res, err := f.ws.Apply(jctx, f.http, t, f.limits, release.WithPullSecrets(f.cfg.PullSecretsDir), release.WithInstalling(func(d release.Deps) {
			f.report(obs, refresh.Record{Marker: refresh.MarkerInstall, Digest: t.Digest, Lockfile: d.Lockfile},
				fmt.Sprintf("Installing the dependencies of %s for %s on pod %s with %s while the app serves its release%s", d.Lockfile, t.Digest, f.cfg.PodName, d.Manager, commit(obs.desired)))
		}))
		done <- outcome{job: j, res: res, err: err, at: time.Now()}
	}()
	return j
}
