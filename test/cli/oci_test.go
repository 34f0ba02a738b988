package cli

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/test/framework/ociregistry"
)

// pushTo runs `kubectl devhot push hello SRC --to to` with the user's
// docker config in dockerConfig, and no store.
func (s *sample) pushTo(to, dockerConfig string) (string, error) {
	s.t.Helper()
	return s.withLogin(dockerConfig, "push", "deploy/"+deployment, s.src, "--to", to)
}

// withLogin runs kubectl devhot with args and the user's docker config in
// dockerConfig, and no store.
func (s *sample) withLogin(dockerConfig string, args ...string) (string, error) {
	s.t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(pluginBin, append(append([]string{"--kubeconfig", cp.Kubeconfig, "-n", s.ns}, args...), "--timeout", "20s")...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestPushToOCI: push --to oci:// logs in with the user's docker config,
// the pod pulls the artifact by digest with its pull secret, and the new
// code answers; a second push goes live too, the same tree again does
// nothing, and rollback finds the first push's manifest in the registry.
func TestPushToOCI(t *testing.T) {
	reg := ociregistry.Start(t, "dev", "s3cret")
	s := newSample(t, map[string]string{sidecar.EnvPullSecretsDir: reg.PullSecretsDir(t, "regcred", "dev", "s3cret")})
	login := reg.DockerConfigDir(t, "dev", "s3cret")
	to := "oci://" + reg.Host + "/" + s.ns + "/app"
	puts := s.store.puts.Load() // the sample's own version 1
	urls := map[int]string{}
	for _, v := range []int{2, 3} {
		s.writeVersion(v)
		out, err := s.pushTo(to, login)
		t.Logf("push v%d:\n%s", v, out)
		if err != nil {
			t.Fatalf("push v%d: %v", v, err)
		}
		if got, _ := firstAnswer(t, s.pod); got.Version != v {
			t.Fatalf("app answers %+v, want version %d", got, v)
		}
		a := s.deployment().Annotations
		tg, err := annotations.ParseTarget(a[annotations.Digest], a[annotations.ArtifactURL])
		if err != nil || tg.OCI == nil || !strings.HasPrefix(a[annotations.ArtifactURL], to+"@sha256:") {
			t.Errorf("annotations %v (%v), want the artifact by digest under %s", a, err, to)
		}
		if a[annotations.UploadDigest] != "" {
			t.Errorf("push to a registry set %s", annotations.UploadDigest)
		}
		urls[v] = a[annotations.ArtifactURL]
	}
	if n := s.store.puts.Load() - puts; n != 0 {
		t.Errorf("the store got %d uploads; --to must not use it", n)
	}
	out, err := s.pushTo(to, login)
	if err != nil || !strings.Contains(out, "nothing to do") {
		t.Errorf("the same tree again: %v\n%s", err, out)
	}
	out, err = s.withLogin(login, "rollback", "deploy/"+deployment)
	t.Logf("rollback:\n%s", out)
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if got, _ := firstAnswer(t, s.pod); got.Version != 2 {
		t.Errorf("after rollback the app answers %+v, want version 2", got)
	}
	if got := s.deployment().Annotations[annotations.ArtifactURL]; got != urls[2] {
		t.Errorf("after rollback the artifact URL is %s, want the first push's %s", got, urls[2])
	}
}

// TestPushToOCIWithoutLogin: a registry that refuses the push says how to
// log in, and nothing changes on the Deployment.
func TestPushToOCIWithoutLogin(t *testing.T) {
	reg := ociregistry.Start(t, "dev", "s3cret")
	s := newSample(t, nil)
	before := s.deployment().Annotations[annotations.Digest]
	s.writeVersion(2)
	out, err := s.pushTo("oci://"+reg.Host+"/"+s.ns+"/app", t.TempDir())
	t.Logf("push without a login:\n%s", out)
	if err == nil || !strings.Contains(out, "docker login "+reg.Host) || !strings.Contains(out, "401") {
		t.Errorf("push without a login: %v\n%s", err, out)
	}
	if got := s.deployment().Annotations[annotations.Digest]; got != before {
		t.Errorf("digest changed to %s", got)
	}
}
