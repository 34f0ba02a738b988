package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/store"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    options
		wantErr string
	}{
		{"defaults", nil, nil, options{":8080", "/data", store.DefaultLimits}, ""},
		{"env", map[string]string{"AETHER_STORE_ADDR": ":9", "AETHER_STORE_DIR": "/d", "AETHER_STORE_MAX_BLOB_BYTES": "5", "AETHER_STORE_MAX_TOTAL_BYTES": "6"},
			nil, options{":9", "/d", store.Limits{MaxBlobBytes: 5, MaxTotalBytes: 6}}, ""},
		{"flags override env", map[string]string{"AETHER_STORE_DIR": "/d"}, []string{"--dir", "/f", "--max-blob-bytes", "7"},
			options{":8080", "/f", store.Limits{MaxBlobBytes: 7, MaxTotalBytes: store.DefaultLimits.MaxTotalBytes}}, ""},
		{"argument", nil, []string{"serve"}, options{}, "takes no arguments"},
		{"bad number", nil, []string{"--max-blob-bytes", "lots"}, options{}, "invalid value"},
		{"bad env number", map[string]string{"AETHER_STORE_MAX_BLOB_BYTES": "512Mi"}, nil, options{}, `AETHER_STORE_MAX_BLOB_BYTES="512Mi": want a whole number of bytes`},
		{"zero env number", map[string]string{"AETHER_STORE_MAX_TOTAL_BYTES": "0"}, nil, options{}, `AETHER_STORE_MAX_TOTAL_BYTES="0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"AETHER_STORE_ADDR", "AETHER_STORE_DIR", "AETHER_STORE_MAX_BLOB_BYTES", "AETHER_STORE_MAX_TOTAL_BYTES"} {
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

// TestRunServesAndStops: the binary's loop answers on its address and
// returns cleanly when its context ends (SIGTERM in a pod).
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
		done <- run(ctx, options{addr, t.TempDir(), store.DefaultLimits}, slog.New(slog.DiscardHandler))
	}()
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
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
