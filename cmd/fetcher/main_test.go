package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/fetcher"
)

// syncBuffer is stderr for a run that is still writing while tests read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestWaitReadySubcommand(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || calls.Add(1) < 3 {
			http.Error(w, "no release is live yet", http.StatusServiceUnavailable)
			return
		}
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	// The port comes from AETHER_METRICS_ADDR, as in the pod.
	env := envOf(map[string]string{sidecar.EnvMetricsAddr: ":" + strconv.Itoa(port)})
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"wait-ready"}, env, &stderr); err != nil {
		t.Fatalf("wait-ready: %v", err)
	}
	if exitCode(nil, &stderr) != 0 {
		t.Error("exit code of success")
	}

	// The flag overrides the env; an address that never turns ready times out.
	calls.Store(-1 << 20)
	err := run(context.Background(), []string{"wait-ready", "--metrics-addr=127.0.0.1:" + strconv.Itoa(port), "--timeout=150ms"}, env, &stderr)
	if err == nil || !strings.Contains(err.Error(), "gave up after 150ms") || !strings.Contains(err.Error(), "no release is live yet") {
		t.Fatalf("got %v", err)
	}
	if code := exitCode(err, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}

	err = run(context.Background(), []string{"wait-ready", "--metrics-addr=nope"}, env, &stderr)
	if code := exitCode(err, &stderr); code != 2 || !strings.Contains(err.Error(), "AETHER_METRICS_ADDR / --metrics-addr") {
		t.Errorf("bad address: exit %d, %v", code, err)
	}
}

func TestBadConfigExits2(t *testing.T) {
	cases := map[string]struct {
		env     map[string]string
		args    []string
		mention string
	}{
		"missing deployment": {map[string]string{sidecar.EnvPodNamespace: "ns"}, nil, "AETHER_DEPLOYMENT / --deployment"},
		"bad interval flag": {map[string]string{sidecar.EnvPodNamespace: "ns", sidecar.EnvDeployment: "app"},
			[]string{"--fetch-interval-sec=soon"}, "AETHER_FETCH_INTERVAL_SEC / --fetch-interval-sec"},
		"unknown flag": {nil, []string{"--insecure-skip-verify"}, "insecure-skip-verify"},
		"backoff overflow": {map[string]string{sidecar.EnvPodNamespace: "ns", sidecar.EnvDeployment: "app", sidecar.EnvBackoffMaxSec: "9999999999"},
			nil, `AETHER_BACKOFF_MAX_SEC / --backoff-max-sec: "9999999999" is not a whole number of seconds from 1 to 3600`},
		// wait-ready's --timeout was refused only at 0 or below.
		"wait-ready timeout above": {nil, []string{"wait-ready", "--timeout=2h"}, `"2h" is not a duration from 100ms to 1h0m0s`},
		"wait-ready timeout below": {nil, []string{"wait-ready", "--timeout=99ms"}, "from 100ms to 1h0m0s"},
		"wait-ready timeout zero":  {nil, []string{"wait-ready", "--timeout=0"}, "from 100ms to 1h0m0s"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tc.args, envOf(tc.env), &stderr)
			if code := exitCode(err, &stderr); code != 2 {
				t.Errorf("exit code %d for %v", code, err)
			}
			if !strings.Contains(stderr.String(), "fetcher: ") || !strings.Contains(stderr.String(), tc.mention) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.mention)
			}
		})
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, envOf(nil), &stderr); exitCode(err, &stderr) != 0 || !strings.Contains(stderr.String(), "wait-ready") {
		t.Errorf("-h: %v %q", err, stderr.String())
	}
}

// TestRunOutsideCluster wires everything as main does, with a kubeconfig
// whose API server refuses connections: the fetcher must still serve
// /healthz, report not ready, and stop cleanly on SIGTERM (ctx).
func TestRunOutsideCluster(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: ns}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	env := envOf(map[string]string{
		sidecar.EnvPodNamespace: "ns",
		sidecar.EnvDeployment:   "app",
		sidecar.EnvWorkspace:    filepath.Join(dir, "ws"),
		fetcher.EnvKubeconfig:   "/nonexistent",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--kubeconfig=" + kubeconfig, "--metrics-addr=" + addr}, env, &stderr)
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered: %v\n%s", err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d with no release", resp.StatusCode)
	}
	err = run(context.Background(), []string{"wait-ready", "--metrics-addr=" + addr, "--timeout=100ms"}, envOf(nil), &bytes.Buffer{})
	if err == nil {
		t.Error("wait-ready succeeded with no release")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	if !strings.Contains(stderr.String(), `msg="fetcher started"`) {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

func TestKubeClientMissingKubeconfig(t *testing.T) {
	_, err := kubeClient("/nonexistent/kubeconfig")
	if err == nil || !strings.Contains(err.Error(), "KUBECONFIG or --kubeconfig") {
		t.Errorf("got %v", err)
	}
}
