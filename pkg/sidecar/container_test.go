package sidecar

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestStoreToken: with a store URL the fetcher is told it and its token
// volume holds a second token bound to it; without one, neither.
func TestStoreToken(t *testing.T) {
	const url = "http://aether-devhot-store.aether-system.svc"
	for _, tc := range []struct {
		storeURL string
		wantEnv  bool
	}{{url, true}, {"", false}} {
		c := Container(Options{Image: "img", Deployment: "web", WorkspaceVolume: "ws", StoreURL: tc.storeURL})
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == EnvStoreURL })
		if (i >= 0) != tc.wantEnv || tc.wantEnv && c.Env[i].Value != url {
			t.Errorf("store URL %q: env %v", tc.storeURL, c.Env)
		}
		var store []*corev1.ServiceAccountTokenProjection
		for _, s := range TokenVolumeSource(tc.storeURL, nil).Projected.Sources {
			if p := s.ServiceAccountToken; p != nil && p.Path == StoreTokenPath {
				store = append(store, p)
			}
			if p := s.ServiceAccountToken; p != nil && p.Path == "token" && p.Audience != "" {
				t.Errorf("the API token got audience %q", p.Audience)
			}
		}
		switch {
		case !tc.wantEnv && len(store) != 0:
			t.Errorf("no store URL, but a store token %+v", store[0])
		case tc.wantEnv && (len(store) != 1 || store[0].Audience != url || *store[0].ExpirationSeconds != TokenExpirationSeconds):
			t.Errorf("store token projections %+v, want one with audience %s", store, url)
		}
	}
	if StoreTokenFile != "/var/run/secrets/kubernetes.io/serviceaccount/store-token" {
		t.Errorf("StoreTokenFile = %s: the fetcher's default must be where the volume puts it", StoreTokenFile)
	}
}

// TestPullSecrets: each named pull secret is projected once, optional,
// at PullSecretsPath/<name>/.dockerconfigjson.
func TestPullSecrets(t *testing.T) {
	var got []string
	for _, s := range TokenVolumeSource("", []corev1.LocalObjectReference{{Name: "a"}, {Name: ""}, {Name: "b"}, {Name: "a"}}).Projected.Sources {
		if p := s.Secret; p != nil {
			if p.Optional == nil || !*p.Optional || len(p.Items) != 1 || p.Items[0].Key != corev1.DockerConfigJsonKey {
				t.Errorf("projection %+v", p)
			}
			got = append(got, p.Name+"="+p.Items[0].Path)
		}
	}
	want := []string{"a=pull-secrets/a/.dockerconfigjson", "b=pull-secrets/b/.dockerconfigjson"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("projected %v, want %v", got, want)
	}
	if PullSecretsDir != TokenMountPath+"/pull-secrets" {
		t.Errorf("PullSecretsDir %s", PullSecretsDir)
	}
}
