package apps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// refsFor are fake references for the images of app name's deployment.yaml.
func refsFor(name string) []string {
	refs := []string{"10.201.0.2:5000/" + name + ":sha-0123456789abcdef"}
	if name == "sidecar-first" {
		refs = append(refs, "10.201.0.2:5000/shop-api:sha-fedcba9876543210")
	}
	return refs
}

// TestManifests renders each app's deployment.yaml and checks what the
// apps promise: chart-shaped labels, a named http port with httpGet
// probes, resources, a securityContext Pod Security "restricted" admits,
// no command, no aether.dev/ key, and images of the registry only.
func TestManifests(t *testing.T) {
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			for _, f := range []string{"Dockerfile", ".dockerignore", "package.json", "package-lock.json", "deployment.yaml"} {
				if name == "sidecar-first" && strings.HasPrefix(f, "package") {
					continue
				}
				if _, err := os.Stat(filepath.Join(Dir(name), f)); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			m, err := Manifest(name, refsFor(name)...)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(m, "aether.dev/") {
				t.Errorf("deployment.yaml has an aether.dev/ key")
			}
			docs := strings.Split(m, "\n---\n")
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict([]byte(docs[0]), &d); err != nil {
				t.Fatal(err)
			}
			var svc corev1.Service
			if len(docs) != 2 || yaml.UnmarshalStrict([]byte(docs[1]), &svc) != nil || svc.Kind != "Service" {
				t.Errorf("want a Deployment and a Service")
			}
			pod := d.Spec.Template.Spec
			if d.Name != name || d.Labels["app.kubernetes.io/name"] != name || d.Labels["app.kubernetes.io/instance"] != name ||
				d.Spec.Template.Labels["app.kubernetes.io/instance"] != name {
				t.Errorf("labels %v / %v, want app.kubernetes.io/name and instance %s", d.Labels, d.Spec.Template.Labels, name)
			}
			psc := pod.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
				psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod securityContext %+v, want runAsNonRoot, a numeric non-root runAsUser, seccomp RuntimeDefault", psc)
			}
			http := false
			for i, c := range pod.Containers {
				if len(c.Command) > 0 || len(c.Args) > 0 {
					t.Errorf("container %s has a command or args", c.Name)
				}
				if c.Image != refsFor(name)[i] {
					t.Errorf("container %s image %s, want %s", c.Name, c.Image, refsFor(name)[i])
				}
				sc := c.SecurityContext
				if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
					sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
					t.Errorf("container %s securityContext %+v, want allowPrivilegeEscalation false, drop ALL", c.Name, sc)
				}
				if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil {
					t.Errorf("container %s: want readiness and liveness httpGet probes", c.Name)
				}
				if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
					t.Errorf("container %s: want memory requests and limits", c.Name)
				}
				for _, p := range c.Ports {
					http = http || p.Name == "http"
				}
			}
			if !http {
				t.Errorf("no container port named http")
			}
		})
	}
}

func TestManifestErrors(t *testing.T) {
	if _, err := Manifest("sidecar-first", refsFor("sidecar-first")[0]); err == nil || !strings.Contains(err.Error(), "shop-api:__TAG__ has no ref") {
		t.Errorf("a placeholder left: %v", err)
	}
	if _, err := Manifest("shop-api", "10.201.0.2:5000/other:sha-1"); err == nil || !strings.Contains(err.Error(), "no image 10.201.0.2:5000/other:__TAG__") {
		t.Errorf("a ref that matches nothing: %v", err)
	}
	if _, err := Manifest("shop-api", "no-tag"); err == nil {
		t.Errorf("a ref without a tag: no error")
	}
}
