package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/apps"
	"github.com/aether-dev/aether-devhot/test/framework/bench"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
	"github.com/aether-dev/aether-devhot/test/framework/npmregistry"
	"github.com/aether-dev/aether-devhot/test/framework/realpod"
)

const depsNS = "bench-deps"

// installedIn is a pod's line of push's output for a release whose
// dependencies the pod installed.
var installedIn = regexp.MustCompile(`(?m)^  (\S+): live in \d+ms \(dependencies installed in (\d+)ms\)$`)

// depsChange is a push after a lockfile change on real pods: shop-api
// with 2 replicas and a registry the pods reach; each push carries a new
// lockfile, which both pods install with the image's npm ci; then npm ci
// runs by hand on the same files in both pods, the baseline.
func (b *runner) depsChange(c *cluster.Cluster) error {
	cache, err := npmregistry.DefaultCacheDir()
	if err != nil {
		return err
	}
	base, err := npmregistry.FromLockfile(filepath.Join(apps.Dir(service), "package-lock.json"), cache)
	if err != nil {
		return err
	}
	get, err := npmregistry.Fetch("lodash.get", "4.4.2", cache)
	if err != nil {
		return err
	}
	reg, err := npmregistry.Start(cluster.HostAddr+":0", append(base, get)...)
	if err != nil {
		return err
	}
	defer reg.Close()
	e, err := b.enableService(c, depsNS, service, "NPM_CONFIG_REGISTRY="+reg.URL)
	if err != nil {
		return err
	}
	defer e.cleanup()
	k := realpod.Kubectl{Bin: filepath.Join(b.root, "bin", "kubectl"), Kubeconfig: c.Kubeconfig(), Namespace: depsNS}
	src := filepath.Join(b.dir, "deps-src")
	if err := apps.Copy(service, src); err != nil {
		return err
	}
	pj0, err := os.ReadFile(filepath.Join(src, "package.json"))
	if err != nil {
		return err
	}
	lock0, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		return err
	}
	for round := 1; round <= b.cfg.depsRounds; round++ {
		extra, err := npmregistry.Pack(fmt.Sprintf("aether-bench-dep-%d", round), "1.0.0", map[string]string{
			"package.json": fmt.Sprintf(`{"name":"aether-bench-dep-%d","version":"1.0.0","main":"index.js"}`, round),
			"index.js":     fmt.Sprintf("module.exports = %d;\n", round),
		})
		if err != nil {
			return err
		}
		reg.Add(extra)
		pj, lock, err := npmregistry.AddDependencies(pj0, lock0, get, extra)
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("lockfile %d", round)
		files := map[string][]byte{"package.json": pj, "package-lock.json": lock,
			serviceMessage: fmt.Appendf(nil, "module.exports = require('lodash.get')({ m: %q }, 'm');\n", msg)}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(src, name), content, 0o644); err != nil {
				return err
			}
		}
		out, err := e.devhot("push", service, src, "--timeout", "5m").CombinedOutput()
		if err != nil {
			return fmt.Errorf("push of lockfile %d: %v\n%s", round, err, out)
		}
		installs := installedIn.FindAllStringSubmatch(string(out), -1)
		if len(installs) != len(e.pods) {
			return fmt.Errorf("push of lockfile %d: %d pods report an install, want %d\n%s", round, len(installs), len(e.pods), out)
		}
		for _, m := range installs {
			ms, _ := strconv.Atoi(m[2])
			b.res.depsInstall = append(b.res.depsInstall, time.Duration(ms)*time.Millisecond)
		}
		if err := allAnswer(b.ctx, e.pods, msg, 60*time.Second); err != nil {
			return err
		}
		var wg sync.WaitGroup
		byHand := make([]time.Duration, len(e.pods))
		errs := make([]error, len(e.pods))
		for i, p := range e.pods {
			wg.Go(func() { byHand[i], errs[i] = npmregistry.NpmCIByHand(k, p.Name, service, pj, lock) })
		}
		wg.Wait()
		for i := range e.pods {
			if errs[i] != nil {
				return errs[i]
			}
			b.res.depsByHand = append(b.res.depsByHand, byHand[i])
		}
	}
	fmt.Fprintf(os.Stderr, "    %d installs by push: p50 %v; %d npm ci by hand: p50 %v\n", len(b.res.depsInstall),
		bench.Percentile(b.res.depsInstall, 50).Round(time.Millisecond), len(b.res.depsByHand), bench.Percentile(b.res.depsByHand, 50).Round(time.Millisecond))
	return nil
}
