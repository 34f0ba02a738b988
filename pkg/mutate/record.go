package mutate

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// recordVersion changes when the record's meaning changes.
const recordVersion = 1

// record is the value of the aether.dev/injected annotation: what one pass
// injected and what it replaced, so the next pass can strip it exactly and a
// label removal can restore the original.
type record struct {
	Version int          `json:"v"`
	Mode    sidecar.Mode `json:"mode"`
	// Container is the app container that was rewritten.
	Container string `json:"container"`
	// Workspace is where the app container mounts the shared volume.
	Workspace string `json:"workspace"`
	// InitContainer is the replaced initContainer, at InitIndex.
	InitContainer *corev1.Container `json:"initContainer,omitempty"`
	InitIndex     int               `json:"initIndex,omitempty"`
	// Command and Args are the app container's originals.
	Command []string `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	// ServiceAccountName is the original when the webhook replaced the
	// default service account; nil when it kept the pod's own.
	ServiceAccountName *string `json:"serviceAccountName,omitempty"`
	// DeprecatedServiceAccount is the original of the deprecated alias
	// spec.serviceAccount, which the API server keeps equal to the name.
	DeprecatedServiceAccount string `json:"serviceAccount,omitempty"`
	// AddedVolume is set when WorkspaceVolume was added, AddedMount when it
	// was also mounted into the app container.
	AddedVolume bool `json:"addedVolume,omitempty"`
	AddedMount  bool `json:"addedMount,omitempty"`
	// Automount is set when the webhook turned the pod's
	// automountServiceAccountToken off, and holds its original value.
	Automount *savedBool `json:"automount,omitempty"`
}

// savedBool is an optional bool as it was: Was is nil when it was unset.
type savedBool struct {
	Was *bool `json:"was"`
}

func readRecord(ann map[string]string) (*record, error) {
	v, ok := ann[annotations.Injected]
	if !ok {
		return nil, nil
	}
	r := &record{}
	if err := json.Unmarshal([]byte(v), r); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if r.Version != recordVersion {
		return nil, fmt.Errorf("version %d, want %d", r.Version, recordVersion)
	}
	return r, nil
}

func (r *record) encode() string {
	b, err := json.Marshal(r)
	if err != nil {
		// Every field is a plain value or a corev1 type: this cannot fail.
		panic(err)
	}
	return string(b)
}
