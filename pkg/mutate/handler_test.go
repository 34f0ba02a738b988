package mutate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	jsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	evanjsonpatch "gopkg.in/evanphx/json-patch.v4"

	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

var testOptions = Options{FetcherImage: "aether-devhot:test", Mode: sidecar.ModeNative, Images: goldenImages()}

// goldenImages are the image fixtures of the golden suite, so that the
// cases that leave their command to the image are injected here too.
func goldenImages() imageconfig.Static {
	s := imageconfig.Static{}
	for _, file := range []string{"../../test/golden/images.yaml", "../../test/golden/corpus/images.yaml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			panic(err)
		}
		f, err := imageconfig.ParseFixture(b)
		if err == nil {
			err = s.Add(f)
		}
		if err != nil {
			panic(fmt.Sprintf("%s: %v", file, err))
		}
	}
	return s
}

// labelled reads a golden input as a Deployment.
func labelled(t testing.TB) *appsv1.Deployment {
	t.Helper()
	b, err := os.ReadFile("../../test/golden/one-init-container.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func review(t testing.TB, op admissionv1.Operation, kind metav1.GroupVersionKind, obj []byte, dryRun bool) []byte {
	t.Helper()
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "4b7b2f8e-0000-4000-8000-000000000001", Kind: kind, Operation: op,
			Resource: metav1.GroupVersionResource{Group: kind.Group, Version: kind.Version, Resource: "deployments"},
			Name:     "web", Namespace: "demo",
			Object: runtime.RawExtension{Raw: obj},
			DryRun: &dryRun,
		},
	}
	b, err := json.Marshal(ar)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func serve(t testing.TB, contentType string, body []byte) (int, admissionv1.AdmissionReview) {
	t.Helper()
	wh := &admission.Webhook{Handler: &Handler{Options: testOptions}}
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

var deploymentGVK = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}

func TestHandler(t *testing.T) {
	dep, _ := json.Marshal(labelled(t))
	pod, _ := json.Marshal(corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}})
	huge := labelled(t)
	huge.Annotations["padding"] = strings.Repeat("x", 1<<20)
	hugeJSON, _ := json.Marshal(huge)
	badDigest := labelled(t)
	badDigest.Annotations["aether.dev/digest"] = "nope"
	badDigestJSON, _ := json.Marshal(badDigest)

	for _, tc := range []struct {
		name        string
		contentType string
		body        []byte
		wantHTTP    int
		wantAllowed bool
		wantPatch   bool
		wantMessage string
	}{
		{name: "bad content type", contentType: "text/plain", body: review(t, admissionv1.Create, deploymentGVK, dep, false),
			wantHTTP: http.StatusOK, wantMessage: "contentType=text/plain, expected application/json"},
		{name: "empty body", contentType: "application/json", body: nil, wantHTTP: http.StatusOK, wantMessage: "the AdmissionReview has no request"},
		{name: "garbage JSON", contentType: "application/json", body: []byte("{not json"), wantHTTP: http.StatusOK, wantMessage: "json parse error"},
		{name: "garbage object", contentType: "application/json", body: review(t, admissionv1.Create, deploymentGVK, []byte(`{"spec":"nope"}`), false),
			wantHTTP: http.StatusOK, wantMessage: "not an apps/v1 Deployment"},
		{name: "pod", contentType: "application/json", body: review(t, admissionv1.Create, metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, pod, false),
			wantHTTP: http.StatusOK, wantAllowed: true},
		{name: "extensions deployment", contentType: "application/json", body: review(t, admissionv1.Create, metav1.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "Deployment"}, dep, false),
			wantHTTP: http.StatusOK, wantAllowed: true},
		{name: "delete", contentType: "application/json", body: review(t, admissionv1.Delete, deploymentGVK, nil, false),
			wantHTTP: http.StatusOK, wantAllowed: true},
		{name: "create", contentType: "application/json", body: review(t, admissionv1.Create, deploymentGVK, dep, false),
			wantHTTP: http.StatusOK, wantAllowed: true, wantPatch: true},
		{name: "dry run", contentType: "application/json", body: review(t, admissionv1.Create, deploymentGVK, dep, true),
			wantHTTP: http.StatusOK, wantAllowed: true, wantPatch: true},
		{name: "1 MiB deployment", contentType: "application/json", body: review(t, admissionv1.Update, deploymentGVK, hugeJSON, false),
			wantHTTP: http.StatusOK, wantAllowed: true, wantPatch: true},
		{name: "malformed digest", contentType: "application/json", body: review(t, admissionv1.Update, deploymentGVK, badDigestJSON, false),
			wantHTTP: http.StatusOK, wantMessage: "metadata.annotations[aether.dev/digest]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := serve(t, tc.contentType, tc.body)
			if code != tc.wantHTTP {
				t.Fatalf("HTTP %d, want %d", code, tc.wantHTTP)
			}
			if out.Response == nil {
				t.Fatal("no AdmissionResponse")
			}
			r := out.Response
			if r.Allowed != tc.wantAllowed {
				t.Errorf("allowed = %v, want %v (%+v)", r.Allowed, tc.wantAllowed, r.Result)
			}
			if got := len(r.Patch) > 0; got != tc.wantPatch {
				t.Errorf("patch present = %v, want %v", got, tc.wantPatch)
			}
			if tc.wantMessage != "" && (r.Result == nil || !strings.Contains(r.Result.Message, tc.wantMessage)) {
				t.Errorf("message = %+v, want it to contain %q", r.Result, tc.wantMessage)
			}
		})
	}
}

// The patch applied to the request's raw object equals the mutated object,
// keeps fields our Go types do not know, and is empty on a second pass.
func TestPatchKeepsUnknownFieldsAndConverges(t *testing.T) {
	d := labelled(t)
	raw := withUnknownFields(t, d)
	patched := admitAndApply(t, raw)

	var m map[string]any
	if err := json.Unmarshal(patched, &m); err != nil {
		t.Fatal(err)
	}
	if m["futureTopLevel"] != "keep" || m["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["futureSpecField"] != "keep" {
		t.Fatalf("unknown fields dropped: %s", patched)
	}
	want, _, _, err := Deployment(d, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	var got appsv1.Deployment
	if err := json.Unmarshal(patched, &got); err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, want), mustJSON(t, &got); a != b {
		t.Fatalf("patched object differs from mutate.Deployment:\n%s\n%s", a, b)
	}
	_, out := serve(t, "application/json", review(t, admissionv1.Update, deploymentGVK, patched, false))
	if len(out.Response.Patch) != 0 {
		t.Errorf("second admission patched again: %s", out.Response.Patch)
	}
}

func withUnknownFields(t testing.TB, d *appsv1.Deployment) []byte {
	t.Helper()
	b, _ := json.Marshal(d)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["futureTopLevel"] = "keep"
	m["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["futureSpecField"] = "keep"
	b, _ = json.Marshal(m)
	return b
}

func admitAndApply(t testing.TB, raw []byte) []byte {
	t.Helper()
	_, out := serve(t, "application/json", review(t, admissionv1.Create, deploymentGVK, raw, false))
	if out.Response == nil || !out.Response.Allowed {
		t.Fatalf("not allowed: %+v", out.Response)
	}
	var ops []jsonpatch.Operation
	if err := json.Unmarshal(out.Response.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	p, err := evanjsonpatch.DecodePatch(out.Response.Patch)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("patch does not apply to the raw object: %v", err)
	}
	return patched
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHandlerMetrics: each review is counted by its result, and a denial
// also by its Reason.
func TestHandlerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := NewMetrics(reg); err != nil || again.Mutations != m.Mutations {
		t.Fatalf("a second NewMetrics does not share the series: %v", err)
	}
	h := &Handler{Options: testOptions, Metrics: m}
	d := labelled(t)
	good, _ := json.Marshal(d)
	d.Annotations["aether.dev/digest"] = "nope"
	bad, _ := json.Marshal(d)
	for _, obj := range [][]byte{good, bad, bad} {
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(review(t, admissionv1.Update, deploymentGVK, obj, false), &ar); err != nil {
			t.Fatal(err)
		}
		h.Handle(context.Background(), admission.Request{AdmissionRequest: *ar.Request})
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			if v := s.GetCounter().GetValue(); v > 0 {
				got[mf.GetName()+"{"+s.GetLabel()[0].GetValue()+"}"] = v
			}
		}
	}
	want := map[string]float64{
		"aether_devhot_mutations_total{injected}":    1,
		"aether_devhot_mutations_total{denied}":      2,
		"aether_devhot_denials_total{BadAnnotation}": 2,
	}
	if !maps.Equal(got, want) {
		t.Errorf("counters %v, want %v", got, want)
	}
}
