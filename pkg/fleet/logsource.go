package fleet

import (
	"context"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// LogSource opens a container's log stream. It is an interface so that
// tests can script streams: the fake clientset's GetLogs only ever returns
// "fake logs".
type LogSource interface {
	// Open streams the log of pod namespace/name as opts asks. The stream
	// ends with io.EOF when the kubelet closes it, for example because the
	// container stopped, and with an error when the connection breaks.
	Open(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
}

// PodLogs is the LogSource of a cluster: GET pods/log through the API
// server, which proxies the kubelet.
type PodLogs struct {
	Client kubernetes.Interface
}

// Open implements LogSource.
func (p PodLogs) Open(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return p.Client.CoreV1().Pods(namespace).GetLogs(name, opts).Stream(ctx)
}
