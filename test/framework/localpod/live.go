package localpod

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// StartLive starts the pod, waits for its fetcher to be ready, starts the
// app container appName and waits until it answers version v. On error
// the pod is stopped.
func StartLive(ctx context.Context, d *appsv1.Deployment, o Options, appName string, v int) (*Pod, error) {
	p, err := Start(d, o)
	if err != nil {
		return nil, err
	}
	if err = p.WaitReady(ctx); err == nil {
		if err = p.StartApp(d, appName); err == nil {
			_, err = p.WaitVersion(ctx, v)
		}
	}
	if err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// StartT is StartLive for a test, with 30 s to get there: the pod stops
// when the test ends, and its logs are printed if the test failed.
func StartT(t testing.TB, d *appsv1.Deployment, o Options, appName string, v int) *Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p, err := Start(d, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			fetcherLog, appLog := p.Logs()
			for _, f := range []string{fetcherLog, appLog} {
				b, _ := os.ReadFile(f)
				t.Logf("%s %s:\n%s", o.Name, filepath.Base(f), b)
			}
		}
	})
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.StartApp(d, appName); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	return p
}
