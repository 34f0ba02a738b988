package probe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/aether-dev/aether-devhot/pkg/probe"
)

func TestFromContainer(t *testing.T) {
	httpGet := func(port intstr.IntOrString, path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: port, Path: path}}}
	}
	ports := []corev1.ContainerPort{{Name: "http", ContainerPort: 3000}}
	cases := []struct {
		name        string
		c           corev1.Container
		want        *probe.Probe
		wantProblem string
	}{
		{name: "no probe", c: corev1.Container{Name: "app"}},
		{name: "exec readiness is skipped", c: corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}},
		{
			name: "readiness with a named port and defaults",
			c:    corev1.Container{Name: "app", Ports: ports, ReadinessProbe: httpGet(intstr.FromString("http"), "/healthz")},
			want: &probe.Probe{Source: probe.SourceReadiness, HTTP: &probe.HTTPGetAction{Scheme: "HTTP", Port: 3000, Path: "/healthz"},
				TimeoutSeconds: 1, PeriodSeconds: 10, FailureThreshold: 3},
		},
		{
			name: "readiness before startup, with its own timings and headers",
			c: corev1.Container{Name: "app", StartupProbe: httpGet(intstr.FromInt32(9000), "/started"), ReadinessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080), Path: "/ready", Scheme: corev1.URISchemeHTTPS,
					HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}}}},
				TimeoutSeconds: 2, PeriodSeconds: 5, FailureThreshold: 6,
			}},
			want: &probe.Probe{Source: probe.SourceReadiness, HTTP: &probe.HTTPGetAction{Scheme: "HTTPS", Port: 8080, Path: "/ready", Headers: []probe.Header{{Name: "X-Probe", Value: "1"}}},
				TimeoutSeconds: 2, PeriodSeconds: 5, FailureThreshold: 6},
		},
		{
			name: "startup when readiness is exec",
			c: corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
				StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(3000)}}}},
			want: &probe.Probe{Source: probe.SourceStartup, TCP: &probe.TCPAction{Port: 3000}, TimeoutSeconds: 1, PeriodSeconds: 10, FailureThreshold: 3},
		},
		{
			name:        "a named port the container does not declare",
			c:           corev1.Container{Name: "app", ReadinessProbe: httpGet(intstr.FromString("web"), "/")},
			wantProblem: `containers[app].readinessProbe: httpGet.port: the container declares no port named "web"`,
		},
		{
			name: "startup when readiness names an undeclared port",
			c: corev1.Container{Name: "app", ReadinessProbe: httpGet(intstr.FromString("web"), "/"),
				StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(3000)}}}},
			want:        &probe.Probe{Source: probe.SourceStartup, TCP: &probe.TCPAction{Port: 3000}, TimeoutSeconds: 1, PeriodSeconds: 10, FailureThreshold: 3},
			wantProblem: `containers[app].readinessProbe: httpGet.port: the container declares no port named "web"`,
		},
		{
			name:        "a port out of range",
			c:           corev1.Container{Name: "app", ReadinessProbe: httpGet(intstr.FromInt32(70000), "/")},
			wantProblem: "containers[app].readinessProbe: httpGet.port: 70000 is not a port from 1 to 65535",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problem := probe.FromContainer(&tc.c)
			if problem != tc.wantProblem {
				t.Errorf("problem %q, want %q", problem, tc.wantProblem)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FromContainer() = %+v, want %+v", got, tc.want)
			}
			if got == nil {
				return
			}
			back, err := probe.Parse(got.String())
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", back, err, got)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{
		``,
		`{"source":"readinessProbe"}`,
		`{"source":"r","httpGet":{"scheme":"HTTP","port":1,"path":"/"},"tcpSocket":{"port":1},"timeoutSeconds":1,"periodSeconds":1,"failureThreshold":1}`,
		`{"source":"r","httpGet":{"scheme":"HTTP","port":0,"path":"/"},"timeoutSeconds":1,"periodSeconds":1,"failureThreshold":1}`,
		`{"source":"r","httpGet":{"scheme":"FTP","port":80,"path":"/"},"timeoutSeconds":1,"periodSeconds":1,"failureThreshold":1}`,
		`{"source":"r","tcpSocket":{"port":80},"timeoutSeconds":0,"periodSeconds":1,"failureThreshold":1}`,
		`{"source":"r","tcpSocket":{"port":80},"timeoutSeconds":1,"periodSeconds":1,"failureThreshold":1,"extra":true}`,
	} {
		if p, err := probe.Parse(s); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", s, p)
		}
	}
}

// httpProbe points an httpGet probe at srv.
func httpProbe(t *testing.T, srv *httptest.Server, path string, headers ...probe.Header) *probe.Probe {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	return &probe.Probe{Source: probe.SourceReadiness, HTTP: &probe.HTTPGetAction{Scheme: "HTTP", Port: port, Path: path, Headers: headers},
		TimeoutSeconds: 1, PeriodSeconds: 1, FailureThreshold: 1}
}

func TestCheckHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Host != "app.example" || r.Header.Get("X-Probe") != "1" {
				http.Error(w, "headers not passed: "+r.Host, http.StatusBadRequest)
			}
		case "/moved":
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
		case "/sick":
			http.Error(w, strings.Repeat("database is down ", 40), http.StatusInternalServerError)
		case "/slow":
			time.Sleep(1300 * time.Millisecond)
		case "/empty":
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	headers := []probe.Header{{Name: "Host", Value: "app.example"}, {Name: "X-Probe", Value: "1"}}
	if err := probe.NewChecker(httpProbe(t, srv, "/ok", headers...)).Check(ctx); err != nil {
		t.Errorf("200: %v", err)
	}
	if err := probe.NewChecker(httpProbe(t, srv, "/moved")).Check(ctx); err != nil {
		t.Errorf("302 must pass without following it: %v", err)
	}
	err := probe.NewChecker(httpProbe(t, srv, "/sick")).Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "readinessProbe GET http://127.0.0.1:") || !strings.Contains(err.Error(), "/sick: 500 Internal Server Error: database is down") || !strings.HasSuffix(err.Error(), "…") {
		t.Errorf("500: %v", err)
	}
	if err := probe.NewChecker(httpProbe(t, srv, "/empty")).Check(ctx); err == nil || !strings.HasSuffix(err.Error(), "/empty: 503 Service Unavailable") {
		t.Errorf("503: %v", err)
	}
	start := time.Now()
	if err := probe.NewChecker(httpProbe(t, srv, "/slow")).Check(ctx); err == nil || time.Since(start) > 1250*time.Millisecond {
		t.Errorf("a check past its timeout: %v after %v", err, time.Since(start))
	}
}

func TestCheckTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	p := &probe.Probe{Source: probe.SourceStartup, TCP: &probe.TCPAction{Port: port}, TimeoutSeconds: 1, PeriodSeconds: 1, FailureThreshold: 1}
	if err := probe.NewChecker(p).Check(context.Background()); err != nil {
		t.Errorf("open port: %v", err)
	}
	ln.Close()
	if err := probe.NewChecker(p).Check(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("closed port: %v", err)
	}
}
