// Command coredns is the real single-node cluster's DNS server: upstream's
// CoreDNS with only the plugins the cluster's Corefile uses (the
// kubernetes plugin answers for cluster.local; nothing is forwarded, as
// the cluster's network namespace has no route out).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// The plugins, registered by their init functions.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The directives in the order of upstream's plugin.cfg, which decides the
// order each query passes through them.
func init() {
	dnsserver.Directives = []string{"ready", "health", "errors", "log", "cache", "kubernetes"}
}

func main() { coremain.Run() }
