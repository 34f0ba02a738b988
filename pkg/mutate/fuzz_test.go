package mutate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

// FuzzMutate feeds random Deployments (JSON) through the handler and
// Deployment twice. It checks: no panic; a second pass changes nothing;
// the patch applies to the raw object and keeps fields our types do not
// know; and reverting restores the input.
func FuzzMutate(f *testing.F) {
	ins, _ := filepath.Glob("../../test/golden/*.in.yaml")
	corpus, _ := filepath.Glob("../../test/golden/corpus/*.in.yaml")
	for _, in := range append(ins, corpus...) {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d appsv1.Deployment
		if json.Unmarshal(data, &d) != nil {
			return
		}
		if d.Labels == nil {
			d.Labels = map[string]string{}
		}
		d.Labels[annotations.DevHot] = annotations.DevHotEnabled
		delete(d.Annotations, annotations.Injected)

		out, outcome, _, err := Deployment(&d, testOptions)
		if err != nil {
			if _, ok := err.(*Denial); !ok {
				t.Fatalf("error is not a *Denial: %v", err)
			}
			return
		}
		if outcome != Injected {
			t.Fatalf("outcome %q for a labelled Deployment", outcome)
		}
		again, _, _, err := Deployment(out, testOptions)
		if err != nil {
			t.Fatalf("second pass denied: %v", err)
		}
		first, second := mustJSON(t, out), mustJSON(t, again)
		if first != second {
			t.Fatalf("not idempotent:\n%s\n%s", first, second)
		}

		assertPatchEqualsFullDiff(t, &d, out)
		patched := admitAndApply(t, withUnknownFields(t, &d))
		var m map[string]any
		if err := json.Unmarshal(patched, &m); err != nil || m["futureTopLevel"] != "keep" {
			t.Fatalf("unknown field dropped: %s", patched)
		}
		var viaPatch appsv1.Deployment
		if err := json.Unmarshal(patched, &viaPatch); err != nil {
			t.Fatal(err)
		}
		if got := mustJSON(t, &viaPatch); got != first {
			t.Fatalf("patch result differs from Deployment:\n%s\n%s", got, first)
		}

		off := out.DeepCopy()
		delete(off.Labels, annotations.DevHot)
		reverted, outcome, _, err := Deployment(off, testOptions)
		if err != nil || outcome != Reverted {
			t.Fatalf("revert: %q, %v", outcome, err)
		}
		orig := d.DeepCopy()
		delete(orig.Labels, annotations.DevHot)
		// Empty and absent collections encode alike only after a round trip.
		if a, b := roundTrip(t, orig), roundTrip(t, reverted); !bytes.Equal(a, b) {
			t.Fatalf("revert differs from the original:\n%s\n%s", a, b)
		}
	})
}

func roundTrip(t *testing.T, d *appsv1.Deployment) []byte {
	t.Helper()
	b := []byte(mustJSON(t, d))
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(pruneEmpty(m))
	return out
}

// pruneEmpty drops empty maps, slices and strings so that nil and empty
// collections compare equal.
func pruneEmpty(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			e = pruneEmpty(e)
			if isEmpty(e) {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
		return x
	case []any:
		for i := range x {
			x[i] = pruneEmpty(x[i])
		}
		return x
	}
	return v
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case string:
		return x == ""
	case nil:
		return true
	}
	return false
}
