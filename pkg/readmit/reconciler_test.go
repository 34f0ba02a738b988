package readmit

import (
	"encoding/json"
	"testing"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

func TestDecide(t *testing.T) {
	now := metav1.Now()
	labelled := map[string]string{annotations.DevHot: annotations.DevHotEnabled}
	injected := map[string]string{annotations.Injected: "{}"}
	excluded := []string{"kube-system", "aether-system"}
	for _, tc := range []struct {
		name        string
		namespace   string
		labels      map[string]string
		annotations map[string]string
		deleting    bool
		want        Action
	}{
		{"plain", "app", nil, nil, false, None},
		{"injected and labelled", "app", labelled, injected, false, None},
		{"labelled, missed admission", "app", labelled, nil, false, Readmit},
		{"labelled false", "app", map[string]string{annotations.DevHot: "false"}, nil, false, None},
		{"labelled in kube-system", "kube-system", labelled, nil, false, Excluded},
		{"labelled in the release namespace", "aether-system", labelled, nil, false, Excluded},
		{"unlabelled while the webhook was down", "app", nil, injected, false, Revert},
		{"unlabelled in an excluded namespace", "kube-system", nil, injected, false, Revert},
		{"label set to false while down", "app", map[string]string{annotations.DevHot: "false"}, injected, false, Revert},
		{"being deleted", "app", labelled, nil, true, None},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: tc.namespace, Name: "web", Labels: tc.labels, Annotations: tc.annotations}}
			if tc.deleting {
				d.DeletionTimestamp = &now
			}
			if got := Decide(d, excluded); got != tc.want {
				t.Errorf("Decide = %s, want %s", got, tc.want)
			}
		})
	}
}

// The revert patch tests the resourceVersion before anything else, so a
// Deployment changed since it was read is left for the next pass.
func TestRevertPatchTestsResourceVersionFirst(t *testing.T) {
	b, err := revertPatch("42", []jsonpatch.Operation{jsonpatch.NewOperation("remove", "/metadata/annotations/aether.dev~1injected", nil)})
	if err != nil {
		t.Fatal(err)
	}
	var ops []map[string]any
	if err := json.Unmarshal(b, &ops); err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[0]["op"] != "test" || ops[0]["path"] != "/metadata/resourceVersion" || ops[0]["value"] != "42" {
		t.Errorf("patch = %s, want a test of resourceVersion 42 first", b)
	}
}
