package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/store"
)

func TestParse(t *testing.T) {
	def := store.DefaultLimits
	lim := func(f func(*store.Limits)) store.Limits {
		l := def
		f(&l)
		return l
	}
	aud := map[string]string{"AETHER_STORE_AUDIENCE": "http://store"}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{"AETHER_STORE_AUDIENCE": "http://store"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    options
		wantErr string
	}{
		{"defaults", aud, nil, options{":8080", "/data", "http://store", def, store.DefaultUploadTimeout}, ""},
		{"env", with(map[string]string{"AETHER_STORE_ADDR": ":9", "AETHER_STORE_DIR": "/d", "AETHER_STORE_MAX_BLOB_BYTES": "5",
			"AETHER_STORE_MAX_TOTAL_BYTES": "7", "AETHER_STORE_NAMESPACE_QUOTA_BYTES": "6", "AETHER_STORE_MAX_UPLOADS": "3",
			"AETHER_STORE_MAX_NAMESPACE_UPLOADS": "1", "AETHER_STORE_UPLOAD_TIMEOUT": "30s"}),
			nil, options{":9", "/d", "http://store", store.Limits{MaxBlobBytes: 5, MaxTotalBytes: 7, NamespaceQuotaBytes: 6, MaxUploads: 3, MaxNamespaceUploads: 1}, 30 * time.Second}, ""},
		{"flags override env", with(map[string]string{"AETHER_STORE_DIR": "/d"}), []string{"--dir", "/f", "--max-blob-bytes", "7", "--upload-timeout", "1m", "--audience", "http://other"},
			options{":8080", "/f", "http://other", lim(func(l *store.Limits) { l.MaxBlobBytes = 7 }), time.Minute}, ""},
		{"no audience", nil, nil, options{}, "--audience (AETHER_STORE_AUDIENCE) is empty: set it to the webhook's --store-url"},
		{"argument", aud, []string{"serve"}, options{}, "takes no arguments"},
		{"bad number", aud, []string{"--max-blob-bytes", "lots"}, options{}, "invalid value"},
		{"bad env number", with(map[string]string{"AETHER_STORE_MAX_BLOB_BYTES": "512Mi"}), nil, options{}, `AETHER_STORE_MAX_BLOB_BYTES="512Mi" is not a whole number of bytes from 1 to 8589934592`},
		{"zero env number", with(map[string]string{"AETHER_STORE_MAX_TOTAL_BYTES": "0"}), nil, options{}, `AETHER_STORE_MAX_TOTAL_BYTES="0"`},
		{"bad env duration", with(map[string]string{"AETHER_STORE_UPLOAD_TIMEOUT": "120"}), nil, options{}, `AETHER_STORE_UPLOAD_TIMEOUT="120" is not a duration from 1s to 1h0m0s`},
		{"quota over the total", aud, []string{"--namespace-quota-bytes", "4294967296"}, options{}, "namespace quota bytes (4294967296) <= max total bytes (2147483648)"},
		{"namespace uploads over the uploads", aud, []string{"--max-namespace-uploads", "9"}, options{}, "max namespace uploads (9) <= max uploads (4)"},
		{"zero timeout", aud, []string{"--upload-timeout", "0s"}, options{}, `invalid value "0s" for flag -upload-timeout: "0s" is not a duration from 1s to 1h0m0s`},
		// Each number at, below and above its range, from the environment
		// and from its flag; none of these above the range was refused
		// before the ranges.
		{"blob bytes at the maximum", aud, []string{"--max-blob-bytes=8589934592", "--namespace-quota-bytes=8589934592", "--max-total-bytes=1099511627776"},
			options{":8080", "/data", "http://store", lim(func(l *store.Limits) { l.MaxBlobBytes, l.NamespaceQuotaBytes, l.MaxTotalBytes = 8<<30, 8<<30, 1<<40 }), store.DefaultUploadTimeout}, ""},
		{"blob bytes above", aud, []string{"--max-blob-bytes=8589934593"}, options{}, `"8589934593" is not a whole number of bytes from 1 to 8589934592`},
		{"blob bytes overflow", with(map[string]string{"AETHER_STORE_MAX_BLOB_BYTES": "9999999999999999999"}), nil, options{}, `AETHER_STORE_MAX_BLOB_BYTES="9999999999999999999" is not a whole number of bytes from 1 to`},
		{"blob bytes negative", aud, []string{"--max-blob-bytes=-1"}, options{}, `"-1" is not a whole number of bytes from 1`},
		{"blob bytes hex", aud, []string{"--max-blob-bytes=0x10"}, options{}, `"0x10" is not a whole number`},
		{"total bytes above", with(map[string]string{"AETHER_STORE_MAX_TOTAL_BYTES": "9223372036854775807"}), nil, options{}, `AETHER_STORE_MAX_TOTAL_BYTES="9223372036854775807" is not a whole number of bytes from 1 to 1099511627776`},
		{"quota above", aud, []string{"--namespace-quota-bytes=1099511627777"}, options{}, "from 1 to 1099511627776"},
		{"uploads at the range", aud, []string{"--max-uploads=64", "--max-namespace-uploads=1"},
			options{":8080", "/data", "http://store", lim(func(l *store.Limits) { l.MaxUploads, l.MaxNamespaceUploads = 64, 1 }), store.DefaultUploadTimeout}, ""},
		{"uploads above", with(map[string]string{"AETHER_STORE_MAX_UPLOADS": "65"}), nil, options{}, `AETHER_STORE_MAX_UPLOADS="65" is not a whole number of uploads from 1 to 64`},
		{"uploads overflow int", aud, []string{"--max-uploads=9999999999"}, options{}, "from 1 to 64"},
		{"namespace uploads zero", aud, []string{"--max-namespace-uploads=0"}, options{}, `"0" is not a whole number of uploads from 1 to 64`},
		{"namespace uploads empty", with(map[string]string{"AETHER_STORE_MAX_NAMESPACE_UPLOADS": ""}), []string{"--max-namespace-uploads="}, options{}, `"" is not a whole number of uploads`},
		{"timeout at the range", with(map[string]string{"AETHER_STORE_UPLOAD_TIMEOUT": "1h"}), []string{"--upload-timeout=1s"},
			options{":8080", "/data", "http://store", def, time.Second}, ""},
		{"timeout above", with(map[string]string{"AETHER_STORE_UPLOAD_TIMEOUT": "2h"}), nil, options{}, `AETHER_STORE_UPLOAD_TIMEOUT="2h" is not a duration from 1s to 1h0m0s`},
	}
	envs := []string{"AETHER_STORE_ADDR", "AETHER_STORE_DIR", "AETHER_STORE_AUDIENCE", "AETHER_STORE_MAX_BLOB_BYTES", "AETHER_STORE_MAX_TOTAL_BYTES",
		"AETHER_STORE_NAMESPACE_QUOTA_BYTES", "AETHER_STORE_MAX_UPLOADS", "AETHER_STORE_MAX_NAMESPACE_UPLOADS", "AETHER_STORE_UPLOAD_TIMEOUT"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range envs {
				t.Setenv(k, tt.env[k])
			}
			got, err := parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parse = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// readyLater is an Access that becomes ready when its Run starts, as
// kubeaccess does once its watch has listed the Deployments.
type readyLater struct{ ready atomic.Bool }

func (a *readyLater) Ready() bool { return a.ready.Load() }
func (a *readyLater) AuthorizeRead(context.Context, string, store.BlobRef) error {
	return store.Forbidden("no")
}
func (a *readyLater) AuthorizeUpload(context.Context, store.BlobRef) error {
	return store.Forbidden("no")
}
func (a *readyLater) Pinned(string, string) bool { return false }
func (a *readyLater) Run(ctx context.Context) error {
	a.ready.Store(true)
	<-ctx.Done()
	return nil
}

// TestRunServesAndStops: the binary's loop answers on its address, ready
// once its Access is, and returns cleanly when its context ends (SIGTERM
// in a pod).
func TestRunServesAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{addr, t.TempDir(), "http://store", store.DefaultLimits, time.Minute}, &readyLater{}, slog.New(slog.DiscardHandler))
	}()
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
	}
	if strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/readyz answered %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}
