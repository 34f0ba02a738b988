// Package probe carries the app container's readiness (or startup) probe to
// the fetcher, which runs it on the pod's loopback to tell when a release
// answers (DESIGN.md "Health gate"). The webhook makes a Probe from the
// container at admission, with named ports resolved; the fetcher reads it
// back from its environment. String and Parse are the one encoding.
package probe

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Probe is an httpGet or tcpSocket probe with its port resolved. Exactly one
// of HTTP and TCP is set.
type Probe struct {
	// Source names the container's probe this came from, for messages:
	// "readinessProbe" or "startupProbe".
	Source string         `json:"source"`
	HTTP   *HTTPGetAction `json:"httpGet,omitempty"`
	TCP    *TCPAction     `json:"tcpSocket,omitempty"`
	// TimeoutSeconds bounds one check. PeriodSeconds and FailureThreshold
	// are how often the fetcher checks a live release, and after how many
	// failures in a row it reports the app down. All three are the probe's
	// own, with Kubernetes' defaults filled in.
	TimeoutSeconds   int `json:"timeoutSeconds"`
	PeriodSeconds    int `json:"periodSeconds"`
	FailureThreshold int `json:"failureThreshold"`
}

// Timeout bounds one check.
func (p *Probe) Timeout() time.Duration { return time.Duration(p.TimeoutSeconds) * time.Second }

// Period is how often a live release is checked.
func (p *Probe) Period() time.Duration { return time.Duration(p.PeriodSeconds) * time.Second }

// HTTPGetAction is a resolved httpGet.
type HTTPGetAction struct {
	// Scheme is "HTTP" or "HTTPS".
	Scheme string `json:"scheme"`
	// Host is the probe's host, "" for the pod's loopback.
	Host    string   `json:"host,omitempty"`
	Port    int      `json:"port"`
	Path    string   `json:"path"`
	Headers []Header `json:"headers,omitempty"`
}

// Header is one httpHeaders entry.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPAction is a resolved tcpSocket.
type TCPAction struct {
	Host string `json:"host,omitempty"`
	Port int    `json:"port"`
}

// The probes of a container that the fetcher can run, in the order it
// prefers them: readiness says the app serves, startup only that it came up.
const (
	SourceReadiness = "readinessProbe"
	SourceStartup   = "startupProbe"
)

// Kubernetes' defaults for the probe fields left at zero.
const (
	defaultTimeoutSeconds = 1
	defaultPeriodSeconds  = 10
	defaultThreshold      = 3
)

// FromContainer returns the probe the fetcher runs for c: its readiness
// probe, else its startup probe, the first that is httpGet or tcpSocket and
// can be run from the fetcher. It returns nil when there is none; then
// "loaded" is enough for a release to be live. problem names a probe that
// was passed over because it cannot be run (a named port that c does not
// declare); exec and gRPC probes are passed over without a problem, as no
// one outside the container can run them.
func FromContainer(c *corev1.Container) (p *Probe, problem string) {
	for _, src := range []struct {
		name  string
		probe *corev1.Probe
	}{{SourceReadiness, c.ReadinessProbe}, {SourceStartup, c.StartupProbe}} {
		if src.probe == nil || (src.probe.HTTPGet == nil && src.probe.TCPSocket == nil) {
			continue
		}
		p, err := fromProbe(c, src.name, src.probe)
		if err == nil {
			return p, problem
		}
		if problem == "" {
			problem = fmt.Sprintf("containers[%s].%s: %v", c.Name, src.name, err)
		}
	}
	return nil, problem
}

func fromProbe(c *corev1.Container, source string, k *corev1.Probe) (*Probe, error) {
	p := &Probe{
		Source:           source,
		TimeoutSeconds:   orDefault(k.TimeoutSeconds, defaultTimeoutSeconds),
		PeriodSeconds:    orDefault(k.PeriodSeconds, defaultPeriodSeconds),
		FailureThreshold: orDefault(k.FailureThreshold, defaultThreshold),
	}
	if h := k.HTTPGet; h != nil {
		port, err := resolvePort(c, h.Port)
		if err != nil {
			return nil, fmt.Errorf("httpGet.port: %w", err)
		}
		scheme := string(h.Scheme)
		if scheme == "" {
			scheme = string(corev1.URISchemeHTTP)
		}
		if scheme != string(corev1.URISchemeHTTP) && scheme != string(corev1.URISchemeHTTPS) {
			return nil, fmt.Errorf("httpGet.scheme %q is not HTTP or HTTPS", scheme)
		}
		a := &HTTPGetAction{Scheme: scheme, Host: h.Host, Port: port, Path: h.Path}
		for _, hd := range h.HTTPHeaders {
			a.Headers = append(a.Headers, Header{Name: hd.Name, Value: hd.Value})
		}
		p.HTTP = a
		return p, nil
	}
	port, err := resolvePort(c, k.TCPSocket.Port)
	if err != nil {
		return nil, fmt.Errorf("tcpSocket.port: %w", err)
	}
	p.TCP = &TCPAction{Host: k.TCPSocket.Host, Port: port}
	return p, nil
}

func orDefault(n int32, def int) int {
	if n <= 0 {
		return def
	}
	return int(n)
}

// resolvePort turns a probe's port, a number or the name of one of c's
// ports, into a number, as the kubelet does.
func resolvePort(c *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		if port.IntVal < 1 || port.IntVal > 65535 {
			return 0, fmt.Errorf("%d is not a port from 1 to 65535", port.IntVal)
		}
		return int(port.IntVal), nil
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil && n >= 1 && n <= 65535 {
		return n, nil
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("the container declares no port named %q", port.StrVal)
}

// String encodes p for the fetcher's environment.
func (p *Probe) String() string {
	b, err := json.Marshal(p)
	if err != nil {
		// Only strings, numbers and slices of them: Marshal cannot fail.
		panic(err)
	}
	return string(b)
}

// Parse reads what String wrote. It checks the fields, since the value
// reaches the fetcher through an environment variable anyone may edit.
func Parse(s string) (*Probe, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var p Probe
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("not a probe: %w", err)
	}
	switch {
	case (p.HTTP == nil) == (p.TCP == nil):
		return nil, errors.New("a probe needs exactly one of httpGet and tcpSocket")
	case p.HTTP != nil && (p.HTTP.Port < 1 || p.HTTP.Port > 65535):
		return nil, fmt.Errorf("httpGet.port %d is not from 1 to 65535", p.HTTP.Port)
	case p.HTTP != nil && p.HTTP.Scheme != string(corev1.URISchemeHTTP) && p.HTTP.Scheme != string(corev1.URISchemeHTTPS):
		return nil, fmt.Errorf("httpGet.scheme %q is not HTTP or HTTPS", p.HTTP.Scheme)
	case p.TCP != nil && (p.TCP.Port < 1 || p.TCP.Port > 65535):
		return nil, fmt.Errorf("tcpSocket.port %d is not from 1 to 65535", p.TCP.Port)
	case p.TimeoutSeconds < 1 || p.PeriodSeconds < 1 || p.FailureThreshold < 1:
		return nil, errors.New("timeoutSeconds, periodSeconds and failureThreshold must be 1 or more")
	}
	return &p, nil
}

// host is where the fetcher reaches the app: the probe's host, or the
// pod's loopback, which the fetcher shares with the app.
func host(h string) string {
	if h == "" {
		return "127.0.0.1"
	}
	return h
}

// URL is what an httpGet probe requests, "" for tcpSocket.
func (p *Probe) URL() string {
	if p.HTTP == nil {
		return ""
	}
	path := p.HTTP.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return strings.ToLower(p.HTTP.Scheme) + "://" + net.JoinHostPort(host(p.HTTP.Host), strconv.Itoa(p.HTTP.Port)) + path
}

// Describe names the probe in messages: "readinessProbe GET
// http://127.0.0.1:3000/healthz" or "startupProbe tcp 127.0.0.1:3000".
func (p *Probe) Describe() string {
	if p.HTTP != nil {
		return p.Source + " GET " + p.URL()
	}
	return p.Source + " tcp " + net.JoinHostPort(host(p.TCP.Host), strconv.Itoa(p.TCP.Port))
}

// maxBody is how much of a failing answer an error quotes.
const maxBody = 256

// Checker runs a Probe. Its zero value is not usable; use NewChecker.
type Checker struct {
	p      *Probe
	client *http.Client
}

// NewChecker returns a Checker for p. Like the kubelet, it does not verify
// an HTTPS probe's certificate and does not follow redirects (a 3xx
// passes), and it opens a new connection for every check, so that a
// restarted app is never judged by a connection to the old one.
func NewChecker(p *Probe) *Checker {
	return &Checker{p: p, client: &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet's probes
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Probe returns the probe the Checker runs.
func (c *Checker) Probe() *Probe { return c.p }

// Check runs the probe once: nil when it passes (an answer from 200 to 399,
// or a TCP connection), else an error that says what answered.
func (c *Checker) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.p.Timeout())
	defer cancel()
	if c.p.TCP != nil {
		addr := net.JoinHostPort(host(c.p.TCP.Host), strconv.Itoa(c.p.TCP.Port))
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: %w", c.p.Describe(), err)
		}
		return conn.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.p.URL(), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", c.p.Describe(), err)
	}
	req.Header.Set("User-Agent", "aether-devhot-fetcher")
	for _, h := range c.p.HTTP.Headers {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%s: %w", c.p.Describe(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	text := strings.TrimSpace(strings.ToValidUTF8(string(body), "?"))
	if len(body) > maxBody {
		text = strings.ToValidUTF8(text[:min(len(text), maxBody)], "") + "…"
	}
	if text == "" {
		return fmt.Errorf("%s: %s", c.p.Describe(), resp.Status)
	}
	return fmt.Errorf("%s: %s: %s", c.p.Describe(), resp.Status, text)
}
