package realcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/store"
	"github.com/aether-dev/aether-devhot/test/framework/artifact"
)

// deltaSlack is what a delta push may move besides the changed file: the
// root and one part, each way (issue 14: 64 KiB + the change).
const deltaSlack = 64 << 10

// TestClusterDeltaPush is issue 14's delta push on real pods: the sample
// on 2 replicas with a tree of 1,000 files (10 MB) beside its server. The
// first push uploads every file and each pod downloads every file; a push
// of one changed file uploads that file and one part, and each pod reuses
// the other 1,001 from its release (links, but a copy of the server the
// app loaded) and downloads about the change; --archive
// moves the whole tree again, the baseline; and a third pod, which has no
// release yet, downloads the delta release whole.
func TestClusterDeltaPush(t *testing.T) {
	kubeconfig := clusterKubeconfig(t)
	k := clusterNamespace(t, kubeconfig, true)
	src := k.enableSample(t, 2)
	const files, size = 1000, 10 << 20
	if err := artifact.WriteTree(filepath.Join(src, "lib"), files, size); err != nil {
		t.Fatal(err)
	}
	save := func(v int) int64 {
		t.Helper()
		b := fmt.Appendf(nil, `{"version":%d}`, v)
		if err := os.WriteFile(filepath.Join(src, "version.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return int64(len(b))
	}
	push := func(v int, args ...string) (digest string, uploaded *store.Uploaded) {
		t.Helper()
		out := k.devhot(t, append([]string{"push", "deploy/" + deployment, src}, args...)...)
		m := pushedLine.FindStringSubmatch(out)
		if m == nil || m[2] != "2" && m[2] != "3" || m[2] != m[3] {
			t.Fatalf("push did not report its digest live on every pod")
		}
		k.liveOn(t, atoi(t, m[3]), v)
		for _, l := range strings.Split(out, "\n") {
			if u, ok := store.ParseUploaded(l); ok {
				uploaded = &u
			}
		}
		return m[1], uploaded
	}

	save(1)
	first, up := push(1)
	total := files + 2
	if up == nil || up.Files != total || up.OfFiles != total {
		t.Fatalf("the first push uploaded %v, want all %d files", up, total)
	}
	for pod, ok := range k.refreshOK(t, first) {
		if ok.Source != refresh.SourceDelta || ok.Reused != 0 || ok.Files != int64(total) || ok.Downloaded < size {
			t.Errorf("pod %s, first push: %s; want source=delta, reused=0, every file downloaded", pod, ok)
		}
	}

	change := save(2)
	second, up := push(2)
	if up == nil || up.Files != 1 || up.Parts != 1 || up.Bytes > change+deltaSlack {
		t.Errorf("a one-file change uploaded %v, want 1 file and 1 part, at most %d bytes", up, change+deltaSlack)
	}
	for pod, ok := range k.refreshOK(t, second) {
		if ok.Source != refresh.SourceDelta || ok.Reused != int64(total-1) || ok.Downloaded > change+deltaSlack {
			t.Errorf("pod %s, one-file change: %s; want source=delta, reused=%d, downloaded <= %d", pod, ok, total-1, change+deltaSlack)
		}
	}

	// On each pod the file the app loaded is a copy, and the others are
	// links (docs/delta.md): boot.cjs told the fetcher which inodes node
	// --watch watches. The sample's workspace is its code volume, at /app.
	for pod := range k.refreshOK(t, second) {
		out := k.kubectl(t, "", "exec", pod, "-c", "app", "--", "node", "-e",
			"const fs=require('fs');process.stdout.write(process.argv.slice(1).map(f=>fs.statSync('/app/current/'+f).nlink).join(' '))",
			"server.js", "lib/m000/f00000.js")
		if out != "1 2" {
			t.Errorf("pod %s: links of server.js and lib/m000/f00000.js: %q, want \"1 2\" (the loaded file copied, the other linked)", pod, out)
		}
	}

	save(3)
	archived, _ := push(3, "--archive")
	for pod, ok := range k.refreshOK(t, archived) {
		if ok.Source != refresh.SourceArchive || ok.Downloaded < size/4 {
			t.Errorf("pod %s, --archive: %s; want source=archive and the whole tree downloaded", pod, ok)
		}
	}

	// Back to a delta release, then a new pod, with no release of its own.
	save(4)
	fourth, _ := push(4)
	k.kubectl(t, "", "scale", "deployment", deployment, "--replicas=3")
	k.liveOn(t, 3, 4)
	oks := k.refreshOK(t, fourth)
	if len(oks) != 3 {
		t.Fatalf("REFRESH_OK of %s from %d pods, want 3", fourth, len(oks))
	}
	full := 0
	for _, ok := range oks {
		if ok.Source == refresh.SourceDelta && ok.Reused == 0 && ok.Downloaded >= size {
			full++
		}
	}
	if full != 1 {
		t.Errorf("%d pods downloaded release %s whole, want the new one: %v", full, fourth, oks)
	}
}

// refreshOK returns each Running pod's REFRESH_OK record of digest, from
// its fetcher's log, through refresh.Parse.
func (k *clusterNS) refreshOK(t *testing.T, digest string) map[string]refresh.Record {
	t.Helper()
	out := map[string]refresh.Record{}
	pods := strings.Fields(k.kubectl(t, "", "get", "pods", "-l", "app="+deployment,
		"--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}"))
	for _, pod := range pods {
		for _, l := range strings.Split(k.kubectl(t, "", "logs", pod, "-c", "aether-fetcher"), "\n") {
			if r, ok := refresh.Parse(l); ok && r.Marker == refresh.MarkerOK && r.Digest == digest {
				out[pod] = r
			}
		}
		if _, ok := out[pod]; !ok {
			t.Errorf("pod %s logged no REFRESH_OK for %s", pod, digest)
		}
	}
	return out
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
