package e2e

import (
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// apiProxy forwards loopback TCP connections to the API server. Cut severs
// every connection and resets new ones until Restore: to the fetcher it
// looks like the API server went away.
type apiProxy struct {
	ln     net.Listener
	target string
	// refused counts connections reset while cut.
	refused atomic.Int64

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

// startProxy proxies to target (host:port) until the test ends.
func startProxy(t *testing.T, target string) *apiProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &apiProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	done := make(chan struct{})
	go func() { defer close(done); p.serve() }()
	t.Cleanup(func() {
		ln.Close()
		<-done
		p.Cut()
	})
	return p
}

func (p *apiProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			p.refused.Add(1)
			reset(c)
			continue
		}
		go p.pipe(c)
	}
}

// pipe copies both ways until either side ends or Cut closes both.
func (p *apiProxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(c)
		return
	}
	if !p.track(c, u) {
		reset(c)
		u.Close()
		return
	}
	var once sync.Once
	end := func() {
		once.Do(func() {
			c.Close()
			u.Close()
			p.mu.Lock()
			delete(p.conns, c)
			delete(p.conns, u)
			p.mu.Unlock()
		})
	}
	go func() { _, _ = io.Copy(u, c); end() }()
	_, _ = io.Copy(c, u)
	end()
}

// track records a proxied pair, unless the proxy was cut meanwhile.
func (p *apiProxy) track(c, u net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	return true
}

// Cut resets every proxied connection and every new one until Restore.
func (p *apiProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		reset(c)
	}
	clear(p.conns)
}

// Restore lets new connections through again.
func (p *apiProxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// reset closes c with a TCP RST, as a crashed peer would.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// viaProxy writes a copy of kubeconfig whose server is p, keeping the
// host name so that the API server's certificate still matches.
func viaProxy(t *testing.T, kubeconfig, path string, p *apiProxy) {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(p.ln.Addr().String())
	for _, c := range kc.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
		c.Server = u.String()
	}
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
}
