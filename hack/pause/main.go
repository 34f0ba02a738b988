// Command pause is the cluster's sandbox image (test/framework/cluster): the first
// process of every pod, which holds its namespaces open. It waits for
// SIGTERM or SIGINT and, as PID 1 of a shared PID namespace, reaps the
// children that get reparented to it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
