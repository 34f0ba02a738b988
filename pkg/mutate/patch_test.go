package mutate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	evanjsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

// TestPatchEqualsFullDiff proves on every golden case, injected, re-injected
// and reverted, that Patch gives the same object as the simple way:
// admission.PatchResponseFromRaw over the whole object.
func TestPatchEqualsFullDiff(t *testing.T) {
	ins, _ := filepath.Glob("../../test/golden/*.in.yaml")
	corpus, _ := filepath.Glob("../../test/golden/corpus/*.in.yaml")
	ins = append(ins, corpus...)
	if len(ins) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, in := range ins {
		t.Run(filepath.Base(in), func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var d appsv1.Deployment
			if err := yaml.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			out, _, _, err := Deployment(&d, testOptions)
			if err != nil {
				return // denied: no patch
			}
			assertPatchEqualsFullDiff(t, &d, out)
			again, _, _, _ := Deployment(out, testOptions)
			assertPatchEqualsFullDiff(t, out, again)
			off := out.DeepCopy()
			delete(off.Labels, annotations.DevHot)
			reverted, _, _, _ := Deployment(off, testOptions)
			assertPatchEqualsFullDiff(t, off, reverted)
		})
	}
}

func assertPatchEqualsFullDiff(t testing.TB, in, out *appsv1.Deployment) {
	t.Helper()
	raw := withUnknownFields(t, in)
	before, _ := json.Marshal(in)
	after, _ := json.Marshal(out)
	slow := admission.PatchResponseFromRaw(before, after)
	fast, err := Patch(in, out)
	if err != nil {
		t.Fatal(err)
	}
	if (len(fast) == 0) != (len(slow.Patches) == 0) {
		t.Fatalf("fast patch has %d operations, full diff %d", len(fast), len(slow.Patches))
	}
	viaSlow := applyOps(t, raw, slow.Patches)
	viaFast := applyOps(t, raw, fast)
	if viaSlow != viaFast {
		t.Fatalf("fast patch differs from the full diff:\nfull: %s\nfast: %s", viaSlow, viaFast)
	}
}

// applyOps applies ops to raw and returns the result in canonical form.
func applyOps(t testing.TB, raw []byte, ops any) string {
	t.Helper()
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	p, err := evanjsonpatch.DecodePatch(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("patch does not apply: %v\n%s", err, b)
	}
	var m any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	canon, _ := json.Marshal(m)
	return string(canon)
}
