// Package ociregistry runs an OCI registry on loopback for tests:
// go-containerregistry's in-process registry (pkg/registry), which speaks
// the distribution API, optionally behind basic auth, and writes the
// docker configs that log in to it, as a user's (docker login) and as a
// pod's pull secret (the webhook's projection).
package ociregistry

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	corev1 "k8s.io/api/core/v1"
)

// Registry is a running registry.
type Registry struct {
	// Host is host:port on 127.0.0.1; go-containerregistry speaks plain
	// http to loopback.
	Host string
	// User and Password are the login, "" when anonymous.
	User, Password string
}

// Start runs a registry until the test ends; with a user, every request
// must log in with user and password (basic auth).
func Start(t testing.TB, user, password string) *Registry {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); user != "" && (!ok || u != user || p != password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="ociregistry"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), User: user, Password: password}
}

// DockerConfig is a docker config.json that logs in to r as user with
// password.
func (r *Registry) DockerConfig(user, password string) []byte {
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{r.Host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	}}})
	return b
}

// DockerConfigDir writes DockerConfig as dir/config.json, a DOCKER_CONFIG
// directory, and returns dir.
func (r *Registry) DockerConfigDir(t testing.TB, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "config.json"), r.DockerConfig(user, password))
	return dir
}

// PullSecretsDir writes DockerConfig as a pull secret named secret, laid
// out as the webhook projects it for the fetcher
// (<dir>/<secret>/.dockerconfigjson), and returns dir.
func (r *Registry) PullSecretsDir(t testing.TB, secret, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, secret, corev1.DockerConfigJsonKey), r.DockerConfig(user, password))
	return dir
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
