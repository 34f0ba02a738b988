package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/aether-dev/aether-devhot/test/framework/bench"
)

// throughput measures AdmissionReviews per second over HTTPS with
// keep-alive, from cfg.clients concurrent clients on loopback, against
// the running webhook (the URL and CA that the API server uses) and, as
// the same-run baseline, against an empty TLS handler with the same
// certificate that answers a fixed review. Rounds alternate between the
// two; the figure is the median round.
func (b *runner) throughput(saved *admissionregistrationv1.MutatingWebhookConfiguration) error {
	cc := saved.Webhooks[0].ClientConfig
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cc.CABundle) {
		return errors.New("the webhook configuration's caBundle holds no certificate")
	}
	hook, err := url.Parse(*cc.URL)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(hook.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("webhook URL %s is not on loopback", hook)
	}
	body, err := b.reviewBody()
	if err != nil {
		return err
	}

	empty, err := emptyServer(b.cp.WebhookOptions().CertDir, hook.Hostname())
	if err != nil {
		return err
	}
	defer empty.Close()
	emptyURL := "https://" + empty.Addr + hook.Path

	for _, target := range []string{hook.String(), emptyURL} {
		if err := checkReview(pool, target, body, target == hook.String()); err != nil {
			return err
		}
		// Warm-up: connections, TLS sessions, the server's pools.
		if _, err := b.hammer(pool, target, body, time.Second); err != nil {
			return err
		}
	}
	for range b.cfg.tputRounds {
		for _, t := range []struct {
			url string
			dst *[]float64
		}{{hook.String(), &b.res.tput}, {emptyURL, &b.res.tputEmpty}} {
			rps, err := b.hammer(pool, t.url, body, b.cfg.tputDuration)
			if err != nil {
				return err
			}
			*t.dst = append(*t.dst, rps)
		}
	}
	fmt.Fprintf(os.Stderr, "    webhook %.0f req/s, empty TLS handler %.0f req/s (median of %d)\n",
		bench.Median(b.res.tput), bench.Median(b.res.tputEmpty), len(b.res.tput))
	return nil
}

// reviewBody is a CREATE review of the labelled Deployment that
// BenchmarkHandle reviews (test/golden/one-init-container.in.yaml).
func (b *runner) reviewBody() ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(b.root, "test", "golden", "one-init-container.in.yaml"))
	if err != nil {
		return nil, err
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	obj, err := json.Marshal(&d)
	if err != nil {
		return nil, err
	}
	dryRun := false
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "6f0c7a52-0000-4000-8000-000000000001",
			Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			Name:      d.Name,
			Namespace: d.Namespace,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: obj},
			DryRun:    &dryRun,
		},
	})
}

// client is a keep-alive HTTPS client over HTTP/1.1, as the API server's.
func client(pool *x509.CertPool, conns int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
	}}
}

// checkReview sends one review and checks the answer: allowed, and with a
// patch when wantPatch.
func checkReview(pool *x509.CertPool, target string, body []byte, wantPatch bool) error {
	c := client(pool, 1)
	defer c.CloseIdleConnections()
	resp, err := c.Post(target, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var ar admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK || ar.Response == nil || !ar.Response.Allowed || (wantPatch && len(ar.Response.Patch) == 0) {
		return fmt.Errorf("%s answered %d %+v", target, resp.StatusCode, ar.Response)
	}
	if resp.ProtoMajor != 1 {
		return fmt.Errorf("%s spoke %s, want HTTP/1.1", target, resp.Proto)
	}
	return nil
}

// hammer posts body from cfg.clients goroutines over fresh keep-alive
// connections for d or cfg.tputMax requests, whichever ends first, and
// returns the answered requests per second.
func (b *runner) hammer(pool *x509.CertPool, target string, body []byte, d time.Duration) (float64, error) {
	c := client(pool, b.cfg.clients)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	var sent, ok atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range b.cfg.clients {
		wg.Go(func() {
			for ctx.Err() == nil && sent.Add(1) <= b.cfg.tputMax {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, &err)
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err := fmt.Errorf("%s answered %s", target, resp.Status)
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if e := firstErr.Load(); e != nil {
		return 0, *e
	}
	return float64(ok.Load()) / elapsed.Seconds(), nil
}

// tlsServer is the empty TLS handler of the throughput baseline.
type tlsServer struct {
	Addr string
	srv  *http.Server
}

// emptyServer serves a fixed allowed AdmissionReview over TLS on host
// (loopback) with the webhook's own certificate, HTTP/1.1 only.
func emptyServer(certDir, host string) (*tlsServer, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	answer := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"6f0c7a52-0000-4000-8000-000000000001","allowed":true}}`)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(answer)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		// Non-nil and empty: no HTTP/2, as the webhook by default.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	return &tlsServer{Addr: ln.Addr().String(), srv: srv}, nil
}

// Close stops the server.
func (s *tlsServer) Close() error { return s.srv.Close() }
