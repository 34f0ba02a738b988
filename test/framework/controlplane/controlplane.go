// Package controlplane starts the local control plane that integration
// tests, end-to-end tests and `make demo` share: a real etcd and
// kube-apiserver built from pinned sources (see hack/tools), started by
// controller-runtime's envtest, with the webhook registered behind real TLS.
package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/aether-dev/aether-devhot/cmd/webhook/app"
)

// AssetsEnv names the directory with kube-apiserver, etcd and kubectl.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// ControlPlane is a running API server with an admin kubeconfig.
type ControlPlane struct {
	env *envtest.Environment
	// Config is the admin REST config.
	Config *rest.Config
	// Clientset talks to it as admin.
	Clientset kubernetes.Interface
	// Kubeconfig is an admin kubeconfig file for kubectl.
	Kubeconfig string
	// Kubectl is the pinned kubectl.
	Kubectl string
	// Dir holds the kubeconfig and logs.
	Dir string
}

// RepoRoot finds the module root from this source file, so tests and tools
// find testdata wherever they run from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Assets returns the assets directory, or an error that says how to get it.
func Assets() (string, error) {
	dir := os.Getenv(AssetsEnv)
	if dir == "" {
		return "", fmt.Errorf("%s is not set: run `make test` (it builds kube-apiserver, etcd and kubectl into bin/ and sets it)", AssetsEnv)
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s=%s has no %s: run `make tools`", AssetsEnv, dir, b)
		}
	}
	return dir, nil
}

// Start starts etcd and kube-apiserver, registers the webhook
// configuration of test/testdata/webhook.yaml against a local HTTPS
// endpoint, and writes an admin kubeconfig into dir.
func Start(dir string) (*ControlPlane, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	level := zapcore.ErrorLevel
	if os.Getenv("AETHER_TEST_VERBOSE") != "" {
		level = zapcore.DebugLevel
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			Paths: []string{filepath.Join(RepoRoot(), "test", "testdata", "webhook.yaml")},
		},
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	cp := &ControlPlane{env: env, Config: cfg, Kubectl: filepath.Join(assets, "kubectl"), Dir: dir}
	if cp.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	cp.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, kc, 0o600); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return cp, nil
}

// Stop stops the API server and etcd.
func (cp *ControlPlane) Stop() error { return cp.env.Stop() }

// WebhookOptions are manager options that serve on the endpoint the
// registered webhook configuration points at, with the CA it trusts.
func (cp *ControlPlane) WebhookOptions() app.Options {
	w := cp.env.WebhookInstallOptions
	return app.Options{
		WebhookHost:         w.LocalServingHost,
		WebhookPort:         w.LocalServingPort,
		CertDir:             w.LocalServingCertDir,
		MetricsBindAddress:  "0",
		HealthProbeBindAddr: "0",
		FetcherImage:        app.DefaultFetcherImage,
		SidecarMode:         app.SidecarModeAuto,
		// Tests restart the webhook within one process.
		SkipControllerNameValidation: true,
	}
}

// StartWebhook runs the manager in-process until the returned stop is
// called, and waits until the API server can reach the webhook.
func (cp *ControlPlane) StartWebhook(o app.Options) (stop func(), err error) {
	mgr, err := app.NewManager(cp.Config, o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stop = func() { cancel(); <-done }
	checker := mgr.GetWebhookServer().StartedChecker()
	deadline := time.Now().Add(30 * time.Second)
	for checker(nil) != nil {
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("webhook server did not start within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return stop, nil
}

// Run runs the pinned kubectl as admin with stdin and returns stdout and
// stderr; on failure the error holds stderr too.
func (cp *ControlPlane) Run(stdin string, args ...string) (string, string, error) {
	cmd := exec.Command(cp.Kubectl, append([]string{"--kubeconfig", cp.Kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String(), err
}

// ServiceAccountKubeconfig mints a token for ns/sa with the TokenRequest
// API and writes a kubeconfig with it to path, so that a local process has
// exactly the RBAC a pod running as that service account would have.
func (cp *ControlPlane) ServiceAccountKubeconfig(ns, sa, path string) error {
	tr, err := cp.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}},
		metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for %s/%s: %w", ns, sa, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cp.Config.Host, CertificateAuthorityData: cp.Config.CAData}
	kc.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: sa, Namespace: ns}
	kc.CurrentContext = "local"
	return clientcmd.WriteToFile(*kc, path)
}
