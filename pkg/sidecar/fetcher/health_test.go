package fetcher

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadyURL(t *testing.T) {
	cases := map[string]string{
		":9102":          "http://127.0.0.1:9102/readyz",
		"0.0.0.0:9102":   "http://127.0.0.1:9102/readyz",
		"[::]:9102":      "http://127.0.0.1:9102/readyz",
		"10.1.2.3:9102":  "http://10.1.2.3:9102/readyz",
		"localhost:9102": "http://127.0.0.1:9102/readyz",
	}
	for addr, want := range cases {
		if got, err := ReadyURL(addr); err != nil || got != want {
			t.Errorf("ReadyURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := ReadyURL("9102"); err == nil {
		t.Error("ReadyURL without a port must fail")
	}
}

func TestWaitReady(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || calls.Add(1) < 3 {
			http.Error(w, "no release is live yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitReady(ctx, srv.URL+"/readyz", 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := WaitReady(ctx, srv.URL+"/never", 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "no release is live yet") {
		t.Errorf("got %v, want the last answer", err)
	}
}

// TestHealthzWedged: /healthz, the fetcher's liveness probe, fails once
// the loop has waited longer than wedgedAfter for a cancelled Apply, and
// not before.
func TestHealthzWedged(t *testing.T) {
	f := newHarness(t, nil, nil).open()
	cases := []struct {
		name string
		// waited is how long ago the Apply was cancelled; 0 for none.
		waited time.Duration
		want   int
	}{
		{"no cancelled apply", 0, http.StatusOK},
		{"cancelled just now", time.Millisecond, http.StatusOK},
		{"cancelled long ago", wedgedAfter + time.Second, http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.cancelledAt.Store(0)
			if tc.waited > 0 {
				f.cancelledAt.Store(time.Now().Add(-tc.waited).UnixNano())
			}
			code, body := get(t, f.handler(), "/healthz")
			if code != tc.want {
				t.Errorf("/healthz = %d %q, want %d", code, body, tc.want)
			}
		})
	}
}
