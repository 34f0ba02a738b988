// Package localpod runs one pod of a mutated Deployment as local processes,
// doing what the kubelet would: it reads the fetcher's and the app's
// command and env from the object the webhook returned (nothing is
// repeated here), maps their volume mounts onto one local workspace
// directory, starts the fetcher, holds the app back until the fetcher is
// ready, then starts the app under the real `node --watch`.
package localpod

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// Options of one local pod.
type Options struct {
	// Name and Namespace are the pod's; they fill the fieldRef env vars.
	Name, Namespace string
	// Kubeconfig is what the fetcher uses in place of its projected token.
	Kubeconfig string
	// FetcherBin is the built cmd/fetcher; it stands for the image's /fetcher.
	FetcherBin string
	// Dir holds the workspace, the app's state and the logs.
	Dir string
	// FetcherEnv adds or overrides fetcher env vars (for example poll mode).
	FetcherEnv map[string]string
}

// Pod is a running local pod.
type Pod struct {
	Options
	Workspace   string
	volume      string // the workspace volume's name
	MetricsAddr string
	AppPort     int
	fetcher     *exec.Cmd
	app         *exec.Cmd
	fetcherLog  string
	appLog      string
}

// Answer is what the test app answers on GET /.
type Answer struct {
	Version int `json:"version"`
	PID     int `json:"pid"`
	Starts  int `json:"starts"`
}

// Start starts the fetcher of d's pod template. Call StartApp once a
// release is published (the fetcher's /readyz says so).
func Start(d *appsv1.Deployment, o Options) (*Pod, error) {
	p := &Pod{Options: o, Workspace: filepath.Join(o.Dir, "workspace")}
	for _, dir := range []string{p.Workspace, filepath.Join(o.Dir, "state")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	fc, ok := container(d, sidecar.ContainerName)
	if !ok {
		return nil, fmt.Errorf("deployment %s has no %s container: was it mutated?", d.Name, sidecar.ContainerName)
	}
	for _, m := range fc.VolumeMounts {
		if m.MountPath == sidecar.WorkspaceMountPath {
			p.volume = m.Name
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p.MetricsAddr = "127.0.0.1:" + strconv.Itoa(port)
	env := p.env(fc.Env)
	env = append(env,
		sidecar.EnvWorkspace+"="+p.mapPath(fc, sidecar.WorkspaceMountPath),
		sidecar.EnvMetricsAddr+"="+p.MetricsAddr,
		"KUBECONFIG="+o.Kubeconfig)
	for k, v := range o.FetcherEnv {
		env = append(env, k+"="+v)
	}
	argv := slices.Concat(fc.Command, fc.Args)
	if len(argv) == 0 || argv[0] != "/fetcher" {
		return nil, fmt.Errorf("fetcher command %q does not start with /fetcher", argv)
	}
	p.fetcherLog = filepath.Join(o.Dir, "fetcher.log")
	if p.fetcher, err = startProcess(o.FetcherBin, argv[1:], env, "", p.fetcherLog); err != nil {
		return nil, err
	}
	return p, nil
}

// WaitReady waits for the fetcher's /readyz: the startupProbe of a native
// sidecar, or the postStart hook of a legacy one.
func (p *Pod) WaitReady(ctx context.Context) error {
	for {
		resp, err := http.Get("http://" + p.MetricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fetcher not ready: %w (log: %s)", ctx.Err(), p.fetcherLog)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartApp starts the app container's rewritten command.
func (p *Pod) StartApp(d *appsv1.Deployment, appName string) error {
	ac, ok := container(d, appName)
	if !ok {
		return fmt.Errorf("deployment %s has no container %q", d.Name, appName)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	p.AppPort = port
	argv := slices.Concat(ac.Command, ac.Args)
	for i := range argv {
		argv[i] = p.mapArg(ac, argv[i])
	}
	node, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("app command %q: %w", argv[0], err)
	}
	env := append(p.env(ac.Env),
		// Each pod has its own network namespace; here they share loopback.
		"PORT="+strconv.Itoa(port),
		"APP_STATE_DIR="+filepath.Join(p.Dir, "state"))
	p.appLog = filepath.Join(p.Dir, "app.log")
	p.app, err = startProcess(node, argv[1:], env, p.mapPath(ac, ac.WorkingDir), p.appLog)
	return err
}

// Get asks the app for its version.
func (p *Pod) Get() (Answer, error) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", p.AppPort))
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	var a Answer
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &a); err != nil {
		return Answer{}, fmt.Errorf("app answered %q: %w", b, err)
	}
	return a, nil
}

// WaitVersion polls the app every 5 ms until it answers version v.
func (p *Pod) WaitVersion(ctx context.Context, v int) (Answer, error) {
	var last Answer
	var lastErr error
	for {
		a, err := p.Get()
		if err == nil && a.Version == v {
			return a, nil
		}
		last, lastErr = a, err
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("version %d not answering: last %+v, %v (logs: %s, %s)", v, last, lastErr, p.fetcherLog, p.appLog)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// FetcherLog returns the fetcher's output so far.
func (p *Pod) FetcherLog() string {
	b, _ := os.ReadFile(p.fetcherLog)
	return string(b)
}

// Refreshes returns the fetcher's refresh records so far, in order, read
// with the readers' own parser; only those of markers when any are given.
func (p *Pod) Refreshes(markers ...refresh.Marker) []refresh.Record {
	var out []refresh.Record
	for _, l := range strings.Split(p.FetcherLog(), "\n") {
		if r, ok := refresh.Parse(l); ok && (len(markers) == 0 || slices.Contains(markers, r.Marker)) {
			out = append(out, r)
		}
	}
	return out
}

// Logs names the log files.
func (p *Pod) Logs() (fetcher, app string) { return p.fetcherLog, p.appLog }

// StopFetcher stops only the fetcher (a crash or restart of the sidecar).
func (p *Pod) StopFetcher() { stop(p.fetcher) }

// Stop stops the app and the fetcher, and waits for them.
func (p *Pod) Stop() {
	stop(p.app)
	stop(p.fetcher)
}

func stop(c *exec.Cmd) {
	if c == nil || c.Process == nil {
		return
	}
	// The process group: node --watch runs the app as a child.
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func startProcess(bin string, args, env []string, dir, logPath string) (*exec.Cmd, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c := exec.Command(bin, args...)
	c.Env = append(os.Environ(), env...)
	c.Dir = dir
	c.Stdout, c.Stderr = log, log
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = c.Wait(); log.Close() }()
	return c, nil
}

// env resolves a container's env as the kubelet would for this pod.
func (p *Pod) env(vars []corev1.EnvVar) []string {
	var out []string
	for _, e := range vars {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				v = p.Name
			case "metadata.namespace":
				v = p.Namespace
			}
		}
		out = append(out, e.Name+"="+v)
	}
	return out
}

// mapPath maps a path inside container c onto the local workspace, if it
// lies under c's mount of the workspace volume, as the kubelet's bind
// mount would.
func (p *Pod) mapPath(c corev1.Container, path string) string {
	for _, m := range c.VolumeMounts {
		if m.Name != p.volume {
			continue
		}
		if path == m.MountPath {
			return p.Workspace
		}
		if rest, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/"); ok {
			return filepath.Join(p.Workspace, rest)
		}
	}
	return path
}

func (p *Pod) mapArg(c corev1.Container, arg string) string {
	if strings.HasPrefix(arg, "/") {
		return p.mapPath(c, arg)
	}
	return arg
}

func container(d *appsv1.Deployment, name string) (corev1.Container, bool) {
	spec := d.Spec.Template.Spec
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		if c.Name == name {
			return c, true
		}
	}
	return corev1.Container{}, false
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
