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
