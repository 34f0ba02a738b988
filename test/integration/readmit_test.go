package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/framework/wait"
)

// With failurePolicy Ignore, a labelled Deployment admitted while the
// webhook is down has no fetcher; once the webhook is back the readmit
// reconciler gets it injected within 10 s.
func TestDeploymentAdmittedWhileWebhookDownIsInjectedLater(t *testing.T) {
	setFailurePolicy(t, "Ignore")
	t.Cleanup(func() { setFailurePolicy(t, "Fail") })

	stopWebhook()
	stopWebhook = nil
	ns := namespace(t, nil)
	kubectl(t, sample(t), "-n", ns, "apply", "-f", "-")
	d := getDeployment(t, ns, "hello")
	if _, ok := d.Annotations[annotations.Injected]; ok {
		t.Fatal("injected although the webhook was stopped: the test proves nothing")
	}

	var err error
	if stopWebhook, err = cp.StartWebhook(cp.WebhookOptions()); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	wait.For(t, "injection after the webhook came back", 10*time.Second, func() error {
		if _, ok := getDeployment(t, ns, "hello").Annotations[annotations.Injected]; !ok {
			return fmt.Errorf("not injected yet")
		}
		return nil
	})
	t.Logf("injected %s after the webhook restarted", time.Since(started).Round(time.Millisecond))
	wait.For(t, "NotInjected warning", 5*time.Second, func() error {
		out, _ := kubectl(t, "", "-n", ns, "get", "events", "-o", "json")
		if !strings.Contains(out, "NotInjected") {
			return fmt.Errorf("no NotInjected event")
		}
		return nil
	})
}

func setFailurePolicy(t *testing.T, policy string) {
	t.Helper()
	kubectl(t, "", "patch", "mutatingwebhookconfiguration", "aether-devhot", "--type=json",
		"-p", fmt.Sprintf(`[{"op":"replace","path":"/webhooks/0/failurePolicy","value":%q}]`, policy))
}
