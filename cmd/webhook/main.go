// Command webhook is the aether-devhot manager: the mutating admission
// webhook for Deployments labelled aether.dev/dev-hot=true, and the
// reconciler that gives their fetchers RBAC. Outside a cluster it uses
// KUBECONFIG.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/aether-dev/aether-devhot/cmd/webhook/app"
)

func main() {
	var o app.Options
	o.AddFlags(flag.CommandLine)
	zo := zap.Options{}
	zo.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zo)))

	if err := o.ApplyEnv(flag.CommandLine, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}

func run(o app.Options) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	mgr, err := app.NewManager(cfg, o)
	if err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
