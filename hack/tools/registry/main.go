// Command registry is the CNCF distribution registry, built from the pinned
// github.com/distribution/distribution/v3 as its cmd/registry is, with the
// filesystem and inmemory storage drivers only (the real cluster of
// test/framework/cluster stores under its directory, without auth).
package main

import (
	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func main() {
	// Like upstream's main: the registered commands exit non-zero on failure.
	_ = registry.RootCmd.Execute()
}
