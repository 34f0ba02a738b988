package realcluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/test/framework/apps"
)

// service is one realistic app of test/testdata/apps as the real-services
// test drives it.
type service struct {
	// app is its directory and Deployment; images the apps whose images
	// its containers run, in order.
	app    string
	images []string
	// container is the Node container, code the app whose source it runs;
	// message is the file of it the test edits, and write what it writes
	// there.
	container string
	code      string
	message   string
	write     func(msg string) string
	// image is what the image's own code answers.
	image string
}

func cjsMessage(msg string) string { return fmt.Sprintf("module.exports = %q;\n", msg) }
func esmMessage(msg string) string { return fmt.Sprintf("export const message = %q;\n", msg) }

var services = []service{
	{app: "shop-api", images: []string{"shop-api"}, container: "shop-api", code: "shop-api", message: "src/message.js", write: cjsMessage, image: "hello from shop-api"},
	{app: "esm-api", images: []string{"esm-api"}, container: "esm-api", code: "esm-api", message: "src/message.js", write: esmMessage, image: "hello from esm-api"},
	{app: "distroless-api", images: []string{"distroless-api"}, container: "distroless-api", code: "distroless-api", message: "src/message.js", write: cjsMessage, image: "hello from distroless-api"},
	{app: "sidecar-first", images: []string{"sidecar-first", "shop-api"}, container: "api", code: "shop-api", message: "src/message.js", write: cjsMessage, image: "hello from shop-api"},
}

var liveLine = regexp.MustCompile(`deployment\.apps/\S+: (sha256:[0-9a-f]{64}) live on (\d+)/(\d+) pods`)

// TestClusterRealServices is issue 15's "done": each realistic app (a real
// image with its node_modules, a Deployment shaped like a public chart, no
// command, no annotation) is deployed unlabelled, then enabled with
// `kubectl devhot enable` alone: its two pods keep answering from the
// image's own code, now under the injected fetcher. Then an edit of its
// source is pushed, and another, and each answers from every pod with the
// image's dependencies and no rollout; disable brings the original back.
func TestClusterRealServices(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	refs := map[string]string{}
	for _, s := range services {
		for _, name := range s.images {
			if refs[name] != "" {
				continue
			}
			ref, err := apps.Push(name)
			if err != nil {
				t.Fatal(err)
			}
			refs[name] = ref
		}
	}
	for _, s := range services {
		t.Run(s.app, func(t *testing.T) {
			t.Parallel()
			k := clusterNamespace(t, kubeconfig, true)
			var images []string
			for _, name := range s.images {
				images = append(images, refs[name])
			}
			if _, err := apps.Deploy(k.kc(), s.app, 3*time.Minute, images...); err != nil {
				t.Fatal(err)
			}
			k.kubectl(t, "", "scale", "deployment", s.app, "--replicas=2")
			original := k.kubectl(t, "", "get", "deployment", s.app, "-o", "jsonpath={.spec.template.spec}")
			pods := waitAnswer(t, k, s, s.image, 2)
			t.Logf("unlabelled: %d pods answer %q from the image", len(pods), s.image)

			out := k.devhot(t, "enable", "deploy/"+s.app)
			for _, want := range []string{"enabled: the fetcher is injected", "the pods run the image's own code until the first push"} {
				if !strings.Contains(out, want) {
					t.Errorf("enable said nothing like %q", want)
				}
			}
			pods = waitAnswer(t, k, s, s.image, 2)
			for _, p := range pods {
				checkInjected(t, k, s, p.Name)
			}
			t.Logf("enabled: %d pods answer %q from the image, release zero", len(pods), s.image)
			injectedPods := podNames(pods)

			src := t.TempDir()
			if err := apps.Copy(s.code, src); err != nil {
				t.Fatal(err)
			}
			for v := 2; v <= 3; v++ {
				msg := fmt.Sprintf("version %d of %s, pushed", v, s.app)
				if err := os.WriteFile(filepath.Join(src, s.message), []byte(s.write(msg)), 0o644); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				out := k.devhot(t, "push", "deploy/"+s.app, src)
				m := liveLine.FindStringSubmatch(out)
				if m == nil || m[2] != "2" || m[3] != "2" {
					t.Fatalf("push did not report its digest live on 2/2 pods")
				}
				pods = waitAnswer(t, k, s, msg, 2)
				t.Logf("version %d live in both pods %d ms after push started", v, time.Since(start).Milliseconds())
				if got := podNames(pods); !slices.Equal(got, injectedPods) {
					t.Errorf("pods %v after the push, want the same %v: a push must not roll out", got, injectedPods)
				}
			}
			for _, p := range pods {
				if n := restartCounts(t, k, p.Name); n != 0 {
					t.Errorf("pod %s: %d container restarts", p.Name, n)
				}
			}

			out = k.devhot(t, "disable", "deploy/"+s.app)
			if !strings.Contains(out, "disabled: the original Deployment is back") {
				t.Errorf("disable did not report the revert")
			}
			pods = waitAnswer(t, k, s, s.image, 2)
			if got := k.kubectl(t, "", "get", "deployment", s.app, "-o", "jsonpath={.spec.template.spec}"); got != original {
				t.Errorf("after disable the pod template is not the original:\n%s\n%s", original, got)
			}
			t.Logf("disabled: %d pods answer %q from the image again", len(pods), s.image)
		})
	}
}

// waitAnswer waits until n Ready pods of s, and no others, answer msg, and
// returns them.
func waitAnswer(t *testing.T, k *clusterNS, s service, msg string, n int) []apps.Pod {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		pods, err := apps.WaitReady(k.kc(), s.app, time.Until(deadline))
		if err != nil {
			t.Fatal(err)
		}
		last = ""
		if len(pods) != n {
			last = fmt.Sprintf("%d pods", len(pods))
		}
		for _, p := range pods {
			a, err := p.Answer()
			switch {
			case err != nil:
				last = err.Error()
			case a.Message != msg:
				last = fmt.Sprintf("pod %s answers %q", p.Name, a.Message)
			}
		}
		if last == "" {
			return pods
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("waiting for %d pods of %s to answer %q: %s", n, s.app, msg, last)
	return nil
}

// checkInjected checks what the webhook made of a pod of s: the native
// fetcher sidecar told to run release zero from the image's directory,
// the Node container under node --watch, and every other container as the
// manifest wrote it (no command of its own).
func checkInjected(t *testing.T, k *clusterNS, s service, pod string) {
	t.Helper()
	var p corev1.Pod
	if err := json.Unmarshal([]byte(k.kubectl(t, "", "get", "pod", pod, "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	var fetcher *corev1.Container
	for i, c := range p.Spec.InitContainers {
		if c.Name == sidecar.ContainerName {
			fetcher = &p.Spec.InitContainers[i]
		}
	}
	if fetcher == nil || fetcher.RestartPolicy == nil || *fetcher.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Fatalf("pod %s: no native %s sidecar", pod, sidecar.ContainerName)
	}
	for _, c := range p.Spec.Containers {
		argv := strings.Join(append(c.Command, c.Args...), " ")
		if c.Name != s.container {
			if argv != "" {
				t.Errorf("pod %s: container %s, not the app, runs %q", pod, c.Name, argv)
			}
			continue
		}
		if !strings.Contains(argv, "--watch "+sidecar.WorkspaceMountPath+"/"+sidecar.BootFile) {
			t.Errorf("pod %s: container %s runs %q, not under node --watch", pod, c.Name, argv)
		}
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == sidecar.EnvAppDir && e.Value != "" }) {
			t.Errorf("pod %s: container %s has no %s", pod, c.Name, sidecar.EnvAppDir)
		}
		t.Logf("pod %s: %s runs %q", pod, c.Name, argv)
	}
	if a := p.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("pod %s: automountServiceAccountToken %v, want false", pod, a)
	}
}

func podNames(pods []apps.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

// restartCounts sums the restarts of a pod's containers, the fetcher's
// included.
func restartCounts(t *testing.T, k *clusterNS, pod string) int {
	t.Helper()
	var p corev1.Pod
	if err := json.Unmarshal([]byte(k.kubectl(t, "", "get", "pod", pod, "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		n += int(s.RestartCount)
	}
	return n
}
