// Package storeserver runs the artifact store on loopback the way
// cmd/store runs it in a pod, with its access control (package kubeaccess)
// against a real API server, for the suites and the bench that push to a
// store; and mints the store tokens that the local fetchers show it.
package storeserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/store"
	"github.com/aether-dev/aether-devhot/pkg/store/kubeaccess"
)

// Server is a store on 127.0.0.1.
type Server struct {
	// URL is its root URL, also the audience of its tokens.
	URL string
	// Store is its core, for tests that look inside.
	Store *store.Store
	// Access is its access control.
	Access *kubeaccess.Access

	srv    *http.Server
	cancel context.CancelFunc
}

// Options tune Start.
type Options struct {
	// Limits default to store.DefaultLimits.
	Limits store.Limits
	// Wrap, if set, wraps the store's handler (to count or tamper).
	Wrap func(http.Handler) http.Handler
	// HandlerOptions are passed to store.Handler.
	HandlerOptions []store.HandlerOption
}

// Start serves a store in dir that reviews tokens and watches Deployments
// with cfg, and returns once it is ready.
func Start(cfg *rest.Config, dir string, o Options) (*Server, error) {
	if o.Limits == (store.Limits{}) {
		o.Limits = store.DefaultLimits
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + ln.Addr().String()}
	if s.Access, err = kubeaccess.New(cfg, s.URL); err != nil {
		ln.Close()
		return nil, err
	}
	if s.Store, err = store.Open(dir, o.Limits, store.WithPins(s.Access.Pinned)); err != nil {
		ln.Close()
		return nil, err
	}
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	go func() { _ = s.Access.Run(ctx) }()
	var h http.Handler = store.Handler(s.Store, s.Access, slog.New(slog.DiscardHandler), o.HandlerOptions...)
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	for deadline := time.Now().Add(30 * time.Second); !s.Access.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.Close()
			return nil, errors.New("the store's watch of Deployments did not sync within 30s")
		}
	}
	return s, nil
}

// Close stops the server and its watch.
func (s *Server) Close() {
	s.cancel()
	_ = s.srv.Close()
}

// Token mints a token of ns/sa for the store's audience, as the kubelet
// projects it into a fetcher.
func (s *Server) Token(cs kubernetes.Interface, ns, sa string) (string, error) {
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{s.URL}, ExpirationSeconds: ptr.To(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("store token for %s/%s: %w", ns, sa, err)
	}
	return tr.Status.Token, nil
}

// FetcherEnv writes a store token of ns/sa into dir and returns the env
// that points a local fetcher at this store with it.
func (s *Server) FetcherEnv(cs kubernetes.Interface, ns, sa, dir string) (map[string]string, error) {
	tok, err := s.Token(cs, ns, sa)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, sidecar.StoreTokenPath)
	if err := os.WriteFile(file, []byte(tok), 0o600); err != nil {
		return nil, err
	}
	return map[string]string{sidecar.EnvStoreURL: s.URL, sidecar.EnvStoreTokenFile: file}, nil
}
