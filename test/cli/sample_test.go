package cli

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/pack"
	"github.com/aether-dev/aether-devhot/pkg/store"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
	"github.com/aether-dev/aether-devhot/test/framework/storeserver"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

const (
	deployment = "hello"
	appName    = "app"
)

// sample is test/testdata/deployment.yaml in a fresh namespace, a store
// on loopback, the app's source directory and the local pod that runs it.
type sample struct {
	t          *testing.T
	ns         string
	dir        string
	src        string // the directory pushed: test/testdata/app plus version.json
	store      *loopbackStore
	kubeconfig string // the pod's service account
	pod        *localpod.Pod
}

// newSample applies the sample, waits for its RBAC, starts a store, and
// runs one pod whose app answers version 1, annotated the way a user
// would before ever running the plugin.
func newSample(t *testing.T, fetcherEnv map[string]string) *sample {
	t.Helper()
	s := &sample{t: t, ns: controlplane.NamespaceName("cli-", t), dir: t.TempDir()}
	s.src = filepath.Join(s.dir, "src")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}
	if _, err := cp.Clientset.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cp.Run(string(manifest), "-n", s.ns, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	sa := s.deployment().Spec.Template.Spec.ServiceAccountName
	s.kubeconfig = filepath.Join(s.dir, "fetcher.kubeconfig")
	wait.For(t, "token for service account "+sa, 15*time.Second, func() error {
		return cp.ServiceAccountKubeconfig(s.ns, sa, s.kubeconfig)
	})
	client := clientFor(t, s.kubeconfig)
	wait.For(t, "RBAC for "+sa, 15*time.Second, func() error {
		_, err := client.AppsV1().Deployments(s.ns).List(context.Background(), metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", deployment).String(),
		})
		return err
	})
	s.store = startStore(t)

	s.writeVersion(1)
	// Version 1 as push sends it, a delta release, so that pushing the
	// same tree again is a no-op.
	r, err := pack.Delta(s.src, pack.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The store takes only what the Deployment asks for, so annotate
	// first; no fetcher runs yet.
	ref := store.BlobRef{Namespace: s.ns, Deployment: deployment, Hex: r.Hex()}
	if _, _, err := cp.Run("", "-n", s.ns, "annotate", "--overwrite", "deployment", deployment,
		annotations.Digest+"="+r.Digest, annotations.ArtifactURL+"="+s.store.URL+ref.Path()); err != nil {
		t.Fatal(err)
	}
	c := &store.Client{HTTP: http.DefaultClient, Base: s.store.URL}
	if _, err := c.PutRelease(context.Background(), ref, r.Root, r.Open); err != nil {
		t.Fatal(err)
	}
	// The fetcher shows the store the token the kubelet would project.
	env, err := s.store.FetcherEnv(cp.Clientset, s.ns, sa, s.dir)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(env, fetcherEnv)
	s.startPod(env)
	return s
}

// writeVersion makes the source directory test/testdata/app plus a
// version.json that the app answers with.
func (s *sample) writeVersion(v int) {
	s.t.Helper()
	if err := os.MkdirAll(s.src, 0o755); err != nil {
		s.t.Fatal(err)
	}
	app, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "app", "server.js"))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.src, "server.js"), app, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.saveVersion(v)
}

// saveVersion writes version.json in place, as an editor's save does.
func (s *sample) saveVersion(v int) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.src, "version.json"), fmt.Appendf(nil, `{"version":%d}`, v), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sample) startPod(fetcherEnv map[string]string) {
	s.t.Helper()
	d := s.deployment()
	name := deployment + "-local-0"
	s.pod = localpod.StartT(s.t, d, localpod.Options{
		Name: name, Namespace: s.ns, Kubeconfig: s.kubeconfig, FetcherBin: fetcherBin,
		Dir: filepath.Join(s.dir, name), FetcherEnv: fetcherEnv,
	}, appName, 1)
}

// plugin returns the command line of kubectl-devhot as admin in the
// sample's namespace, with the loopback store.
func (s *sample) plugin(args ...string) *exec.Cmd {
	all := append([]string{"--kubeconfig", cp.Kubeconfig, "-n", s.ns}, args...)
	all = append(all, "--store", s.store.URL, "--timeout", "20s")
	return exec.Command(pluginBin, all...)
}

// push runs `kubectl devhot push hello SRC` and returns its output and
// whether it exited 0.
func (s *sample) push() (string, error) {
	s.t.Helper()
	var out bytes.Buffer
	cmd := s.plugin("push", "deploy/"+deployment, s.src)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (s *sample) deployment() *appsv1.Deployment {
	s.t.Helper()
	d, err := cp.Clientset.AppsV1().Deployments(s.ns).Get(context.Background(), deployment, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

// loopbackStore is the artifact store on 127.0.0.1 with its access
// control against the control plane, counting uploads and able to tamper
// with what it serves.
type loopbackStore struct {
	*storeserver.Server
	puts   atomic.Int64
	tamper atomic.Bool
}

func startStore(t *testing.T) *loopbackStore {
	t.Helper()
	ls := &loopbackStore{}
	srv, err := storeserver.Start(cp.Config, t.TempDir(), storeserver.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut {
				ls.puts.Add(1)
			}
			// Only the fetchers' downloads, which carry a token.
			if r.Method == http.MethodGet && r.Header.Get("Authorization") != "" && ls.tamper.Load() {
				w = &tamperWriter{ResponseWriter: w}
			}
			h.ServeHTTP(w, r)
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ls.Server = srv
	return ls
}

// tamperWriter flips the first byte of a body: what a man in the middle
// of plain http inside a cluster could do.
type tamperWriter struct {
	http.ResponseWriter
	done bool
}

func (w *tamperWriter) Write(b []byte) (int, error) {
	if !w.done && len(b) > 0 {
		w.done = true
		b = append([]byte{b[0] ^ 0xff}, b[1:]...)
	}
	return w.ResponseWriter.Write(b)
}

func clientFor(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ctxTimeout is a context that ends after d or with the test.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
