package main

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// cluster is what every command needs: a client, its REST config and the
// namespace from the kubeconfig or -n.
type cluster struct {
	client    kubernetes.Interface
	config    *rest.Config
	namespace string
}

func connect(flags *genericclioptions.ConfigFlags) (*cluster, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &cluster{client: client, config: cfg, namespace: ns}, nil
}

// deploymentName accepts NAME and the forms kubectl prints and takes:
// deploy/NAME, deployment/NAME, deployments/NAME, deployment.apps/NAME.
func deploymentName(arg string) (string, error) {
	kind, name, found := strings.Cut(arg, "/")
	if !found {
		kind, name = "deployment", arg
	}
	switch kind {
	case "deploy", "deployment", "deployments", "deployment.apps", "deployments.apps":
	default:
		return "", fmt.Errorf("%q is not a Deployment: want NAME or deploy/NAME", arg)
	}
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("%q: want NAME or deploy/NAME", arg)
	}
	return name, nil
}

func (c *cluster) deployment(ctx context.Context, name string) (*appsv1.Deployment, error) {
	d, err := c.client.AppsV1().Deployments(c.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s: %w", c.namespace, name, err)
	}
	return d, nil
}

// target connects and reads the Deployment that arg names (NAME or
// deploy/NAME).
func target(ctx context.Context, flags *genericclioptions.ConfigFlags, arg string) (*cluster, *appsv1.Deployment, error) {
	name, err := deploymentName(arg)
	if err != nil {
		return nil, nil, err
	}
	c, err := connect(flags)
	if err != nil {
		return nil, nil, err
	}
	d, err := c.deployment(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return c, d, nil
}

// targetEvents is target, and the Deployment's refresh Events.
func targetEvents(ctx context.Context, flags *genericclioptions.ConfigFlags, arg string) (*cluster, *appsv1.Deployment, []eventsv1.Event, error) {
	c, d, err := target(ctx, flags, arg)
	if err != nil {
		return nil, nil, nil, err
	}
	evs, err := c.refreshEvents(ctx, d.Name)
	return c, d, evs, err
}

// refreshEvents lists the Deployment's Events that the fetchers reported.
func (c *cluster) refreshEvents(ctx context.Context, name string) ([]eventsv1.Event, error) {
	evs, err := c.client.EventsV1().Events(c.namespace).List(ctx, metav1.ListOptions{FieldSelector: refresh.EventSelector(name)})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return evs.Items, nil
}
