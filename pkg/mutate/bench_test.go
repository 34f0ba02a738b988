package mutate

import (
	"context"
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// BenchmarkMutate is the pure function alone.
func BenchmarkMutate(b *testing.B) {
	d := labelled(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := Deployment(d, testOptions); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandle is one Deployment review in-process: decode, mutate,
// encode, diff; the figure DESIGN.md's admission goal is about.
func BenchmarkHandle(b *testing.B) {
	raw, _ := json.Marshal(labelled(b))
	h := &Handler{Options: testOptions}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Kind: deploymentGVK, Operation: admissionv1.Create,
	}}
	req.Object.Raw = raw
	b.ReportAllocs()
	for b.Loop() {
		if r := h.Handle(context.Background(), req); !r.Allowed || len(r.Patches) == 0 {
			b.Fatalf("unexpected response %+v", r.Result)
		}
	}
}
