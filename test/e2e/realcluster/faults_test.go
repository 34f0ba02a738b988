package realcluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/names"
	"github.com/aether-dev/aether-devhot/test/framework/apps"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// shopAPI is the realistic app these tests run: release zero answers from
// its image, so no artifact is needed.
var shopAPI = services[0]

// tokenProbe runs in the app container: it reads the service-account token
// where client libraries look for it, and asks the API server, with that
// token if there is one, for the container's own Deployment (namespace and
// name in argv), as an npm dependency of the app could. It prints
// {"token":bool,"status":code}. The request without a token is the
// control: what an app could do with no token at all.
const tokenProbe = `const fs = require('node:fs');
const [ns, name] = process.argv.slice(1);
let token = null;
try { token = fs.readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/token', 'utf8'); } catch (e) {}
const headers = token ? { authorization: 'Bearer ' + token } : {};
require('node:https').get({
  host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT,
  path: '/apis/apps/v1/namespaces/' + ns + '/deployments/' + name, headers, rejectUnauthorized: false,
}, res => { res.resume(); console.log(JSON.stringify({ token: token !== null, status: res.statusCode })); })
  .on('error', e => { console.error(e.message); process.exit(1); });`

// tokenAccess is what tokenProbe found: a token, and whether the API
// server let the request through.
type tokenAccess struct {
	Token, Allowed bool
}

// probeToken runs tokenProbe in pod's app container.
func probeToken(t *testing.T, k *clusterNS, pod string) tokenAccess {
	t.Helper()
	out := k.kubectl(t, "", "exec", pod, "-c", shopAPI.container, "--", "node", "-e", tokenProbe, k.ns, shopAPI.app)
	var a struct {
		Token  bool `json:"token"`
		Status int  `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("token probe in %s answered %q: %v", pod, out, err)
	}
	// 401 without a token where anonymous requests are off, 403 for an
	// identity without the right.
	if a.Status != http.StatusOK && a.Status != http.StatusUnauthorized && a.Status != http.StatusForbidden {
		t.Fatalf("token probe in %s: the API server answered %d", pod, a.Status)
	}
	return tokenAccess{Token: a.Token, Allowed: a.Status == http.StatusOK}
}

// TestClusterAppToken is the review's finding on real pods: the app
// container of an injected pod that ran on the namespace's default
// account has no service-account token, so neither the app nor any npm
// dependency can use the fetcher's rights (the API server refuses the
// request it makes without one), while a pod's own account keeps its
// automount behaviour. Each case probes the same Deployment before
// `kubectl devhot enable` and after, from inside the app container.
func TestClusterAppToken(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	ref, err := apps.Push(shopAPI.app)
	if err != nil {
		t.Fatal(err)
	}
	const automountOff = "      automountServiceAccountToken: false\n"
	for _, tc := range []struct {
		name string
		// account is the pods' own service account, "" for the default
		// one; quiet turns its automount off on the ServiceAccount.
		account string
		quiet   bool
		// before and after are what the probe must find.
		before, after tokenAccess
	}{
		// The default account has a token but no rights; once injected
		// the pods run as shop-api-devhot, which has the fetcher's, and
		// the app has no token to use them with.
		{"default account", "", false, tokenAccess{Token: true}, tokenAccess{}},
		// A pod's own account is kept, and bound to the fetcher's Role:
		// the app keeps its token, which now has those rights.
		{"own account", "shop-runtime", false, tokenAccess{Token: true}, tokenAccess{Token: true, Allowed: true}},
		{"own account without automount", "shop-quiet", true, tokenAccess{}, tokenAccess{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := clusterNamespace(t, kubeconfig, true)
			m, err := apps.Manifest(shopAPI.app, ref)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m, automountOff) {
				t.Fatalf("the shop-api manifest has no %q to remove", strings.TrimSpace(automountOff))
			}
			m = strings.Replace(m, automountOff, "", 1)
			if tc.account != "" {
				k.kubectl(t, fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: %s}\nautomountServiceAccountToken: %v\n", tc.account, !tc.quiet), "apply", "-f", "-")
				m = strings.Replace(m, "    spec:\n", "    spec:\n      serviceAccountName: "+tc.account+"\n", 1)
			}
			k.kubectl(t, m, "apply", "-f", "-")
			pods := waitAnswer(t, k, shopAPI, shopAPI.image, 1)
			if got := probeToken(t, k, pods[0].Name); got != tc.before {
				t.Fatalf("unlabelled: the app found %+v, want %+v", got, tc.before)
			}

			k.devhot(t, "enable", "deploy/"+shopAPI.app)
			pods = waitAnswer(t, k, shopAPI, shopAPI.image, 1)
			checkInjected := k.kubectl(t, "", "get", "pod", pods[0].Name, "-o",
				`jsonpath={.spec.serviceAccountName} {.spec.initContainers[?(@.name=="aether-fetcher")].name}`)
			want := tc.account
			if want == "" {
				want = names.ServiceAccount(shopAPI.app)
			}
			if checkInjected != want+" aether-fetcher" {
				t.Fatalf("injected pod %s: %q, want service account %s and the fetcher", pods[0].Name, checkInjected, want)
			}
			got := probeToken(t, k, pods[0].Name)
			if got != tc.after {
				t.Errorf("injected: the app found %+v, want %+v", got, tc.after)
			}
			t.Logf("pod %s runs as %s; its app found %+v", pods[0].Name, want, got)
		})
	}
}

// TestClusterLabelRemovedWhileWebhookDown: with the webhook scaled to 0
// (failurePolicy Ignore), removing the label leaves the fetcher in the
// template and the pods on shop-api-devhot, and no admission will see the
// Deployment again. Once the webhook is back, the manager reverts it to
// the original template, new pods start from it and answer, and only then
// does the fetcher's ServiceAccount go.
func TestClusterLabelRemovedWhileWebhookDown(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	k := clusterNamespace(t, kubeconfig, true)
	ref, err := apps.Push(shopAPI.app)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apps.Deploy(k.kc(), shopAPI.app, 3*time.Minute, ref); err != nil {
		t.Fatal(err)
	}
	template := func() string {
		return k.kubectl(t, "", "get", "deployment", shopAPI.app, "-o", "jsonpath={.spec.template.spec}")
	}
	original := template()
	k.devhot(t, "enable", "deploy/"+shopAPI.app)
	injected := podNames(waitAnswer(t, k, shopAPI, shopAPI.image, 1))

	startWebhook := stopWebhook(t, kubeconfig)
	k.kubectl(t, "", "label", "deployment", shopAPI.app, annotations.DevHot+"-")
	sa := names.ServiceAccount(shopAPI.app)
	if got := k.kubectl(t, "", "get", "deployment", shopAPI.app, "-o", "jsonpath={.spec.template.spec.serviceAccountName}"); got != sa {
		t.Fatalf("unlabelled with the webhook down, the template runs as %q, want %s still: the test proves nothing", got, sa)
	}

	back := time.Now()
	startWebhook()
	wait.For(t, "the original template back", 3*time.Minute, func() error {
		// Until the revert, new pods need the fetcher's account. It is
		// looked at before the template: the revert, and the account's
		// removal right after it, may both land between the two reads.
		saGone := k.kubectl(t, "", "get", "serviceaccount", sa, "--ignore-not-found", "-o", "name") == ""
		got := template()
		if got == original {
			return nil
		}
		if saGone {
			t.Fatalf("ServiceAccount %s deleted while the pod template is still injected: new pods would be refused", sa)
		}
		return fmt.Errorf("template still %s", got)
	})
	t.Logf("reverted %d ms after the webhook was scaled back", time.Since(back).Milliseconds())
	pods := waitAnswer(t, k, shopAPI, shopAPI.image, 1)
	if got := podNames(pods); strings.Join(got, ",") == strings.Join(injected, ",") {
		t.Errorf("pods %v are the injected ones: the revert rolled nothing out", got)
	}
	wait.For(t, "the fetcher's ServiceAccount removed after the revert", 60*time.Second, func() error {
		if out := k.kubectl(t, "", "get", "serviceaccount", sa, "--ignore-not-found", "-o", "name"); out != "" {
			return fmt.Errorf("%s still there", out)
		}
		return nil
	})
	if ev := k.kubectl(t, "", "get", "events", "--field-selector", "reason=Reverted", "-o", "jsonpath={.items[*].message}"); !strings.Contains(ev, "removed while the webhook was unreachable") {
		t.Errorf("no Reverted event: %q", ev)
	}
}
