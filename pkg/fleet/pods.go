package fleet

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// fetcherContainer is the container whose log is ingested.
const fetcherContainer = sidecar.ContainerName

// activePods drops terminal pods on the server: their containers no longer
// run. Phase is the only narrowing the API offers here — the pods carry the
// webhook's annotation, not the Deployment's label, and annotations cannot
// be selected on — and Pending must stay in: a native-sidecar fetcher logs
// its first refresh, or its failures, while the pod is still Pending.
const activePods = "status.phase!=" + string(corev1.PodSucceeded) + ",status.phase!=" + string(corev1.PodFailed)

// slimPod is the informer's transform: every pod in the cluster is cached,
// so each keeps only what ingestion reads — identity, and for dev-hot pods
// the annotation, the controller and the fetcher's status.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		// Tombstones hold an object that was slimmed already.
		return obj, nil
	}
	slim := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:            pod.Name,
			Namespace:       pod.Namespace,
			UID:             pod.UID,
			ResourceVersion: pod.ResourceVersion,
		},
	}
	if pod.Annotations[annotations.DevHot] != annotations.DevHotEnabled {
		return slim, nil
	}
	slim.Annotations = map[string]string{annotations.DevHot: annotations.DevHotEnabled}
	slim.OwnerReferences = controllerOnly(pod)
	// Native mode puts the fetcher among initContainers, legacy mode among
	// containers; the statuses say which, and whether it runs.
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if cs.Name == fetcherContainer {
				slim.Status.ContainerStatuses = []corev1.ContainerStatus{{
					Name:         cs.Name,
					RestartCount: cs.RestartCount,
					State:        corev1.ContainerState{Running: cs.State.Running},
				}}
			}
		}
	}
	return slim, nil
}

// fetcherState is what a tail needs to know about its container.
type fetcherState struct {
	namespace string
	// running: a follow stream can be opened now.
	running bool
	// restarts is the container's restartCount.
	restarts int32
}

// fetcherOf returns the fetcher's state in a slimmed pod, false when the pod
// is not a dev-hot pod with a fetcher.
func fetcherOf(pod *corev1.Pod) (fetcherState, bool) {
	if pod.Annotations[annotations.DevHot] != annotations.DevHotEnabled {
		return fetcherState{}, false
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == fetcherContainer {
			return fetcherState{namespace: pod.Namespace, running: cs.State.Running != nil, restarts: cs.RestartCount}, true
		}
	}
	return fetcherState{}, false
}
