// Command demo is `make demo`. On a machine that can run the real
// single-node cluster of test/framework/cluster (Linux, root, network namespaces) it
// brings that cluster up, installs the chart as a user would, applies the
// labelled sample with two replicas, shows the mutation as a diff, shows
// the real pods with the injected fetcher sidecar, then pushes three
// versions of the code and prints how long each took to go live in both
// pods; it takes the cluster down again unless it was already running.
//
// Elsewhere, or with DEMO=local, it does the same on the local control
// plane: the webhook as a local process, and one pod of the sample run as
// local processes (the fetcher with the token a real pod would get, and
// the app under real node --watch). DEMO=cluster insists on the real
// cluster and fails, saying why, where the machine cannot run it.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/test/framework/cluster"
)

// ModeEnv chooses where the demo runs: "cluster", "local", or unset for
// the real cluster where the machine can run it.
const ModeEnv = "DEMO"

const ns = "demo"

type demo struct {
	dir     string
	cleanup []func()
	step    int
}

func main() {
	d := &demo{}
	err := d.run()
	for i := len(d.cleanup) - 1; i >= 0; i-- {
		d.cleanup[i]()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nFAILED at step %d: %v\nlogs: %s\n", d.step, err, d.dir)
		os.Exit(1)
	}
}

func (d *demo) run() error {
	var err error
	if d.dir, err = os.MkdirTemp("", "aether-demo-"); err != nil {
		return err
	}
	why := cluster.Supported()
	switch mode := os.Getenv(ModeEnv); {
	case mode == "local":
		fmt.Printf("the local control plane (%s=local)\n", ModeEnv)
		return d.runLocal()
	case mode != "" && mode != "cluster":
		return fmt.Errorf("%s=%q: want cluster, local, or unset", ModeEnv, mode)
	case why == nil:
		fmt.Printf("real pods on the single-node cluster of test/framework/cluster: this machine can run it (%s=local for the local control plane)\n", ModeEnv)
		return d.runCluster()
	case mode == "cluster":
		return fmt.Errorf("%s=cluster, but this machine cannot run the real cluster: %w", ModeEnv, why)
	default:
		fmt.Printf("the local control plane: this machine cannot run the real cluster (%v)\n", why)
		return d.runLocal()
	}
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Printf("\n[%d] %s\n", d.step, fmt.Sprintf(format, args...))
}

// summary prints the reloads' median and maximum, and the Deployment's
// generation, which only annotation updates moved.
func summary(lat []time.Duration, generation int64) {
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	fmt.Printf("    %d reloads, median %d ms, max %d ms; no rollout: the pod template is unchanged (generation %d counts annotation updates)\n",
		len(lat), sorted[len(sorted)/2].Milliseconds(), sorted[len(sorted)-1].Milliseconds(), generation)
}

// diff prints a unified diff of two Deployments' (JSON) specs and
// annotations, without the fields the API server sets on every object.
func (d *demo) diff(before, after string) error {
	files := []string{filepath.Join(d.dir, "before.yaml"), filepath.Join(d.dir, "after.yaml")}
	for i, js := range []string{before, after} {
		var dep appsv1.Deployment
		if err := json.Unmarshal([]byte(js), &dep); err != nil {
			return err
		}
		// Set by kubectl and by the Deployment controller, not the webhook.
		delete(dep.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
		delete(dep.Annotations, "deployment.kubernetes.io/revision")
		if rec, ok := dep.Annotations[annotations.Injected]; ok {
			dep.Annotations[annotations.Injected] = fmt.Sprintf("<%d bytes of JSON: what was replaced>", len(rec))
		}
		view := map[string]any{"metadata": map[string]any{"labels": dep.Labels, "annotations": dep.Annotations}, "spec": dep.Spec}
		y, err := yaml.Marshal(view)
		if err != nil {
			return err
		}
		if err := os.WriteFile(files[i], y, 0o644); err != nil {
			return err
		}
	}
	out, err := exec.Command("diff", "-u", "--label", "unlabelled", "--label", "mutated", files[0], files[1]).Output()
	if len(out) == 0 && err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	fmt.Print(indent(string(out)))
	return nil
}

// unlabel is manifest without the dev-hot label, which the webhook's
// objectSelector matches.
func unlabel(manifest string) string {
	return strings.Replace(manifest, `    aether.dev/dev-hot: "true"`+"\n", "", 1)
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

// indented writes to w with every line indented as indent does.
type indented struct {
	w   io.Writer
	mid bool // within a line
}

func (iw *indented) Write(p []byte) (int, error) {
	var b []byte
	for _, c := range p {
		if !iw.mid {
			b = append(b, "    "...)
		}
		b = append(b, c)
		iw.mid = c != '\n'
	}
	if _, err := iw.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
