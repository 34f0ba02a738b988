package refresh

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

// The reasons of the refresh Events on the Deployment, one per marker,
// shown by kubectl describe.
const (
	EventSucceeded = "RefreshSucceeded"
	EventFailed    = "RefreshFailed"
	EventLive      = "RefreshLive"
	EventInstall   = "RefreshInstalling"
)

// ReportingController is the reporting controller of the fetcher's Events.
// kubectl devhot reads refresh Events from it only.
const ReportingController = "aether.dev/fetcher"

// Actions of the refresh Events, per marker.
const (
	ActionPublish = "Publish"
	ActionLoad    = "Load"
	ActionInstall = "Install"
)

// maxNote keeps an Event's note well under the API's 1 KiB limit; the log
// line has the full text.
const maxNote = 1000

// EventReason is the Event reason of a marker.
func EventReason(m Marker) string {
	switch m {
	case MarkerOK:
		return EventSucceeded
	case MarkerFail:
		return EventFailed
	case MarkerInstall:
		return EventInstall
	}
	return EventLive
}

// NewEvent returns the events.k8s.io Event that reports r: regarding the
// Deployment, related the pod, the reason by its marker, the record itself
// in the annotation annotations.Refresh, and note for humans. pod is also the
// reporting instance.
func NewEvent(r Record, deployment corev1.ObjectReference, pod corev1.ObjectReference, note string, now time.Time) *eventsv1.Event {
	typ, action := corev1.EventTypeNormal, ActionPublish
	switch r.Marker {
	case MarkerFail:
		typ = corev1.EventTypeWarning
	case MarkerLive:
		action = ActionLoad
	case MarkerInstall:
		action = ActionInstall
	}
	if len(note) > maxNote {
		note = note[:maxNote] + "…"
	}
	return &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			// The name tools/events gives an Event: unique per object and time.
			Name:        fmt.Sprintf("%s.%x", deployment.Name, now.UnixNano()),
			Namespace:   deployment.Namespace,
			Annotations: map[string]string{annotations.Refresh: r.String()},
		},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: ReportingController,
		ReportingInstance:   pod.Name,
		Action:              action,
		Reason:              EventReason(r.Marker),
		Regarding:           deployment,
		Related:             &pod,
		Note:                note,
		Type:                typ,
	}
}

// FromEvent reads back what NewEvent made: the record and the pod. ok is
// false for any other Event, including one that claims a refresh reason
// but was not reported by the fetcher or carries no record.
func FromEvent(e *eventsv1.Event) (r Record, pod string, ok bool) {
	if e.ReportingController != ReportingController {
		return Record{}, "", false
	}
	line, has := e.Annotations[annotations.Refresh]
	if !has {
		return Record{}, "", false
	}
	r, ok = Parse(line)
	if !ok || EventReason(r.Marker) != e.Reason {
		return Record{}, "", false
	}
	pod = e.ReportingInstance
	if e.Related != nil && e.Related.Kind == "Pod" {
		pod = e.Related.Name
	}
	return r, pod, true
}

// EventSelector selects the Events of a Deployment that the fetcher
// reported, for listing and watching them.
func EventSelector(deployment string) string {
	return fmt.Sprintf("regarding.kind=Deployment,regarding.name=%s,reportingController=%s", deployment, ReportingController)
}
