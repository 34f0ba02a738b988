package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	k8schain "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/oci"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// WithPullSecrets authenticates the pulls of OCI artifacts with the
// docker config files dir/<secret>/.dockerconfigjson, the pod's
// imagePullSecrets as the webhook projects them (sidecar.PullSecretsDir),
// matched to registries as the kubelet matches them. They are read for
// each Apply, because the kubelet updates a projected Secret in place. A
// missing dir means no pull secrets: the pulls are anonymous.
func WithPullSecrets(dir string) ApplyOption {
	return func(o *applyOptions) { o.pullSecrets = dir }
}

// openOCI resolves t.OCI, checks that its manifest is the release t names
// (oci.CheckManifest) and returns the body of its layer, which download
// verifies and extracts as it does any other.
func openOCI(ctx context.Context, client *http.Client, t annotations.Target, lim Limits, o applyOptions) (io.ReadCloser, error) {
	where := t.String()
	repo := t.OCI.Context()
	kc, err := pullSecretKeychain(ctx, o.pullSecrets)
	if err != nil {
		return nil, newError(refresh.ReasonDownload, fmt.Errorf("%s: pull secrets: %w", where, err))
	}
	auth, err := authn.Resolve(ctx, kc, repo)
	if err != nil {
		return nil, newError(refresh.ReasonDownload, fmt.Errorf("%s: pull secrets: %w", where, err))
	}
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, base, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, registryError(ctx, where, err)
	}
	reg := &http.Client{Transport: rt, CheckRedirect: blobRedirect}
	v2 := fmt.Sprintf("%s://%s/v2/%s/", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr())

	body, err := get(ctx, reg, v2+"manifests/"+t.OCI.DigestStr(), where, string(oci.ManifestMediaType), oci.MaxManifestBytes)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(body, oci.MaxManifestBytes+1))
	body.Close()
	switch {
	case err != nil:
		return nil, downloadError(ctx, where, err)
	case len(raw) > oci.MaxManifestBytes:
		return nil, newError(refresh.ReasonSizeLimit, fmt.Errorf("GET %s: the manifest is over the limit of %d bytes", where, oci.MaxManifestBytes))
	}
	if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != t.OCI.DigestStr() {
		return nil, newError(refresh.ReasonChecksum, fmt.Errorf("GET %s: the manifest's sha256 is %s", where, hex.EncodeToString(sum[:])))
	}
	layer, err := oci.CheckManifest(raw, t.Digest)
	if err != nil {
		return nil, &Error{Reason: refresh.ReasonOCIArtifact, Err: fmt.Errorf("%s: %w", where, err), Final: true}
	}
	if layer.Size > lim.MaxBytes {
		return nil, newError(refresh.ReasonSizeLimit, fmt.Errorf("%s: the layer's %d bytes are over the limit of %d bytes", where, layer.Size, lim.MaxBytes))
	}
	return get(ctx, reg, v2+"blobs/"+layer.Digest.String(), where, "", lim.MaxBytes)
}

// registryError reports a failure to reach or log in to the registry: a
// refusal with its status, anything else as a download error.
func registryError(ctx context.Context, where string, err error) *Error {
	if te, ok := errors.AsType[*transport.Error](err); ok && te.StatusCode != 0 {
		return newError(refresh.ReasonHTTPStatus, fmt.Errorf("%s: %w", where, err))
	}
	return downloadError(ctx, where, err)
}

// blobRedirect lets a registry send a blob GET to another host, as most
// do (to their object storage): the content is checked against its digest
// wherever it comes from, and the registry's token goes to its own host
// only (transport's bearer). Leaving https for http is refused all the
// same, and so is a loop.
func blobRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errors.New("too many redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect from https to %s refused", req.URL.Scheme)
	}
	return nil
}

// pullSecretKeychain reads the docker configs under dir (WithPullSecrets).
func pullSecretKeychain(ctx context.Context, dir string) (authn.Keychain, error) {
	if dir == "" {
		return authn.NewMultiKeychain(), nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*", corev1.DockerConfigJsonKey))
	if err != nil {
		return nil, err
	}
	var secrets []corev1.Secret
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: b}})
	}
	return k8schain.NewFromPullSecrets(ctx, secrets)
}
