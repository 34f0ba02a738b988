// Package sidecar describes the fetcher as the webhook injects it: its
// container spec, its token volume and the names it reserves. The fetcher's
// runtime lives in the sub-packages release and fetcher.
package sidecar

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Names the webhook reserves. A user object that already uses one of them,
// and that the webhook did not inject, is denied.
const (
	// ContainerName is the fetcher container.
	ContainerName = "aether-fetcher"
	// WorkspaceVolume is the EmptyDir added when the replaced initContainer
	// shared no volume with the app container.
	WorkspaceVolume = "aether-workspace"
	// TokenVolume is the projected service-account token mounted only into
	// the fetcher.
	TokenVolume = "aether-token"
)

// TokenMountPath is where the fetcher sees its token. It is the standard
// path, so client-go's in-cluster config finds it, and because a container
// that already mounts something there is skipped by the ServiceAccount
// admission plugin, the pod's own token is never added to the fetcher.
const TokenMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// TokenExpirationSeconds is the lifetime of the fetcher's tokens: the
// shortest the API server accepts; the kubelet rotates them at 80%.
const TokenExpirationSeconds = 600

// StoreTokenPath is the file, in the token volume, of the fetcher's second
// token: bound to the store's audience (Options.StoreURL), so that the
// store can review it and no one who receives it can use it against the API
// server. The fetcher shows it to the store only (AETHER_STORE_URL).
const StoreTokenPath = "store-token"

// StoreTokenFile is where the fetcher reads its store token.
const StoreTokenFile = TokenMountPath + "/" + StoreTokenPath

// PullSecretsPath is the directory, in the token volume, of the pod's
// imagePullSecrets: <name>/.dockerconfigjson for each. The fetcher pulls
// oci:// artifacts with them, as the kubelet pulls the pod's images.
const PullSecretsPath = "pull-secrets"

// PullSecretsDir is where the fetcher reads its pull secrets.
const PullSecretsDir = TokenMountPath + "/" + PullSecretsPath

// MetricsPortName names the fetcher's metrics and health port.
const MetricsPortName = "devhot-metrics"

// UID is the fetcher's non-root user: distroless's "nonroot".
const UID = 65532

// Mode is how the fetcher runs beside the app.
type Mode string

const (
	// ModeNative makes the fetcher a native sidecar (Kubernetes >= 1.29): an
	// initContainer with restartPolicy Always whose startupProbe holds the app
	// back until the first release is live.
	ModeNative Mode = "native"
	// ModeLegacy makes the fetcher the first app container, with a postStart
	// hook (`fetcher wait-ready`) that holds the kubelet from starting the
	// next container until the first release is live.
	ModeLegacy Mode = "legacy"
)

// Options describe one fetcher container.
type Options struct {
	// Image holds the /fetcher binary.
	Image string
	// Deployment is the Deployment the fetcher watches.
	Deployment string
	// Mode decides the probes and hooks.
	Mode Mode
	// FetchIntervalSec, when not empty, is passed as AETHER_FETCH_INTERVAL_SEC.
	FetchIntervalSec string
	// WorkspaceVolume is the volume mounted at WorkspaceMountPath.
	WorkspaceVolume string
	// WorkspaceSubPath is the app mount's subPath of that volume, if any, so
	// both containers see the same directory.
	WorkspaceSubPath string
	// AppDir, when set, is passed as EnvAppDir: the pod runs the image's
	// own code until the first push, and releases without node_modules use
	// the image's from there.
	AppDir string
	// AppProbe, when set, is passed as EnvAppProbe: the app container's
	// probe, encoded by package probe, which the fetcher runs to tell when
	// a release answers.
	AppProbe string
	// StoreURL, when set, is passed as EnvStoreURL: the artifact store's
	// root URL, the only place the fetcher sends its store token to. The
	// token volume then holds that token too (TokenVolumeSource).
	StoreURL string
}

// Container returns the fetcher container. Every field the API server would
// default is set explicitly, so that a Deployment read back from the server
// and mutated again yields an empty patch.
func Container(o Options) corev1.Container {
	c := corev1.Container{
		Name:            ContainerName,
		Image:           o.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"/fetcher"},
		Env:             env(o),
		Ports: []corev1.ContainerPort{{
			Name:          MetricsPortName,
			ContainerPort: DefaultMetricsPort,
			Protocol:      corev1.ProtocolTCP,
		}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("32Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: o.WorkspaceVolume, MountPath: WorkspaceMountPath, SubPath: o.WorkspaceSubPath},
			{Name: TokenVolume, MountPath: TokenMountPath, ReadOnly: true},
		},
		LivenessProbe:            probe("/healthz", 10, 3),
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		SecurityContext:          securityContext(),
	}
	switch o.Mode {
	case ModeLegacy:
		c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"/fetcher", "wait-ready"}},
		}}
	default:
		c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		// Up to ten minutes for the first artifact before the kubelet restarts
		// the fetcher; the app waits behind it. With release zero the
		// fetcher is ready at once, or after its first try of a digest.
		c.StartupProbe = probe("/readyz", 1, 600)
	}
	return c
}

func env(o Options) []corev1.EnvVar {
	e := []corev1.EnvVar{
		{Name: EnvPodName, ValueFrom: fieldRef("metadata.name")},
		{Name: EnvPodNamespace, ValueFrom: fieldRef("metadata.namespace")},
		{Name: EnvDeployment, Value: o.Deployment},
		{Name: EnvWorkspace, Value: WorkspaceMountPath},
		{Name: EnvMetricsAddr, Value: DefaultMetricsAddr},
	}
	if o.FetchIntervalSec != "" {
		e = append(e, corev1.EnvVar{Name: EnvFetchIntervalSec, Value: o.FetchIntervalSec})
	}
	if o.AppDir != "" {
		e = append(e, corev1.EnvVar{Name: EnvAppDir, Value: o.AppDir})
	}
	if o.AppProbe != "" {
		e = append(e, corev1.EnvVar{Name: EnvAppProbe, Value: o.AppProbe})
	}
	if o.StoreURL != "" {
		e = append(e, corev1.EnvVar{Name: EnvStoreURL, Value: o.StoreURL})
	}
	return e
}

func fieldRef(path string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
}

func probe(path string, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path:   path,
			Port:   intstr.FromString(MetricsPortName),
			Scheme: corev1.URISchemeHTTP,
		}},
		TimeoutSeconds:   1,
		PeriodSeconds:    period,
		SuccessThreshold: 1,
		FailureThreshold: failures,
	}
}

// securityContext meets Pod Security "restricted".
func securityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(int64(UID)),
		RunAsGroup:               ptr.To(int64(UID)),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// TokenVolumeSource returns the projected volume behind TokenVolume: a
// short-lived token bound to the pod and to the API server's own audience
// (the only party the fetcher shows it to), the cluster CA and the
// namespace, the same three files as the kubelet's kube-api-access volume.
// With a storeURL it also holds StoreTokenPath, a token of the same
// lifetime bound to the pod and to the audience storeURL, which the store
// reviews. Each of pullSecrets (the pod's imagePullSecrets) adds its
// .dockerconfigjson under PullSecretsPath; a projection needs no RBAC on
// Secrets, and is optional, so that a missing or legacy (.dockercfg)
// secret does not keep the pod from starting, as it does not for the
// kubelet's image pulls.
func TokenVolumeSource(storeURL string, pullSecrets []corev1.LocalObjectReference) corev1.VolumeSource {
	v := corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To(corev1.ProjectedVolumeSourceDefaultMode),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Path:              "token",
				ExpirationSeconds: ptr.To(int64(TokenExpirationSeconds)),
			}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{
				Items: []corev1.DownwardAPIVolumeFile{{
					Path:     "namespace",
					FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
				}},
			}},
		},
	}}
	if storeURL != "" {
		v.Projected.Sources = append(v.Projected.Sources, corev1.VolumeProjection{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience:          storeURL,
				Path:              StoreTokenPath,
				ExpirationSeconds: ptr.To(int64(TokenExpirationSeconds)),
			},
		})
	}
	seen := map[string]bool{}
	for _, s := range pullSecrets {
		if s.Name == "" || seen[s.Name] {
			// Two projections of one path would be refused by validation.
			continue
		}
		seen[s.Name] = true
		v.Projected.Sources = append(v.Projected.Sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: s,
			Items:                []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: PullSecretsPath + "/" + s.Name + "/" + corev1.DockerConfigJsonKey}},
			Optional:             ptr.To(true),
		}})
	}
	return v
}
