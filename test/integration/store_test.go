package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	dg "github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/names"
	"github.com/aether-dev/aether-devhot/pkg/store"
	"github.com/aether-dev/aether-devhot/test/framework/storeserver"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// blob is a gzip header and filler, n bytes: the store checks the header
// only, so it stands for an archive of that size.
func blob(tag byte, n int) []byte {
	b := append([]byte{0x1f, 0x8b, 8, 0, tag, 0, 0, 0, 0, 0xff}, bytes.Repeat([]byte{tag}, n)...)
	return b[:n]
}

// TestStoreAccessOnTheAPIServer runs the store with its access control
// against the real API server, for two namespaces that each run the
// sample, with the ServiceAccounts and Roles that the webhook and its
// reconciler made for them: a fetcher's store token reads its own
// Deployment's blobs and no other namespace's; no token, an API server
// token or a forged one reads nothing; an upload is taken only while the
// Deployment asks for its digest; and the digest a live Deployment asks
// for survives the namespace's quota, until its label goes.
func TestStoreAccessOnTheAPIServer(t *testing.T) {
	const dep = "hello"
	sa := names.ServiceAccount(dep)
	nsA := namespace(t, nil)
	nsB := nsA + "-b"
	if _, _, err := cp.Run("", "create", "namespace", nsB); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{nsA, nsB} {
		kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
		waitRBAC(t, ns, dep, sa)
	}
	lim := store.Limits{MaxBlobBytes: 4096, MaxTotalBytes: 16384, NamespaceQuotaBytes: 8192, MaxUploads: 4, MaxNamespaceUploads: 2}
	srv, err := storeserver.Start(cp.Config, t.TempDir(), storeserver.Options{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	token := func(ns string) string {
		t.Helper()
		var tok string
		wait.For(t, "a store token for "+ns+"/"+sa, 10*time.Second, func() (err error) {
			tok, err = srv.Token(cp.Clientset, ns, sa)
			return err
		})
		return tok
	}
	tokA, tokB := token(nsA), token(nsB)
	apiTokenA := ""
	wait.For(t, "an API server token", 10*time.Second, func() error {
		tr, err := cp.Clientset.CoreV1().ServiceAccounts(nsA).CreateToken(context.Background(), sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err == nil {
			apiTokenA = tr.Status.Token
		}
		return err
	})
	request := func(method string, ref store.BlobRef, body []byte, tok string) (int, string) {
		t.Helper()
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, srv.URL+ref.Path(), r)
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	annotate := func(ns string, kv ...string) {
		t.Helper()
		kubectl(t, "", append([]string{"-n", ns, "annotate", "--overwrite", "deployment", dep}, kv...)...)
	}
	ref := func(ns string, b []byte) store.BlobRef {
		return store.BlobRef{Namespace: ns, Deployment: dep, Hex: strings.TrimPrefix(dg.Of(b), dg.Prefix)}
	}

	x := blob('x', 3000)
	xA := ref(nsA, x)
	if code, body := request("PUT", xA, x, ""); code != 403 || !strings.Contains(body, annotations.UploadDigest) {
		t.Fatalf("PUT before the Deployment asks for it: %d %q, want 403 naming %s", code, body, annotations.UploadDigest)
	}
	annotate(nsA, annotations.UploadDigest+"="+dg.Of(x))
	if code, body := request("PUT", xA, x, ""); code != 201 {
		t.Fatalf("PUT of the announced digest: %d %q", code, body)
	}
	for _, c := range []struct {
		name  string
		ref   store.BlobRef
		token string
		want  int
		body  string
	}{
		{"A's fetcher", xA, tokA, 200, string(x)},
		{"B's fetcher", xA, tokB, 403, "system:serviceaccount:" + nsB + ":" + sa + " may not get deployment " + nsA + "/" + dep},
		{"B's fetcher, in its own namespace", ref(nsB, x), tokB, 404, "no blob"},
		{"no token", xA, "", 401, "needs a bearer token"},
		{"A's API server token", xA, apiTokenA, 401, "does not accept this token"},
		{"a forged token", xA, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", 401, "does not accept this token"},
	} {
		if code, body := request("GET", c.ref, nil, c.token); code != c.want || !strings.Contains(body, c.body) {
			t.Errorf("GET by %s: %d %.200q, want %d with %.200q", c.name, code, body, c.want, c.body)
		}
	}
	if code, _ := request("PUT", ref(nsB, x), x, tokB); code != 403 {
		t.Errorf("PUT of A's digest into B, with B's token: %d, want 403", code)
	}

	// x goes live; y and z are pushed after it, each announced in turn.
	// The quota holds two of these blobs: z evicts y, never the live x.
	annotate(nsA, annotations.Digest+"="+dg.Of(x), annotations.ArtifactURL+"="+srv.URL+xA.Path(), annotations.UploadDigest+"-")
	y, z := blob('y', 3000), blob('z', 3000)
	for _, b := range [][]byte{y, z} {
		annotate(nsA, annotations.UploadDigest+"="+dg.Of(b))
		if code, body := request("PUT", ref(nsA, b), b, ""); code != 201 {
			t.Fatalf("PUT %s: %d %q", ref(nsA, b), code, body)
		}
	}
	has := func() string {
		var kept []string
		for name, b := range map[string][]byte{"x": x, "y": y, "z": z} {
			if srv.Store.Has(nsA, ref(nsA, b).Hex) {
				kept = append(kept, name)
			}
		}
		slices.Sort(kept)
		return strings.Join(kept, ",")
	}
	if got := has(); got != "x,z" {
		t.Errorf("after z the store keeps %s, want x,z", got)
	}

	// x is current and z announced: both in use. Another Deployment of A
	// asks for w; the quota has no room for it, so it is refused and
	// nothing is evicted.
	w := blob('w', 3000)
	kubectl(t, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: other
  labels: {%s: "true"}
  annotations: {%s: "%s"}
spec:
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: other}}
    spec: {containers: [{name: app, image: node:20, command: [node, server.js]}]}
`, annotations.DevHot, annotations.UploadDigest, dg.Of(w)), "-n", nsA, "apply", "-f", "-")
	wOther := store.BlobRef{Namespace: nsA, Deployment: "other", Hex: ref(nsA, w).Hex}
	if code, body := request("PUT", wOther, w, ""); code != 507 || !strings.Contains(body, "namespace "+nsA+" holds 6000 bytes that its Deployments still ask for") {
		t.Errorf("PUT over the quota with every blob in use: %d %q, want 507", code, body)
	}
	if got := has(); got != "x,z" {
		t.Errorf("after the refused upload the store keeps %s, want x,z", got)
	}

	// hello's label goes: x and z are no longer asked for, and w evicts x,
	// the least recently used.
	kubectl(t, "", "-n", nsA, "label", "deployment", dep, annotations.DevHot+"-")
	wait.Until(t, "hello's digests unpinned with its label", 10*time.Second, func() bool {
		return !srv.Access.Pinned(nsA, xA.Hex) && !srv.Access.Pinned(nsA, ref(nsA, z).Hex)
	})
	if code, body := request("PUT", wOther, w, ""); code != 201 {
		t.Errorf("PUT with room made by unpinned blobs: %d %q", code, body)
	}
	if got := has(); got != "z" {
		t.Errorf("after w the store keeps %s of x,y,z, want z", got)
	}
	if code, _ := request("PUT", ref(nsA, y), y, ""); code != 403 {
		t.Errorf("PUT for the unlabelled Deployment: %d, want 403", code)
	}
}
