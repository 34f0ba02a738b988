package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
)

// secretTTL is how long the pull secrets read are used before they are read
// again, so that a rotated secret takes effect without a restart.
const secretTTL = time.Minute

// PullSecrets is a keychain over image pull secrets of the webhook's own
// namespace, as Kyverno's --imagePullSecrets: the manager needs read access
// to those secrets only, never to Secrets of users' namespaces.
type PullSecrets struct {
	// Names are the secrets, of type kubernetes.io/dockerconfigjson or
	// kubernetes.io/dockercfg.
	Names []string
	// Get reads one secret.
	Get func(ctx context.Context, name string) (*corev1.Secret, error)

	mu     sync.Mutex
	auths  []registryAuth
	errs   []string
	readAt time.Time
}

// registryAuth is one registry's credentials of a docker config.
type registryAuth struct {
	host string // as matched: "registry.example.com:5000", "*.gcr.io"
	cfg  authn.AuthConfig
}

var (
	_ authn.Keychain        = (*PullSecrets)(nil)
	_ authn.ContextKeychain = (*PullSecrets)(nil)
)

// Resolve implements authn.Keychain.
func (p *PullSecrets) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return p.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain: the credentials of the
// first secret that names the resource's registry, else anonymous. A
// secret that cannot be read is skipped, so that one broken secret does
// not stop lookups that need none.
func (p *PullSecrets) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	host := normalizeHost(r.RegistryStr())
	for _, a := range p.read(ctx) {
		if a.host == host || strings.HasPrefix(a.host, "*.") && strings.HasSuffix(host, a.host[1:]) {
			return authn.FromConfig(a.cfg), nil
		}
	}
	return authn.Anonymous, nil
}

// Problems says which secrets could not be used at the last read, for logs.
func (p *PullSecrets) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

func (p *PullSecrets) read(ctx context.Context) []registryAuth {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.readAt.IsZero() && time.Since(p.readAt) < secretTTL {
		return p.auths
	}
	p.auths, p.errs = nil, nil
	for _, name := range p.Names {
		s, err := p.Get(ctx, name)
		if err == nil {
			var auths []registryAuth
			auths, err = parseDockerConfig(s)
			p.auths = append(p.auths, auths...)
		}
		if err != nil {
			p.errs = append(p.errs, fmt.Sprintf("pull secret %s: %v", name, err))
		}
	}
	p.readAt = time.Now()
	return p.auths
}

// parseDockerConfig reads the registries of a docker config secret.
func parseDockerConfig(s *corev1.Secret) ([]registryAuth, error) {
	var auths map[string]authn.AuthConfig
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths map[string]authn.AuthConfig `json:"auths"`
		}
		if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", corev1.DockerConfigJsonKey, err)
		}
		auths = cfg.Auths
	case corev1.SecretTypeDockercfg:
		if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &auths); err != nil {
			return nil, fmt.Errorf("%s: %w", corev1.DockerConfigKey, err)
		}
	default:
		return nil, fmt.Errorf("type %s is not %s or %s", s.Type, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg)
	}
	out := make([]registryAuth, 0, len(auths))
	for host, cfg := range auths {
		out = append(out, registryAuth{host: normalizeHost(host), cfg: cfg})
	}
	return out, nil
}

// normalizeHost reduces a docker config key ("https://index.docker.io/v1/",
// "registry.example.com:5000/v2") or a registry name to its host, with
// Docker Hub's aliases as one.
func normalizeHost(h string) string {
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return "index.docker.io"
	}
	return h
}
