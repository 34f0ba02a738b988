package golden

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
	"github.com/aether-dev/aether-devhot/pkg/mutate"
	"github.com/aether-dev/aether-devhot/pkg/nodecmd"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// loadImages reads the fixtures into one Static source.
func loadImages(t *testing.T, files ...string) imageconfig.Static {
	t.Helper()
	s := imageconfig.Static{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f, err := imageconfig.ParseFixture(b)
		if err == nil {
			err = s.Add(f)
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	return s
}

// header returns the "# key: value" lines that start a case.
func header(b []byte) map[string]string {
	h := map[string]string{}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		line, ok := strings.CutPrefix(s.Text(), "# ")
		if !ok {
			break
		}
		if k, v, ok := strings.Cut(line, ": "); ok {
			h[k] = v
		}
	}
	return h
}

// injectedRecord is the part of aether.dev/injected that the checks read.
type injectedRecord struct {
	Container     string `json:"container"`
	InitContainer *struct {
		Name string `json:"name"`
	} `json:"initContainer"`
}

func readRecord(t *testing.T, d *appsv1.Deployment) injectedRecord {
	t.Helper()
	var r injectedRecord
	if err := json.Unmarshal([]byte(d.Annotations[annotations.Injected]), &r); err != nil {
		t.Fatalf("%s: %v", annotations.Injected, err)
	}
	return r
}

// checkExpect compares a result with a corpus case's expectation:
// `deny <why>`, or `app=<container> entry=<file> init=<initContainer|none>`.
func checkExpect(t *testing.T, want string, got *appsv1.Deployment, err error) {
	t.Helper()
	if why, ok := strings.CutPrefix(want, "deny "); ok {
		var den *mutate.Denial
		if !errors.As(err, &den) {
			t.Errorf("expected a denial (%s), got an injection", why)
		}
		return
	}
	if err != nil {
		t.Errorf("expected %s, got: %v", want, err)
		return
	}
	f := map[string]string{}
	for _, kv := range strings.Fields(want) {
		k, v, _ := strings.Cut(kv, "=")
		f[k] = v
	}
	rec := readRecord(t, got)
	if rec.Container != f["app"] {
		t.Errorf("app container %q, expected %q", rec.Container, f["app"])
	}
	init := "none"
	if rec.InitContainer != nil {
		init = rec.InitContainer.Name
	}
	if init != f["init"] {
		t.Errorf("replaced initContainer %s, expected %s", init, f["init"])
	}
	for _, c := range got.Spec.Template.Spec.Containers {
		if c.Name != rec.Container {
			continue
		}
		if e := envValue(c, sidecar.EnvEntry); e != f["entry"] {
			t.Errorf("%s=%q, expected %q", sidecar.EnvEntry, e, f["entry"])
		}
	}
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// noHarm checks an injection against the "do no harm" rules: no
// initContainer is lost but the one that fetched the code; no volume of the
// user's changes, and the workspace is an emptyDir; no container but the
// app changes; and the app keeps every word of its command line but the
// entry script and the package-manager words that resolve to it.
func noHarm(t *testing.T, in, out *appsv1.Deployment) {
	t.Helper()
	rec := readRecord(t, out)
	is, os := &in.Spec.Template.Spec, &out.Spec.Template.Spec
	js := func(v any) string { return string(mustJSON(t, v)) }

	replaced := ""
	if rec.InitContainer != nil {
		replaced = rec.InitContainer.Name
	}
	var keptIn, keptOut []string
	for _, c := range is.InitContainers {
		if c.Name != replaced {
			keptIn = append(keptIn, js(c))
		}
	}
	for _, c := range os.InitContainers {
		if c.Name != sidecar.ContainerName {
			keptOut = append(keptOut, js(c))
		}
	}
	if !slices.Equal(keptIn, keptOut) {
		t.Errorf("initContainers other than %q changed:\n in: %s\nout: %s", replaced, keptIn, keptOut)
	}
	if replaced != "" && in.Annotations[annotations.FetchInitContainer] != replaced && !sharesEmptyDir(is, replaced, rec.Container) {
		t.Errorf("initContainer %q was replaced, but it shares no emptyDir the app mounts read-write and no annotation names it", replaced)
	}

	for _, v := range is.Volumes {
		i := slices.IndexFunc(os.Volumes, func(o corev1.Volume) bool { return o.Name == v.Name })
		if i < 0 || js(os.Volumes[i]) != js(v) {
			t.Errorf("volume %q lost or changed", v.Name)
		}
	}
	var app, appOut corev1.Container
	for _, c := range is.Containers {
		if c.Name == rec.Container {
			app = c
			continue
		}
		i := slices.IndexFunc(os.Containers, func(o corev1.Container) bool { return o.Name == c.Name })
		if i < 0 || js(os.Containers[i]) != js(c) {
			t.Errorf("container %q is not the app, and changed", c.Name)
		}
	}
	for _, c := range os.Containers {
		if c.Name == rec.Container {
			appOut = c
		}
	}
	ws := ""
	sameMount := func(a corev1.VolumeMount) func(corev1.VolumeMount) bool {
		return func(b corev1.VolumeMount) bool { return js(a) == js(b) }
	}
	for _, m := range appOut.VolumeMounts {
		if !slices.ContainsFunc(app.VolumeMounts, sameMount(m)) {
			ws = m.Name
		}
	}
	for _, m := range app.VolumeMounts {
		if !slices.ContainsFunc(appOut.VolumeMounts, sameMount(m)) {
			t.Errorf("app mount %s of %q lost", m.MountPath, m.Name)
		}
	}
	if ws != "" {
		i := slices.IndexFunc(os.Volumes, func(v corev1.Volume) bool { return v.Name == ws })
		if i < 0 || os.Volumes[i].EmptyDir == nil || os.Volumes[i].EmptyDir.SizeLimit == nil {
			t.Errorf("the workspace %q is not an emptyDir with a sizeLimit", ws)
		}
	}
	for _, e := range app.Env {
		if !slices.ContainsFunc(appOut.Env, func(o corev1.EnvVar) bool { return js(o) == js(e) }) {
			t.Errorf("app env %s lost or changed", e.Name)
		}
	}
	a, b := app.DeepCopy(), appOut.DeepCopy()
	a.Command, a.Args, a.Env, a.VolumeMounts = nil, nil, nil, nil
	b.Command, b.Args, b.Env, b.VolumeMounts = nil, nil, nil, nil
	if js(a) != js(b) {
		t.Errorf("app container changed beyond command, args, env and mounts:\n in: %s\nout: %s", js(a), js(b))
	}
	kept := strings.Join(slices.Concat(appOut.Command, appOut.Args), "\x00")
	for _, w := range resolvedAway(app, envValue(appOut, sidecar.EnvEntry)) {
		if !strings.Contains(kept, w) {
			t.Errorf("app command word %q lost: %q -> %q", w, slices.Concat(app.Command, app.Args), slices.Concat(appOut.Command, appOut.Args))
		}
	}
	if sa := is.ServiceAccountName; sa != "" && sa != "default" && os.ServiceAccountName != sa {
		t.Errorf("the pod's own service account %q became %q", sa, os.ServiceAccountName)
	}
}

// resolvedAway returns the words of c's command line that must survive the
// rewrite: all but the entry script, node's watch flags, and the
// package-manager words that resolve to the script.
func resolvedAway(c corev1.Container, entry string) []string {
	argv := slices.Concat(c.Command, c.Args)
	drop := map[string]bool{"--watch": true, "--watch-preserve-output": true}
	if s, err := nodecmd.Parse(argv); err == nil && s.Script != nil {
		for _, w := range []string{s.Script.Manager, s.Script.Name, "run", "run-script", "start", "--", "--run", "-s", "--silent"} {
			drop[w] = true
		}
	}
	var out []string
	for i := 0; i < len(argv); i++ {
		w := argv[i]
		switch {
		case drop[w], strings.HasPrefix(w, "--watch-path="), entry != "" && (w == entry || strings.HasSuffix(path.Clean(w), "/"+entry)):
		case w == "--watch-path":
			i++
		case strings.Contains(w, " "):
			// A shell line: its words are checked one by one.
			for _, f := range strings.Fields(w) {
				if !drop[f] && !strings.HasSuffix(f, entry) {
					out = append(out, f)
				}
			}
		default:
			out = append(out, w)
		}
	}
	return out
}

// sharesEmptyDir reports whether initContainer init mounts an emptyDir that
// container app mounts read-write.
func sharesEmptyDir(spec *corev1.PodSpec, init, app string) bool {
	var ic, ac *corev1.Container
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == init {
			ic = &spec.InitContainers[i]
		}
	}
	for i := range spec.Containers {
		if spec.Containers[i].Name == app {
			ac = &spec.Containers[i]
		}
	}
	if ic == nil || ac == nil {
		return false
	}
	for _, m := range ic.VolumeMounts {
		for _, am := range ac.VolumeMounts {
			if am.Name != m.Name || am.ReadOnly {
				continue
			}
			for _, v := range spec.Volumes {
				if v.Name == m.Name && v.EmptyDir != nil {
					return true
				}
			}
		}
	}
	return false
}
