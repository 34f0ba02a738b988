package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
	"github.com/aether-dev/aether-devhot/test/framework/controlplane"
	"github.com/aether-dev/aether-devhot/test/framework/localpod"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

const (
	deployment = realpod.Deployment
	appName    = realpod.AppContainer
	h1Ceiling  = realpod.H1Ceiling
)

// sample is test/testdata/deployment.yaml applied in a fresh namespace,
// with its own artifact server and the local pods that run it.
type sample struct {
	t    *testing.T
	ns   string
	dir  string
	arts *artifact.Server
	// kubeconfig holds a token of the pod's service account.
	kubeconfig string
	pods       []*localpod.Pod
}

// newSample creates a namespace named after the test, applies the sample
// there, waits until the reconciler's RBAC lets the pod's service account
// watch it, and starts an artifact server.
func newSample(t *testing.T) *sample {
	t.Helper()
	s := &sample{t: t, ns: controlplane.NamespaceName("e2e-", t), dir: t.TempDir()}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}
	if _, err := cp.Clientset.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.apply()

	sa := s.deployment().Spec.Template.Spec.ServiceAccountName
	s.kubeconfig = filepath.Join(s.dir, "fetcher.kubeconfig")
	wait.For(t, "token for service account "+sa, 15*time.Second, func() error {
		return cp.ServiceAccountKubeconfig(s.ns, sa, s.kubeconfig)
	})
	// What the fetcher's informer does first; RBAC takes a moment to apply.
	client := clientFor(t, s.kubeconfig)
	wait.For(t, "RBAC for "+sa, 15*time.Second, func() error {
		_, err := client.AppsV1().Deployments(s.ns).List(context.Background(), metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", deployment).String(),
		})
		return err
	})

	var err error
	if s.arts, err = artifact.NewServer(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.arts.Close() })
	return s
}

// apply runs `kubectl apply` of the unedited sample and returns its output.
func (s *sample) apply() string {
	s.t.Helper()
	manifest, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "deployment.yaml"))
	if err != nil {
		s.t.Fatal(err)
	}
	out, _ := s.kubectl(string(manifest), "apply", "-f", "-")
	return strings.TrimSpace(out)
}

// kubectl runs the pinned kubectl as admin in the sample's namespace.
func (s *sample) kubectl(stdin string, args ...string) (string, string) {
	s.t.Helper()
	out, stderr, err := cp.Run(stdin, append([]string{"-n", s.ns}, args...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out, stderr
}

// annotate runs `kubectl annotate --overwrite` with key=value pairs.
func (s *sample) annotate(kv ...string) {
	s.t.Helper()
	s.kubectl("", append([]string{"annotate", "--overwrite", "deployment", deployment}, kv...)...)
}

// deployment returns the Deployment as stored, that is as mutated.
func (s *sample) deployment() *appsv1.Deployment {
	s.t.Helper()
	d, err := cp.Clientset.AppsV1().Deployments(s.ns).Get(context.Background(), deployment, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

// template returns the stored pod template as JSON: if it changes, a
// Deployment controller would roll out.
func (s *sample) template() string {
	s.t.Helper()
	b, err := json.Marshal(s.deployment().Spec.Template)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// build builds version v of the test app without serving it.
func (s *sample) build(v int) artifact.Artifact {
	s.t.Helper()
	a, err := artifact.App(filepath.Join(controlplane.RepoRoot(), "test", "testdata", "app"), v)
	if err != nil {
		s.t.Fatal(err)
	}
	return a
}

// serve builds version v and serves it; it returns the artifact and its URL.
func (s *sample) serve(v int) (artifact.Artifact, string) {
	s.t.Helper()
	a := s.build(v)
	return a, s.arts.Put(fmt.Sprintf("hello-v%d.tar.gz", v), a.Data)
}

// push serves version v and annotates its digest and URL. It returns the
// digest and when kubectl was started: latency is measured from there.
func (s *sample) push(v int) (string, time.Time) {
	s.t.Helper()
	a, url := s.serve(v)
	sent := time.Now()
	s.annotate(annotations.Digest+"="+a.Digest, annotations.ArtifactURL+"="+url)
	return a.Digest, sent
}

// startPod runs one more pod of the Deployment, with the given kubeconfig
// ("" for the sample's), and waits until its app answers version v.
func (s *sample) startPod(kubeconfig string, v int) *localpod.Pod {
	s.t.Helper()
	if kubeconfig == "" {
		kubeconfig = s.kubeconfig
	}
	name := fmt.Sprintf("%s-local-%d", deployment, len(s.pods))
	d := s.deployment()
	pod := localpod.StartT(s.t, d, localpod.Options{
		Name: name, Namespace: s.ns, Kubeconfig: kubeconfig, FetcherBin: fetcherBin, Dir: filepath.Join(s.dir, name),
	}, appName, v)
	s.pods = append(s.pods, pod)
	return pod
}

// waitVersion waits up to timeout after since for pod to answer version v
// and returns how long that took from since.
func waitVersion(t *testing.T, pod *localpod.Pod, v int, since time.Time, timeout time.Duration) (localpod.Answer, time.Duration) {
	t.Helper()
	a, took, err := waitFor(pod, v, since, timeout)
	if err != nil {
		t.Fatalf("not within %s: %v", timeout, err)
	}
	return a, took
}

// waitFor is waitVersion for use off the test's goroutine.
func waitFor(pod *localpod.Pod, v int, since time.Time, timeout time.Duration) (localpod.Answer, time.Duration, error) {
	ctx, cancel := context.WithDeadline(context.Background(), since.Add(timeout))
	defer cancel()
	a, err := pod.WaitVersion(ctx, v)
	return a, time.Since(since), err
}

// answer asks pod for its version and fails the test if it cannot.
func answer(t *testing.T, pod *localpod.Pod) localpod.Answer {
	t.Helper()
	a, err := pod.Get()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// steady checks for about d that pod keeps answering want: same version,
// same process, no new start.
func steady(t *testing.T, pod *localpod.Pod, want localpod.Answer, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if got := answer(t, pod); got != want {
			t.Fatalf("app answered %+v, want %+v (a restart or a reload)", got, want)
		}
	}
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
